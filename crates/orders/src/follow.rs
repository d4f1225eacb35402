//! Following one order's changes: the first read gives its current state, each later one waits for
//! a new version, woken by this process's change notices or, for changes made by other replicas,
//! by re-reading the database on an interval.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use crate::changes::Changes;
use crate::model::OrderRecord;
use crate::store::OrderStore;

/// Reads successive versions of one order.
#[derive(Debug)]
pub struct Follower {
    store: OrderStore,
    notices: tokio::sync::broadcast::Receiver<String>,
    id: String,
    poll: Duration,
    last_version: Option<i64>,
}

impl Follower {
    /// Starts following order `id`. Notices are subscribed before anything is read, so no change
    /// can slip between the first read and the first wait.
    pub fn new(store: OrderStore, changes: &Changes, id: &str, poll: Duration) -> Self {
        Self {
            store,
            notices: changes.subscribe(),
            id: id.to_owned(),
            poll,
            last_version: None,
        }
    }

    /// The order's next version (its current one on the first call), or `None` if it does not
    /// exist.
    pub async fn next(&mut self) -> Result<Option<OrderRecord>, orderly_kit::db::QueryError> {
        loop {
            let Some(order) = self.store.get(&self.id).await? else {
                return Ok(None);
            };
            if self.last_version != Some(order.version) {
                self.last_version = Some(order.version);
                return Ok(Some(order));
            }
            self.wait().await;
        }
    }

    /// Waits for a notice about this order, or for the poll interval.
    async fn wait(&mut self) {
        let poll = tokio::time::sleep(self.poll);
        tokio::pin!(poll);
        loop {
            tokio::select! {
                () = &mut poll => return,
                notice = self.notices.recv() => match notice {
                    Ok(id) if id != self.id => continue,
                    // Our order, or notices were missed: read again. A closed channel leaves polling.
                    Ok(_) | Err(RecvError::Lagged(_)) => return,
                    Err(RecvError::Closed) => return (&mut poll).await,
                },
            }
        }
    }
}
