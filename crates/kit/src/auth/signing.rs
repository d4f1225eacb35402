//! The development signing key: an Ed25519 key `orderly up` creates under its data directory (and
//! keeps), the JWKS its services verify with, and the tokens `orderly token` prints. Production
//! deployments bring their own identity provider's JWKS instead.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// The file the key's seed is kept in, readable by its owner only.
pub const KEY_FILE: &str = "signing-key";
/// The file its JWKS is written to, for services' `--jwks-file`.
pub const JWKS_FILE: &str = "jwks.json";

/// The file `orderly up` keeps its page-token secret in, beside the key.
pub const PAGE_SECRET_FILE: &str = "page-token-secret";

/// The secret kept at `path` (readable by its owner only), made of 32 random bytes if there is
/// none yet: what `orderly up` signs page tokens with when not given one.
pub fn load_or_create_secret(path: &Path) -> Result<crate::secret::Secret, SigningError> {
    let io = |source| SigningError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().into()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| SigningError::Random(e.to_string()))?;
            let secret = URL_SAFE_NO_PAD.encode(bytes);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(io)?;
            writeln!(file, "{secret}").map_err(io)?;
            Ok(secret.into())
        }
        Err(error) => Err(io(error)),
    }
}

/// PKCS#8 v1 header of an Ed25519 private key, before its 32-byte seed (RFC 8410).
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The key file could not be read or written.
    #[error("signing key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file does not hold a key.
    #[error("signing key file {0} does not hold a base64url Ed25519 seed")]
    Malformed(String),
    /// The system gave no random bytes.
    #[error("no randomness for a new key: {0}")]
    Random(String),
    /// Signing failed.
    #[error("cannot sign the token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// An Ed25519 signing key and its key id.
pub struct SigningKey {
    kid: String,
    public: [u8; 32],
    encoding: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// What a token says: who, with which roles, from and for whom, for how long.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    /// `sub`: the user id.
    pub subject: String,
    /// `roles`, e.g. `admin`.
    pub roles: Vec<String>,
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// From now to `exp`.
    pub ttl: Duration,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    roles: &'a [String],
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
}

impl SigningKey {
    /// The key of a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        use ring::signature::KeyPair as _;
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
            .expect("any 32 bytes are an Ed25519 seed");
        let public: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .expect("an Ed25519 public key is 32 bytes");
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(public)[..12]);
        Self {
            kid,
            public,
            encoding: EncodingKey::from_ed_der(&der),
        }
    }

    /// A new random key.
    pub fn generate() -> Result<Self, SigningError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| SigningError::Random(e.to_string()))?;
        Ok(Self::from_seed(seed))
    }

    /// The key kept in `dir`, created (with its JWKS beside it) if there is none yet.
    pub fn load_or_create(dir: &Path) -> Result<Self, SigningError> {
        let path = dir.join(KEY_FILE);
        let io = |source| SigningError::Io {
            path: path.display().to_string(),
            source,
        };
        let key = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let malformed = || SigningError::Malformed(path.display().to_string());
                let seed = URL_SAFE_NO_PAD
                    .decode(text.trim())
                    .map_err(|_| malformed())?;
                Self::from_seed(seed.try_into().map_err(|_| malformed())?)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io)?;
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| SigningError::Random(e.to_string()))?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io)?;
                writeln!(file, "{}", URL_SAFE_NO_PAD.encode(seed)).map_err(io)?;
                Self::from_seed(seed)
            }
            Err(error) => return Err(io(error)),
        };
        let jwks = dir.join(JWKS_FILE);
        std::fs::write(&jwks, key.jwks()).map_err(|source| SigningError::Io {
            path: jwks.display().to_string(),
            source,
        })?;
        Ok(key)
    }

    /// The key id tokens name.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWKS of this key.
    pub fn jwks(&self) -> String {
        serde_json::json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.public),
        }]})
        .to_string()
    }

    /// A token as `spec` says, valid from now.
    pub fn token(&self, spec: &TokenSpec) -> Result<String, SigningError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        self.token_at(spec, now)
    }

    /// A token as `spec` says, valid from `now` (seconds since the Unix epoch).
    pub fn token_at(&self, spec: &TokenSpec, now: u64) -> Result<String, SigningError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let claims = Claims {
            sub: &spec.subject,
            roles: &spec.roles,
            iss: &spec.issuer,
            aud: &spec.audience,
            iat: now,
            nbf: now,
            exp: now + spec.ttl.as_secs(),
        };
        super::crypto::install();
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn the_development_key_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let first = SigningKey::load_or_create(dir.path()).expect("create");
        let again = SigningKey::load_or_create(dir.path()).expect("load");
        assert_eq!(first.kid(), again.kid());
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner reads the key");
        let jwks = std::fs::read_to_string(dir.path().join(JWKS_FILE)).expect("JWKS file");
        assert_eq!(jwks, first.jwks());
        assert!(
            !jwks.contains(
                &std::fs::read_to_string(dir.path().join(KEY_FILE))
                    .expect("seed")
                    .trim()
                    .to_owned()
            )
        );
    }
}
