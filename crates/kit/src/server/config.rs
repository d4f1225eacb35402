//! Server configuration shared by every service: flags with `ORDERLY_*` environment fallbacks.
//!
//! A service's own arguments flatten [`ServerConfig`] in, so every binary spells these the same way.

use std::time::Duration;

use crate::server::faults::FaultConfig;

/// How a gRPC server listens, limits and shuts down.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerConfig {
    /// How long in-flight calls may take to finish after a shutdown signal before they are dropped.
    #[arg(long, env = "ORDERLY_GRACE_PERIOD", default_value = "10s", value_parser = humantime::parse_duration)]
    pub grace_period: Duration,

    /// How long the server keeps answering, with health NOT_SERVING, before it stops accepting calls:
    /// time for load balancers to notice and route elsewhere.
    #[arg(long, env = "ORDERLY_DRAIN_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub drain_delay: Duration,

    /// The largest request or response message, in bytes.
    #[arg(long, env = "ORDERLY_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,

    /// The most calls each service answers at once; calls beyond it are refused
    /// (RESOURCE_EXHAUSTED; 429 at the gateway) rather than queued.
    #[arg(long, env = "ORDERLY_MAX_CONCURRENT_CALLS", default_value_t = 1024)]
    pub max_concurrent_calls: usize,

    /// How long a client connection may live before the server asks the client to reconnect (so
    /// clients rebalance onto new replicas); `0s` for no limit.
    #[arg(long, env = "ORDERLY_MAX_CONNECTION_AGE", default_value = "30m", value_parser = humantime::parse_duration)]
    pub max_connection_age: Duration,

    /// The most client connections the server keeps open; more are closed as soon as accepted.
    #[arg(long, env = "ORDERLY_MAX_CLIENT_CONNECTIONS", default_value_t = 10_000)]
    pub max_client_connections: usize,

    /// How long a new connection may take to send its request headers (HTTP/1.1) or its preface
    /// (HTTP/2) before it is closed; also how long an HTTP/1.1 connection may idle between requests.
    #[arg(long, env = "ORDERLY_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,

    /// How long an HTTP/1.1 request's body may take to arrive once its headers have: the REST
    /// gateway answers a slower one 408 and closes its connection.
    #[arg(long, env = "ORDERLY_BODY_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,

    /// A second, plaintext address serving only `grpc.health.v1` (the same statuses), for probes
    /// that cannot speak mutual TLS: Kubernetes' native gRPC probes. None by default.
    #[arg(long, env = "ORDERLY_HEALTH_LISTEN")]
    pub health_listen: Option<std::net::SocketAddr>,

    /// How often health checks probe the service's dependencies (its database).
    #[arg(long, env = "ORDERLY_HEALTH_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub health_interval: Duration,

    /// Opt-in fault injection, for tests and demos.
    #[command(flatten)]
    pub faults: FaultConfig,

    /// Who may call: the JWKS that callers' tokens are checked against.
    #[command(flatten)]
    pub auth: crate::auth::config::AuthConfig,

    /// How many calls each caller may make.
    #[command(flatten)]
    pub rate: crate::rate::RateConfig,

    /// Mutual TLS with callers and downstreams, or plaintext.
    #[command(flatten)]
    pub tls: crate::tls::config::TlsConfig,

    /// The process's gRPC servers, which this one counts itself among for `/readyz` (not a flag:
    /// whoever starts the servers sets it).
    #[arg(skip)]
    pub readiness: crate::server::health::Servers,
}

impl ServerConfig {
    /// The limits on client connections these flags set.
    pub fn connection_limits(&self) -> crate::conn::ConnectionLimits {
        crate::conn::ConnectionLimits {
            max_connections: self.max_client_connections,
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
        }
    }
}

impl Default for ServerConfig {
    /// The flags' declared defaults.
    fn default() -> Self {
        crate::args::defaults()
    }
}
