//! The gateway's declaration, for the application's builder (feature `declared`: it brings the
//! kit's server settings, which the gateway alone does not need).

use orderly_kit::declare::{Launch, Service};
use orderly_kit::rate::CallerLimits;
use orderly_kit::server::StartError;

use crate::callers::Callers;
use crate::{GatewayConfig, GatewayError};

/// The gateway's own flags; the defaults are the crate's.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayFlags {
    /// How long a REST request may take, service calls and retries included.
    #[arg(long, env = "ORDERLY_REQUEST_TIMEOUT", default_value_t = crate::DEFAULT_REQUEST_TIMEOUT.into())]
    pub request_timeout: humantime::Duration,

    /// The largest REST request body accepted, in bytes (larger ones get 413).
    #[arg(long, env = "ORDERLY_MAX_BODY_BYTES", default_value_t = crate::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
}

/// Why the declared gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum DeclaredError {
    /// Its settings could not be used (keys, certificates, a service's address).
    #[error(transparent)]
    Setup(#[from] StartError),
    /// The gateway failed.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

/// The REST gateway's declaration: what the application's builder starts.
#[derive(Debug, Clone, Copy)]
pub struct GatewayService;

/// The services the gateway calls, by name.
const USERS: &str = "users";
const ORDERS: &str = "orders";
const CATALOG: &str = "catalog";

impl Service for GatewayService {
    const NAME: &'static str = crate::SERVICE_NAME;
    const TITLE: &'static str = "the REST/JSON gateway";
    const PORT: u16 = 8080;
    const GRPC: bool = false;
    const DATABASE: bool = false;
    const CALLS: &'static [&'static str] = &[USERS, ORDERS, CATALOG];

    type Flags = GatewayFlags;
    type Config = GatewayConfig;
    type Error = DeclaredError;

    fn configure(flags: GatewayFlags, launch: &Launch) -> Result<GatewayConfig, DeclaredError> {
        let server = &launch.server;
        let peers = &launch.peers;
        let mut config = GatewayConfig::new(peers.url(USERS)?, peers.url(ORDERS)?);
        config.catalog_url = peers.url(CATALOG)?.to_owned();
        config.request_timeout = flags.request_timeout.into();
        config.max_body_bytes = flags.max_body_bytes;
        config.max_concurrent_requests = server.max_concurrent_calls;
        config.connections = server.connection_limits();
        config.grace_period = server.grace_period;
        config.calls = launch.calls.clone();
        // The gateway calls the services as itself, over mutual TLS when configured.
        config.calls.client.tls = server.tls.identity(Self::NAME).map_err(StartError::from)?;
        config.callers = Callers {
            verifier: server.auth.verifier().map_err(StartError::from)?,
            limits: CallerLimits::new(server.rate),
        };
        Ok(config)
    }

    async fn run(config: GatewayConfig, launch: Launch) -> Result<(), DeclaredError> {
        let stopping = launch.stopping();
        Ok(crate::serve(config, launch.listener, stopping).await?)
    }
}
