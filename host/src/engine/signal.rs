//! Ctrl-C and SIGTERM: a run rolls back and records itself before the process exits.

use connector_api::{Error, ErrorKind};

/// Resolves with the signal's name on Ctrl-C (SIGINT) or SIGTERM (a scheduler stopping
/// the job), so the run can roll back and record itself as failed before exiting.
pub(super) async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut int), Ok(mut term)) => tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
        }
    }
}

/// The error of a run stopped by `signal`.
pub(super) fn interrupted(signal: &str) -> Error {
    Error::new(
        ErrorKind::Interrupted,
        format!("interrupted by {signal}; nothing of this run was committed beyond its checkpoints"),
    )
}
