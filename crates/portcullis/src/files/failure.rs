//! What an I/O error on the way to a file answers, and its log line.
//!
//! Running out of file descriptors or memory is the server's state, not the request's: 503
//! with `Retry-After`, and one warning per interval with the count, so an fd-exhaustion attack
//! neither hides in silence nor floods the log. A symlink loop or a file the server may not
//! read is 403, as nginx answers; anything else unexpected is 500 with its cause logged.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The answer an I/O error calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The path does not exist (or a part of it is not a directory): 404.
    NotFound,
    /// A symlink loop, or permission denied: 403.
    Forbidden,
    /// Out of file descriptors or memory: 503 with `Retry-After`.
    Exhausted,
    /// Anything else: 500.
    Other,
}

pub(crate) fn classify(e: &io::Error) -> Failure {
    #[cfg(target_os = "linux")]
    if let Some(errno) = rustix::io::Errno::from_io_error(e) {
        use rustix::io::Errno;
        match errno {
            Errno::NOENT | Errno::NOTDIR | Errno::NAMETOOLONG => return Failure::NotFound,
            Errno::LOOP | Errno::ACCESS | Errno::PERM => return Failure::Forbidden,
            Errno::MFILE | Errno::NFILE | Errno::NOMEM => return Failure::Exhausted,
            _ => {}
        }
    }
    match e.kind() {
        io::ErrorKind::NotFound => Failure::NotFound,
        io::ErrorKind::PermissionDenied => Failure::Forbidden,
        io::ErrorKind::OutOfMemory => Failure::Exhausted,
        _ => Failure::Other,
    }
}

/// One warning per [`FailureLog::INTERVAL`] and kind, with how many failures it stands for.
#[derive(Debug)]
pub(crate) struct FailureLog {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last line, per kind (exhausted, other); `u64::MAX`
    /// before the first.
    last: [AtomicU64; 2],
    /// Failures since the last line, per kind.
    count: [AtomicU64; 2],
}

impl Default for FailureLog {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            last: [AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)],
            count: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }
}

impl FailureLog {
    pub(crate) const INTERVAL: Duration = Duration::from_secs(10);

    /// Counts the failure; logs it when the interval since the last line has passed.
    pub(crate) fn record(&self, failure: Failure, path: &Path, e: &io::Error) {
        let slot = match failure {
            Failure::Exhausted => 0,
            Failure::Other => 1,
            Failure::NotFound | Failure::Forbidden => return,
        };
        self.count[slot].fetch_add(1, Relaxed);
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.last[slot].load(Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= Self::INTERVAL.as_millis() as u64;
        if !due
            || self.last[slot]
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_err()
        {
            return;
        }
        let count = self.count[slot].swap(0, Relaxed).max(1);
        match failure {
            Failure::Exhausted => tracing::warn!(
                path = %path.display(),
                failures = count,
                "static files: cannot open files ({e}); answering 503 until it passes \
                 ({count} in the last {}s at most)",
                Self::INTERVAL.as_secs()
            ),
            _ => tracing::error!(
                path = %path.display(),
                failures = count,
                "static files: cannot read the file: {e} ({count} such errors in the last {}s \
                 at most)",
                Self::INTERVAL.as_secs()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn errors_map_to_what_nginx_or_an_operator_would_expect() {
        use rustix::io::Errno;
        let os = |errno: Errno| io::Error::from_raw_os_error(errno.raw_os_error());
        assert_eq!(classify(&os(Errno::NOENT)), Failure::NotFound);
        assert_eq!(classify(&os(Errno::NOTDIR)), Failure::NotFound);
        assert_eq!(classify(&os(Errno::LOOP)), Failure::Forbidden);
        assert_eq!(classify(&os(Errno::ACCESS)), Failure::Forbidden);
        assert_eq!(classify(&os(Errno::MFILE)), Failure::Exhausted);
        assert_eq!(classify(&os(Errno::NFILE)), Failure::Exhausted);
        assert_eq!(classify(&os(Errno::NOMEM)), Failure::Exhausted);
        assert_eq!(classify(&os(Errno::IO)), Failure::Other);
    }

    #[test]
    fn a_burst_of_failures_logs_one_line_per_interval() {
        let log = FailureLog::default();
        let e = io::Error::other("boom");
        for _ in 0..100 {
            log.record(Failure::Other, Path::new("/x"), &e);
        }
        // The first failure logged at once; the 99 after it wait for the next interval.
        assert_eq!(log.count[1].load(Relaxed), 99);
        assert_ne!(log.last[1].load(Relaxed), u64::MAX);
        // 404s and 403s are the request's fault: not counted.
        log.record(Failure::NotFound, Path::new("/x"), &e);
        assert_eq!(log.count[1].load(Relaxed), 99);
    }
}
