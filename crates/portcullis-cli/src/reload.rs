//! Hot reload of the TLS configuration (Node's `setSecureContext`): on SIGHUP and when any
//! certificate, key, CA, CRL, ticket-key or OCSP file changes on disk. A broken new file is
//! logged and the running configuration kept.
//!
//! Files are looked at and read on the blocking pool, never on a runtime thread, and a reload
//! that has not finished after [`RELOAD_LIMIT`] is abandoned with a warning: a path that turns
//! into something whose read never returns (a stalled network mount) leaves the server serving
//! with the certificate it has, and answering SIGTERM. Only one such job runs at a time, so a
//! stuck read does not pile up threads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use portcullis::{ServerHandle, ServerTlsConfig};

use crate::tls_flags::TlsArgs;

/// How often files are checked for changes.
const POLL: Duration = Duration::from_secs(1);

/// How long looking at or reading the files may take before the reload is abandoned.
const RELOAD_LIMIT: Duration = Duration::from_secs(10);

/// Watches until the process ends.
pub async fn watch(handle: ServerHandle, args: TlsArgs) {
    #[cfg(unix)]
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reloading on file changes only");
            None
        }
    };
    let files = args.watched_files();
    let jobs = Jobs::default();
    let mut seen = jobs
        .run(RELOAD_LIMIT, {
            let files = files.clone();
            move || stamps(&files)
        })
        .await
        .ok();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<()>();
        let why = tokio::select! {
            () = hup => "SIGHUP",
            _ = tick.tick() => {
                let files = files.clone();
                let Ok(now) = jobs.run(RELOAD_LIMIT, move || stamps(&files)).await else {
                    // Logged by `run`; looked at again at the next tick.
                    continue;
                };
                if seen.as_ref() == Some(&now) {
                    continue;
                }
                seen = Some(now);
                "a file changed"
            }
        };
        reload(&handle, &args, &jobs, why).await;
    }
}

async fn reload(handle: &ServerHandle, args: &TlsArgs, jobs: &Jobs, why: &str) {
    let args = args.clone();
    let built = jobs.run(RELOAD_LIMIT, move || args.build().map(|(config, _)| config));
    let installed = match built.await {
        Ok(Ok(config)) => install(handle, config, why),
        Ok(Err(e)) => {
            tracing::error!("{why}: reload failed, keeping the running configuration: {e:#}");
            false
        }
        Err(Skipped::Stuck) => {
            tracing::warn!(
                "{why}: reload skipped: an earlier read of the certificate files has not \
                 returned; keeping the running configuration"
            );
            false
        }
        Err(Skipped::TimedOut) => {
            tracing::warn!(
                "{why}: reload abandoned after {}s: reading the certificate files did not \
                 finish (a stalled mount or a special file?); keeping the running configuration",
                RELOAD_LIMIT.as_secs()
            );
            false
        }
        Err(Skipped::Panicked) => {
            tracing::error!("{why}: reload failed (panic), keeping the running configuration");
            false
        }
    };
    crate::metrics::RELOADS.count(installed);
}

fn install(handle: &ServerHandle, config: ServerTlsConfig, why: &str) -> bool {
    match handle.set_tls_config(config) {
        Ok(()) => {
            tracing::info!("{why}: TLS configuration reloaded");
            true
        }
        Err(e) => {
            tracing::error!("{why}: reload failed, keeping the running configuration: {e:#}");
            false
        }
    }
}

/// Why a blocking job gave no result.
#[derive(Debug, PartialEq, Eq)]
enum Skipped {
    /// An earlier job is still running (abandoned, stuck in a read).
    Stuck,
    /// The job did not finish within its limit; it is abandoned and keeps the slot until it
    /// returns.
    TimedOut,
    Panicked,
}

/// One blocking job at a time, each bounded in time.
#[derive(Debug, Default, Clone)]
struct Jobs {
    busy: Arc<AtomicBool>,
}

impl Jobs {
    async fn run<T, F>(&self, limit: Duration, job: F) -> Result<T, Skipped>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.busy.swap(true, Ordering::AcqRel) {
            return Err(Skipped::Stuck);
        }
        let busy = self.busy.clone();
        let task = tokio::task::spawn_blocking(move || {
            let result = job();
            busy.store(false, Ordering::Release);
            result
        });
        match tokio::time::timeout(limit, task).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => {
                // The job panicked before it could free the slot.
                self.busy.store(false, Ordering::Release);
                Err(Skipped::Panicked)
            }
            Err(_) => Err(Skipped::TimedOut),
        }
    }
}

/// Modification time and length of each file (missing files count as `None`).
fn stamps(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_that_never_returns_is_abandoned_and_blocks_no_other_until_it_does() {
        let jobs = Jobs::default();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let stuck = jobs.run(Duration::from_millis(50), move || {
            let _ = wait.recv();
        });
        assert_eq!(stuck.await, Err(Skipped::TimedOut));
        // While the abandoned read is stuck, no second thread is spent on another.
        assert_eq!(
            jobs.run(Duration::from_secs(5), || 1).await,
            Err(Skipped::Stuck)
        );
        release.send(()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let value = loop {
            match jobs.run(Duration::from_secs(5), || 2).await {
                Ok(value) => break value,
                Err(Skipped::Stuck) if std::time::Instant::now() < deadline => {
                    tokio::task::yield_now().await
                }
                Err(other) => panic!("{other:?}"),
            }
        };
        assert_eq!(value, 2);
    }

    #[tokio::test]
    async fn a_job_that_panics_frees_the_slot() {
        let jobs = Jobs::default();
        assert_eq!(
            jobs.run(Duration::from_secs(5), || panic!("boom")).await,
            Err::<(), _>(Skipped::Panicked)
        );
        assert_eq!(jobs.run(Duration::from_secs(5), || 3).await, Ok(3));
    }
}
