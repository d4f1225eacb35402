//! The flags that turn authentication on: where the JWKS is, and which issuer and audience
//! tokens must name.

use std::path::PathBuf;
use std::sync::Arc;

use super::keys::{JwksFile, KeysError};
use super::verify::Verifier;
use super::{AUDIENCE, DEV_ISSUER};

/// How a server checks its callers' tokens.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthConfig {
    /// A JWKS file of the keys that sign callers' tokens (re-read when it changes). Without it,
    /// calls are not authenticated.
    #[arg(long, env = "ORDERLY_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,

    /// The issuer (`iss`) tokens must name.
    #[arg(long, env = "ORDERLY_JWT_ISSUER", default_value = DEV_ISSUER)]
    pub jwt_issuer: String,

    /// The audience (`aud`) tokens must name.
    #[arg(long, env = "ORDERLY_JWT_AUDIENCE", default_value = AUDIENCE)]
    pub jwt_audience: String,

    /// Accept every caller, unauthenticated: without it, `serve` refuses to start without a JWKS
    /// (and `up` makes a development key). Logged as a warning at start and on `/readyz`.
    #[arg(long, env = "ORDERLY_INSECURE_NO_AUTH", conflicts_with = "jwks_file")]
    pub insecure_no_auth: bool,
}

impl Default for AuthConfig {
    /// The flags' declared defaults: no JWKS, so no authentication.
    fn default() -> Self {
        Self {
            jwks_file: None,
            jwt_issuer: DEV_ISSUER.to_owned(),
            jwt_audience: AUDIENCE.to_owned(),
            insecure_no_auth: false,
        }
    }
}

impl AuthConfig {
    /// The verifier these flags describe; `None` when no JWKS is configured.
    pub fn verifier(&self) -> Result<Option<Arc<Verifier>>, KeysError> {
        let Some(path) = &self.jwks_file else {
            return Ok(None);
        };
        let keys = JwksFile::open(path)?;
        Ok(Some(Arc::new(Verifier::new(
            keys,
            &self.jwt_issuer,
            &self.jwt_audience,
        ))))
    }
}
