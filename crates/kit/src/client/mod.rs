//! Channels to downstream services: built once per downstream and shared by every call (a tonic
//! `Channel` multiplexes calls over HTTP/2 and reconnects by itself), with connect timeouts and
//! HTTP/2 keepalive so a dead peer is noticed.
//!
//! Each downstream's calls go through [`downstream::Downstream`]: a deadline from the caller's
//! budget ([`deadline`]), retries within a budget with jittered backoff ([`backoff`]), and a
//! circuit breaker per method ([`breaker`]), applied with the call's span and metric by a layer
//! over the channel ([`call`]). Several replicas are balanced by health
//! ([`balance`]). With a TLS identity, every connection is mutual TLS, and the server must hold
//! the certificate of the service called ([`crate::tls::client`]).

pub mod backoff;
pub mod balance;
pub mod breaker;
pub mod call;
pub mod deadline;
pub mod downstream;
pub mod endpoint;

pub use balance::Transport;
pub use endpoint::{ClientConfig, ClientError, endpoint};

/// A channel to the service `service` at `address` (see [`balance::Endpoints::parse`]: one URL,
/// a list, or `dns://host:port`) that connects on first use, so services can start in any order.
pub fn channel(
    service: &str,
    address: &str,
    config: &ClientConfig,
) -> Result<Transport, ClientError> {
    balance::Endpoints::parse(address)?.channel(service, config)
}
