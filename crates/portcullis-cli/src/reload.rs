//! Hot reload of the TLS configuration (Node's `setSecureContext`): on SIGHUP and when any
//! certificate, key, CA, CRL, ticket-key or OCSP file changes on disk. A broken new file is
//! logged and the running configuration kept.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use portcullis::ServerHandle;

use crate::tls_flags::TlsArgs;

/// How often files are checked for changes.
const POLL: Duration = Duration::from_secs(1);

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
    let mut seen = stamps(&args.watched_files());
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
                let now = stamps(&args.watched_files());
                if now == seen {
                    continue;
                }
                seen = now;
                "a file changed"
            }
        };
        reload(&handle, &args, why);
    }
}

fn reload(handle: &ServerHandle, args: &TlsArgs, why: &str) {
    match args
        .build()
        .and_then(|(config, _)| Ok(handle.set_tls_config(config)?))
    {
        Ok(()) => tracing::info!("{why}: TLS configuration reloaded"),
        Err(e) => tracing::error!("{why}: reload failed, keeping the running configuration: {e:#}"),
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
