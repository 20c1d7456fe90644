//! Memory back after a spike. glibc's malloc keeps what a burst of connections freed in its
//! arenas (only the top of a heap is returned on `free`), so after 10,000 connections come and
//! go the process stays at its peak: ~115 MB against a 13 MB baseline. When the number of
//! connections has fallen to half of its highest since the last trim, and by at least
//! [`MIN_DROP`], `malloc_trim(0)` hands the free pages back (at most once per [`EVERY`]; the
//! level after a trim is the new peak, so a crowd that leaves in stages is trimmed at each
//! stage). It runs on the blocking pool: it walks and locks every arena in turn.

use std::time::Duration;

use portcullis::ServerHandle;

/// How often the connection count (a counter) is looked at: often enough to see the peak of a
/// burst that lasts a second.
const EVERY: Duration = Duration::from_millis(250);

/// A drop smaller than this is not worth a walk of the arenas (64 connections hold a few MB:
/// their TLS and HTTP buffers).
const MIN_DROP: usize = 64;

/// Watches `handle`'s connection count until the process ends.
pub async fn watch(handle: ServerHandle) {
    let mut peak = 0usize;
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = handle.connection_count();
        peak = peak.max(now);
        if !due(peak, now) {
            continue;
        }
        let before = rss();
        let _ = tokio::task::spawn_blocking(release).await;
        tracing::debug!(
            peak,
            now,
            rss_before = before,
            rss_after = rss(),
            "connections fell: free heap pages given back to the system"
        );
        peak = now;
    }
}

/// Whether the fall from `peak` to `now` calls for a trim.
fn due(peak: usize, now: usize) -> bool {
    peak >= now + MIN_DROP && now <= peak / 2
}

/// The process's resident set in bytes, where /proc says.
fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release() {
    // SAFETY: malloc_trim takes no pointer and touches only glibc's own free lists, under the
    // arenas' locks; any thread may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators (musl's, the BSDs') give memory back by themselves, or have no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fall_to_half_the_peak_by_enough_connections_is_due() {
        assert!(due(10_000, 0));
        assert!(due(1_000, 500));
        assert!(!due(1_000, 501), "not down to half");
        assert!(due(500, 0), "the rest of a crowd that left in stages");
        assert!(due(110, 10), "an idle flood at max_connections 100");
        assert!(!due(100, 40), "a drop under MIN_DROP");
        assert!(!due(0, 0));
    }

    #[test]
    fn the_resident_set_is_read() {
        assert!(rss().unwrap() > 1 << 20);
    }
}
