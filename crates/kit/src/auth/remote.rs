//! The keys of a JWKS URL (an identity provider's `jwks_uri`): fetched at start, again when a
//! token names a key the set does not have (rotation), at most once a minute however many such
//! tokens come, and every ten minutes (so a key withdrawn from the set stops verifying).
//!
//! Verification never waits for the network: a token naming an unknown key is refused at once,
//! and the fetch it asked for runs beside the calls; tokens of the new key verify once it lands.
//! A failed fetch keeps the keys fetched before, with a warning.

use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::fetch::Fetcher;
use super::keys::{KeySet, KeysError, VerifyingKey};

/// The least time between two fetches.
pub const MIN_REFETCH: Duration = Duration::from_secs(60);

/// How often the set is fetched again when nothing asks for it sooner.
pub const REFRESH: Duration = Duration::from_secs(600);

/// A JWKS URL's keys, kept fresh by a task of their own; clones share them.
#[derive(Debug, Clone)]
pub struct JwksUrl {
    state: Arc<RwLock<Fetched>>,
    wanted: Arc<Notify>,
}

#[derive(Debug)]
struct Fetched {
    keys: Arc<KeySet>,
    /// The document the keys were read from: what tells that a fetch changed them.
    document: Vec<u8>,
    generation: u64,
}

impl JwksUrl {
    /// Fetches the JWKS once (it must hold a usable key), then keeps it fresh until every clone
    /// is dropped.
    pub async fn fetch(fetcher: Fetcher) -> Result<Self, KeysError> {
        Self::fetch_at_most_every(fetcher, MIN_REFETCH).await
    }

    /// Like [`JwksUrl::fetch`], with fetches asked for by unknown keys at most every `min_refetch`.
    pub async fn fetch_at_most_every(
        fetcher: Fetcher,
        min_refetch: Duration,
    ) -> Result<Self, KeysError> {
        let (keys, document) = fetch_keys(&fetcher).await?;
        let url = Self {
            state: Arc::new(RwLock::new(Fetched {
                keys: Arc::new(keys),
                document,
                generation: 0,
            })),
            wanted: Arc::new(Notify::new()),
        };
        tokio::spawn(refresh(
            fetcher,
            Arc::downgrade(&url.state),
            url.wanted.clone(),
            min_refetch,
        ));
        Ok(url)
    }

    /// The generation of the key set in use: it grows with each fetch that changed it.
    pub fn generation(&self) -> u64 {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .generation
    }

    /// The key for a token naming `kid`; when the set has none, a fetch is asked for (it runs
    /// at most once a minute) and `None` is the answer for now.
    pub fn key(&self, kid: Option<&str>) -> Option<VerifyingKey> {
        let found = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            state.keys.get(kid).cloned()
        };
        if found.is_none() {
            self.wanted.notify_one();
        }
        found
    }
}

/// The usable keys of the document at the fetcher's URL, and the document.
async fn fetch_keys(fetcher: &Fetcher) -> Result<(KeySet, Vec<u8>), KeysError> {
    let document = fetcher.get().await.map_err(KeysError::Fetch)?;
    Ok((KeySet::parse(&document)?, document))
}

/// Fetches again when asked (no sooner than `min_refetch` after the last fetch) or every ten
/// minutes, until the keys are dropped.
async fn refresh(
    fetcher: Fetcher,
    state: Weak<RwLock<Fetched>>,
    wanted: Arc<Notify>,
    min_refetch: Duration,
) {
    let mut last = Instant::now();
    loop {
        tokio::select! {
            () = wanted.notified() => {}
            () = tokio::time::sleep(REFRESH) => {}
        }
        let next = last + min_refetch;
        tokio::time::sleep_until(next.into()).await;
        let Some(state) = state.upgrade() else { return };
        last = Instant::now();
        match fetch_keys(&fetcher).await {
            Ok((keys, document)) => {
                let mut state = state.write().unwrap_or_else(|p| p.into_inner());
                if document != state.document {
                    tracing::info!(url = %fetcher.url(), "JWKS changed: keys fetched again");
                    state.keys = Arc::new(keys);
                    state.document = document;
                    state.generation += 1;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "JWKS fetch failed; keeping the keys fetched before");
            }
        }
    }
}
