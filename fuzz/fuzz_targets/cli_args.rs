#![no_main]
//! The CLI's own argument parsers (`get`'s -H, --resolve, --pin, --tls-*, URLs and redirects;
//! `--listen`) and the duration parser its flags use, included from the CLI's sources (the CLI
//! is a binary crate).

#[allow(dead_code)]
#[path = "../../crates/portcullis-cli/src/get/parse.rs"]
mod parse;

#[allow(dead_code)]
#[path = "../../crates/portcullis-cli/src/listen_arg.rs"]
mod listen_arg;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse::header(text);
    let _ = parse::resolve(text);
    let _ = parse::pin(text);
    let _ = parse::tls_version(text);
    if let Ok(url) = parse::url(text) {
        let _ = parse::join(&url, "../a/./b?c#d");
    }
    if let Ok(base) = parse::url("https://a.test/x/y/z?q") {
        let _ = parse::join(&base, text);
    }
    let _ = listen_arg::parse_listen(text);
    let _ = humantime::parse_duration(text);
});
