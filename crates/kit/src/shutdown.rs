//! Shutdown: the operating system's request to stop (SIGTERM, SIGINT) as a future, and a
//! [`Shutdown`] handle that lets one signal stop every server of a process.

use tokio::sync::watch;

/// Resolves when the process receives SIGTERM or SIGINT (Ctrl-C).
///
/// If a handler cannot be installed the future only waits for the other signal; a process that can
/// install neither never shuts down on a signal, which it logs.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received: shutting down"),
        () = terminate => tracing::info!("SIGTERM received: shutting down"),
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
