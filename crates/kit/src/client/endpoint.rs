//! Endpoints to downstream services: the connect timeout and HTTP/2 keepalive every channel
//! uses, and why an address may be refused.

use std::time::Duration;

use tonic::transport::Endpoint;

/// Why a channel could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address is not a valid URI.
    #[error("invalid service address {uri:?}: {source}")]
    BadUri {
        /// The address.
        uri: String,
        /// Why.
        source: tonic::transport::Error,
    },
    /// The downstream's name cannot be a TLS server name.
    #[error("invalid service name {0:?} for TLS")]
    BadServiceName(String),
    /// The address is none of the accepted forms.
    #[error(
        "invalid service address {0:?}: use http://host:port, a comma-separated list, or dns://host:port"
    )]
    BadAddress(String),
}

/// How channels connect and keep alive.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
    /// How often an HTTP/2 ping checks an idle connection.
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is dropped.
    pub keepalive_timeout: Duration,
    /// The identity to dial over mutual TLS with; plaintext when `None`.
    pub tls: Option<crate::tls::Identity>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// An endpoint for `uri` with the connect timeout and keepalive of `config`.
pub fn endpoint(uri: &str, config: &ClientConfig) -> Result<Endpoint, ClientError> {
    Ok(Endpoint::from_shared(uri.to_owned())
        .map_err(|source| ClientError::BadUri {
            uri: uri.to_owned(),
            source,
        })?
        .connect_timeout(config.connect_timeout)
        .http2_keep_alive_interval(config.keepalive_interval)
        .keep_alive_timeout(config.keepalive_timeout)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true))
}
