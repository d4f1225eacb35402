//! Shutdown: the operating system's request to stop (SIGTERM, SIGINT) as a future, and a
//! [`Shutdown`] handle that lets one signal stop every server of a process.

use tokio::sync::watch;

/// Resolves when the process receives SIGTERM or SIGINT (Ctrl-C). The handlers are installed when
/// this is called, not when the future is first polled: from then on the signal no longer kills
/// the process (its default action), so call it before the process starts serving, or a SIGTERM
/// that arrives while the servers start would end it at once instead of draining. Needs a Tokio
/// runtime.
///
/// If a handler cannot be installed the future only waits for the other signal; a process that can
/// install neither never shuts down on a signal, which it logs.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |installed: std::io::Result<tokio::signal::unix::Signal>,
                        name: &'static str| async move {
                match installed {
                    Ok(mut stream) => {
                        stream.recv().await;
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot listen for {name}");
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                () = wait(interrupt, "SIGINT") => tracing::info!("SIGINT received: shutting down"),
                () = wait(terminate, "SIGTERM") => tracing::info!("SIGTERM received: shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::error!(%error, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
            tracing::info!("Ctrl-C received: shutting down");
        }
    }
}

/// A cloneable shutdown switch: [`Shutdown::trigger`] once, and every [`Shutdown::wait`] resolves.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A switch that is not yet triggered.
    pub fn new() -> Self {
        Self {
            sender: watch::channel(false).0,
        }
    }

    /// Flips the switch; idempotent.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Resolves once the switch is flipped (at once if it already was).
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let sender = self.sender.clone();
        async move {
            // The future holds a sender, so the channel cannot close under it.
            let mut receiver = sender.subscribe();
            let _ = receiver.wait_for(|triggered| *triggered).await;
        }
    }
}
