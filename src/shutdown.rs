//! The shutdown signal every long-running part watches: a `watch` channel that turns
//! true once, on SIGTERM or SIGINT (or when a test says so).

use tokio::sync::watch;

/// Resolves once `shutdown` is true, without holding the channel's lock afterwards.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// A channel that turns true on SIGTERM or SIGINT (Ctrl-C).
pub fn on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_termination().await;
        tracing::info!("shutdown requested; finishing in-flight polls");
        let _ = tx.send(true);
    });
    rx
}

#[cfg(unix)]
async fn wait_for_termination() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_termination() {
    let _ = tokio::signal::ctrl_c().await;
}
