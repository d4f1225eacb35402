//! The flags that turn authentication on: where the JWKS is, and which issuer and audience
//! tokens must name.

use std::path::PathBuf;
use std::sync::Arc;

use super::fetch::Fetcher;
use super::keys::{Jwks, JwksFile, KeysError};
use super::remote::JwksUrl;
use super::verify::Verifier;
use super::{AUDIENCE, DEV_ISSUER};

/// How a server checks its callers' tokens.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthConfig {
    /// A JWKS file of the keys that sign callers' tokens (re-read when it changes). Without it,
    /// calls are not authenticated.
    #[arg(long, env = "ORDERLY_JWKS_FILE", conflicts_with = "jwks_url")]
    pub jwks_file: Option<PathBuf>,

    /// A JWKS URL (an identity provider's `jwks_uri`; https, or http on loopback): fetched at
    /// start, again when a token names an unknown key (at most once a minute) and every ten
    /// minutes.
    #[arg(long, env = "ORDERLY_JWKS_URL")]
    pub jwks_url: Option<String>,

    /// CA certificates (PEM) trusted for the JWKS URL besides the system's.
    #[arg(long, env = "ORDERLY_JWKS_CA", requires = "jwks_url")]
    pub jwks_ca: Option<PathBuf>,

    /// How long one fetch of the JWKS URL may take.
    #[arg(long, env = "ORDERLY_JWKS_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub jwks_timeout: std::time::Duration,

    /// The JWKS URL's keys once fetched ([`AuthConfig::fetch_jwks`]); shared by clones.
    #[arg(skip)]
    pub fetched: Option<JwksUrl>,

    /// The issuer (`iss`) tokens must name.
    #[arg(long, env = "ORDERLY_JWT_ISSUER", default_value = DEV_ISSUER)]
    pub jwt_issuer: String,

    /// The audience (`aud`) tokens must name.
    #[arg(long, env = "ORDERLY_JWT_AUDIENCE", default_value = AUDIENCE)]
    pub jwt_audience: String,

    /// Accept every caller, unauthenticated: without it, `serve` refuses to start without a JWKS
    /// (and `up` makes a development key). Logged as a warning at start and on `/readyz`.
    #[arg(long, env = "ORDERLY_INSECURE_NO_AUTH", conflicts_with_all = ["jwks_file", "jwks_url"])]
    pub insecure_no_auth: bool,
}

impl Default for AuthConfig {
    /// The flags' declared defaults: no JWKS, so no authentication.
    fn default() -> Self {
        Self {
            jwks_file: None,
            jwks_url: None,
            jwks_ca: None,
            jwks_timeout: std::time::Duration::from_secs(5),
            fetched: None,
            jwt_issuer: DEV_ISSUER.to_owned(),
            jwt_audience: AUDIENCE.to_owned(),
            insecure_no_auth: false,
        }
    }
}

impl AuthConfig {
    /// Whether callers' tokens are checked (a JWKS file or URL is configured).
    pub fn enabled(&self) -> bool {
        self.jwks_file.is_some() || self.jwks_url.is_some()
    }

    /// Fetches the JWKS URL, if one is configured, and keeps its keys here for
    /// [`AuthConfig::verifier`] (and every clone made after) to use: once per process, at start.
    pub async fn fetch_jwks(&mut self) -> Result<(), KeysError> {
        if let (Some(url), None) = (&self.jwks_url, &self.fetched) {
            let fetcher = Fetcher::new(url, self.jwks_ca.as_deref(), self.jwks_timeout)?;
            self.fetched = Some(JwksUrl::fetch(fetcher).await?);
        }
        Ok(())
    }

    /// The verifier these flags describe; `None` when no JWKS is configured.
    pub fn verifier(&self) -> Result<Option<Arc<Verifier>>, KeysError> {
        let keys = match (&self.jwks_file, &self.jwks_url, &self.fetched) {
            (Some(path), _, _) => Jwks::File(JwksFile::open(path)?),
            (None, Some(_), Some(fetched)) => Jwks::Url(fetched.clone()),
            (None, Some(_), None) => return Err(KeysError::NotFetched),
            (None, None, _) => return Ok(None),
        };
        Ok(Some(Arc::new(Verifier::new(
            keys,
            &self.jwt_issuer,
            &self.jwt_audience,
        ))))
    }
}
