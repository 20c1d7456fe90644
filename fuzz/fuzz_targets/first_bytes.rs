#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzz::first_bytes(data));
