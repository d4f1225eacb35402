//! The keys tokens are verified with: a JWKS document, read from a file and read again when the
//! file changes (so keys rotate without a restart), or fetched from a URL ([`super::remote`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

/// How often the file is looked at for changes while every token names a known key.
const RECHECK: Duration = Duration::from_secs(1);

/// Why a JWKS could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The file could not be read.
    #[error("cannot read the JWKS file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The document is not a JWKS.
    #[error("the JWKS is not valid JSON of a key set: {0}")]
    Parse(#[from] serde_json::Error),
    /// It holds no key Orderly verifies with.
    #[error("the JWKS holds no RS256, ES256 (P-256) or EdDSA (Ed25519) key")]
    NoUsableKey,
    /// The JWKS URL could not be fetched.
    #[error("cannot fetch the JWKS: {0}")]
    Fetch(#[from] super::fetch::FetchError),
    /// A JWKS URL is configured but was not fetched before the verifier was asked for.
    #[error("the JWKS URL was not fetched at start (AuthConfig::fetch_jwks)")]
    NotFetched,
}

/// Where a verifier's keys come from.
#[derive(Debug, Clone)]
pub enum Jwks {
    /// A file, read again when it changes.
    File(JwksFile),
    /// A URL, fetched again on unknown keys (at most once a minute) and every ten minutes.
    Url(super::remote::JwksUrl),
}

impl Jwks {
    /// The generation of the key set in use: it changes whenever the set does.
    pub fn generation(&self) -> u64 {
        match self {
            Self::File(file) => file.generation(),
            Self::Url(url) => url.generation(),
        }
    }

    /// The key for a token naming `kid` (or none, when the set has one key).
    pub fn key(&self, kid: Option<&str>) -> Option<VerifyingKey> {
        match self {
            Self::File(file) => file.key(kid),
            Self::Url(url) => url.key(kid),
        }
    }
}

impl From<JwksFile> for Jwks {
    fn from(file: JwksFile) -> Self {
        Self::File(file)
    }
}

impl From<super::remote::JwksUrl> for Jwks {
    fn from(url: super::remote::JwksUrl) -> Self {
        Self::Url(url)
    }
}

/// One verification key and the one algorithm it verifies.
#[derive(Clone)]
pub struct VerifyingKey {
    /// The key.
    pub key: DecodingKey,
    /// Its algorithm: the only one a token checked with this key may use.
    pub algorithm: Algorithm,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// The usable keys of a JWKS, by key id.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    by_id: HashMap<String, VerifyingKey>,
    /// The set's only key, when it has exactly one: used for tokens that name no key id.
    only: Option<VerifyingKey>,
}

impl KeySet {
    /// The usable keys of the JWKS document `json`; keys of other kinds (HMAC secrets, RSA
    /// encryption keys, other curves) are skipped.
    pub fn parse(json: &[u8]) -> Result<Self, KeysError> {
        let set: JwkSet = serde_json::from_slice(json)?;
        let mut keys = Self::default();
        let mut usable = Vec::new();
        for jwk in &set.keys {
            match verifying_key(jwk) {
                Some(key) => usable.push((jwk.common.key_id.clone(), key)),
                None => tracing::warn!(
                    kid = jwk.common.key_id.as_deref().unwrap_or_default(),
                    "JWKS key skipped: only RS256, ES256 (P-256) and EdDSA (Ed25519) keys verify tokens"
                ),
            }
        }
        if usable.is_empty() {
            return Err(KeysError::NoUsableKey);
        }
        if let [(_, key)] = usable.as_slice() {
            keys.only = Some(key.clone());
        }
        for (kid, key) in usable {
            if let Some(kid) = kid {
                keys.by_id.insert(kid, key);
            }
        }
        Ok(keys)
    }

    /// The key for a token naming `kid` (or naming none, when the set has one key).
    pub fn get(&self, kid: Option<&str>) -> Option<&VerifyingKey> {
        match kid {
            Some(kid) => self.by_id.get(kid),
            None => self.only.as_ref(),
        }
    }
}

/// The key of `jwk` and its algorithm, if it is one Orderly verifies with. A key that declares an
/// algorithm must declare the one its type implies.
fn verifying_key(jwk: &Jwk) -> Option<VerifyingKey> {
    let (algorithm, declared) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (Algorithm::RS256, KeyAlgorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            (Algorithm::ES256, KeyAlgorithm::ES256)
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            (Algorithm::EdDSA, KeyAlgorithm::EdDSA)
        }
        _ => return None,
    };
    if jwk.common.key_algorithm.is_some_and(|alg| alg != declared) {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyingKey { key, algorithm })
}

/// A JWKS file, read again when it changes: looked at every second, and at once when a token names
/// a key the set does not have (a key just added by rotation).
#[derive(Debug, Clone)]
pub struct JwksFile {
    path: PathBuf,
    state: Arc<RwLock<Loaded>>,
}

#[derive(Debug)]
struct Loaded {
    keys: Arc<KeySet>,
    /// Counts the key sets read: a cache of verified tokens is only good for the set it was
    /// filled under.
    generation: u64,
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
}

impl JwksFile {
    /// Reads the JWKS at `path`; it must hold a usable key.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, KeysError> {
        let path = path.into();
        let (keys, stamp) = read(&path)?;
        Ok(Self {
            path,
            state: Arc::new(RwLock::new(Loaded {
                keys: Arc::new(keys),
                generation: 0,
                stamp,
                checked: Instant::now(),
            })),
        })
    }

    /// The generation of the key set in use (it grows each time the file is read again), after
    /// looking at the file if it was not looked at for a second.
    pub fn generation(&self) -> u64 {
        let (generation, checked) = {
            let loaded = self.state.read().unwrap_or_else(|p| p.into_inner());
            (loaded.generation, loaded.checked)
        };
        if checked.elapsed() < RECHECK {
            return generation;
        }
        self.refresh().1
    }

    /// The key for a token naming `kid`, reading the file again first if it changed.
    pub fn key(&self, kid: Option<&str>) -> Option<VerifyingKey> {
        let (keys, checked) = {
            let loaded = self.state.read().unwrap_or_else(|p| p.into_inner());
            (loaded.keys.clone(), loaded.checked)
        };
        let found = keys.get(kid).cloned();
        if found.is_some() && checked.elapsed() < RECHECK {
            return found;
        }
        self.refresh().0.get(kid).cloned()
    }

    /// The key set and its generation, read again if the file changed since it was last read. A
    /// file that became unreadable or invalid keeps the keys read before, with a warning.
    fn refresh(&self) -> (Arc<KeySet>, u64) {
        let mut loaded = self.state.write().unwrap_or_else(|p| p.into_inner());
        loaded.checked = Instant::now();
        if stamp(&self.path) == loaded.stamp {
            return (loaded.keys.clone(), loaded.generation);
        }
        match read(&self.path) {
            Ok((keys, stamp)) => {
                tracing::info!(path = %self.path.display(), "JWKS changed: keys read again");
                loaded.keys = Arc::new(keys);
                loaded.generation += 1;
                loaded.stamp = stamp;
            }
            Err(error) => {
                tracing::warn!(%error, "JWKS file changed but cannot be used; keeping the keys read before");
            }
        }
        (loaded.keys.clone(), loaded.generation)
    }
}

/// The file's modification time and length: what tells that it changed.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn read(path: &Path) -> Result<(KeySet, Option<(SystemTime, u64)>), KeysError> {
    let before = stamp(path);
    let json = std::fs::read(path).map_err(|source| KeysError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Ok((KeySet::parse(&json)?, before))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_keys_are_skipped_and_a_lone_key_serves_tokens_without_kid() {
        let secret_only = br#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}"#;
        assert!(matches!(
            KeySet::parse(secret_only),
            Err(KeysError::NoUsableKey)
        ));
        let ed = br#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"},
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"e"}]}"#;
        let keys = KeySet::parse(ed).expect("usable");
        assert_eq!(
            keys.get(Some("e")).map(|k| k.algorithm),
            Some(Algorithm::EdDSA)
        );
        assert!(keys.get(Some("h")).is_none(), "the HMAC key is never used");
        assert!(
            keys.get(None).is_some(),
            "one usable key serves a token with no kid"
        );
    }

    #[test]
    fn a_key_declaring_another_algorithm_than_its_type_is_skipped() {
        let lying = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"HS256","kid":"e",
            "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        assert!(matches!(KeySet::parse(lying), Err(KeysError::NoUsableKey)));
    }
}
