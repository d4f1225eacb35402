//! Order change notices. A replica tells its own watchers at once through an in-process broadcast;
//! watchers also re-read the database on an interval, so changes made by other replicas reach them
//! too. The broadcast is an accelerator, the database the truth.

use tokio::sync::broadcast;

/// The ids of orders that changed in this process.
#[derive(Debug, Clone)]
pub struct Changes {
    sender: broadcast::Sender<String>,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(1024).0,
        }
    }
}

impl Changes {
    /// Tells watchers that order `id` changed.
    pub fn notify(&self, id: &str) {
        // No receivers is fine: nobody is watching.
        let _ = self.sender.send(id.to_owned());
    }

    /// A receiver of every later notice.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.sender.subscribe()
    }
}
