//! Channels to downstream services: built once per downstream and shared by every call (a tonic
//! `Channel` multiplexes calls over HTTP/2 and reconnects by itself), with connect timeouts and
//! HTTP/2 keepalive so a dead peer is noticed.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

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
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
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

/// A channel to `address` (see [`crate::balance::Endpoints::parse`]: one URL, a list, or
/// `dns://host:port`) that connects on first use, so services can start in any order.
pub fn channel(address: &str, config: &ClientConfig) -> Result<Channel, ClientError> {
    crate::balance::Endpoints::parse(address)?.channel(config)
}
