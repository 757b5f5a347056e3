//! The process signals the daemon answers: SIGTERM and SIGINT stop it (a `watch` channel
//! that turns true once), SIGHUP asks for a configuration reload. Tests drive the same
//! channel and call the reload directly, so the daemon's loop needs no real signal.

use std::future::Future;

use tokio::sync::watch;

/// Resolves once `shutdown` is true, without holding the channel's lock afterwards.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// A channel that turns true on SIGTERM or SIGINT (Ctrl-C).
pub fn on_termination() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_termination().await;
        tracing::info!("shutdown requested; finishing in-flight polls");
        let _ = tx.send(true);
    });
    rx
}

/// Runs `reload` (blocking work, off the async workers) on every SIGHUP until `shutdown`.
pub async fn reload_on_hangup<F, R>(reload: F, mut shutdown: watch::Receiver<bool>)
where
    F: Fn() -> R + Send + Sync + Clone + 'static,
    R: Send + 'static,
{
    let mut hangups = match hangups() {
        Some(h) => h,
        None => {
            tracing::warn!("cannot listen for SIGHUP; reload with POST /-/reload instead");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = hangups.recv() => {
                tracing::info!("SIGHUP received; reloading the configuration");
                let reload = reload.clone();
                let _ = tokio::task::spawn_blocking(reload).await;
            }
            _ = stopped(&mut shutdown) => return,
        }
    }
}

#[cfg(unix)]
fn hangups() -> Option<impl HangupStream> {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangups() -> Option<NoHangups> {
    None
}

/// A stream of SIGHUPs.
trait HangupStream {
    fn recv(&mut self) -> impl Future<Output = Option<()>> + Send;
}

#[cfg(unix)]
impl HangupStream for tokio::signal::unix::Signal {
    fn recv(&mut self) -> impl Future<Output = Option<()>> + Send {
        tokio::signal::unix::Signal::recv(self)
    }
}

#[cfg(not(unix))]
struct NoHangups;

#[cfg(not(unix))]
impl HangupStream for NoHangups {
    async fn recv(&mut self) -> Option<()> {
        std::future::pending().await
    }
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
