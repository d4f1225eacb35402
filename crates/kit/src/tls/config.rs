//! The flags that turn mutual TLS on: where a service's certificates are, or the operator's
//! explicit choice of plaintext.

use std::path::PathBuf;

use super::{Identity, TlsError};

/// Whether a service speaks mutual TLS to its callers and downstreams.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsConfig {
    /// A directory with the cluster's CA (`ca.pem`) and this service's certificate and key
    /// (`<service>.pem`, `<service>.key`, as `orderly certs` writes them): every gRPC hop in and
    /// out is then mutual TLS. The files are re-read when they change.
    #[arg(long, env = "ORDERLY_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,

    /// Serve and call other services in plaintext, trusting any process that can connect: without
    /// it, `serve` refuses to start without `--tls-dir`. Logged as a warning at start.
    #[arg(long, env = "ORDERLY_INSECURE_PLAINTEXT", conflicts_with = "tls_dir")]
    pub insecure_plaintext: bool,
}

impl TlsConfig {
    /// The identity of service `name` these flags give; `None` in plaintext.
    pub fn identity(&self, name: &str) -> Result<Option<Identity>, TlsError> {
        self.tls_dir
            .as_ref()
            .map(|dir| Identity::load(dir.clone(), name))
            .transpose()
    }
}
