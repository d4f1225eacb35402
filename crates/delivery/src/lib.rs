//! DeliveryService: schedules and cancels the shipping of orders, at most one delivery per order.
//!
//! - [`store`]: the deliveries table, where the unique order id decides every race;
//! - [`service`]: the gRPC implementation and its request checks;
//! - [`error`]: what can go wrong, and its gRPC status;
//! - [`access`]: who may call which method.
//!
//! Scheduling is idempotent per order, and a cancel that arrives before its schedule leaves a
//! cancelled record behind, so the late schedule finds it and books nothing.

// Every dependency is used (test builds excepted: they see the dev-dependencies too).
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod access;
pub mod error;
pub mod service;
pub mod store;

use orderly::delivery::v1::DeliveryServiceServer;
use orderly_kit::db::DatabaseConfig;
use orderly_kit::declare::{Launch, NoFlags};
use orderly_kit::server::config::ServerConfig;
use tokio::net::TcpListener;

pub use service::Deliveries;
pub use store::DeliveryStore;

/// What the delivery service needs besides the common server settings.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Its database (`sqlite://path/to/delivery.db` or `postgres://...`).
    pub database: DatabaseConfig,
}

pub use orderly_kit::server::StartError;

/// DeliveryService's declaration: what the application's builder starts.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryService;

impl orderly_kit::declare::Service for DeliveryService {
    const NAME: &'static str = "delivery";
    const TITLE: &'static str = orderly::delivery::v1::delivery_service_methods::SERVICE;
    const PORT: u16 = 50054;

    type Flags = NoFlags;
    type Config = DeliveryConfig;
    type Error = StartError;

    fn configure(_: NoFlags, launch: &Launch) -> Result<DeliveryConfig, StartError> {
        Ok(DeliveryConfig {
            database: launch.database.clone(),
        })
    }

    async fn run(config: DeliveryConfig, launch: Launch) -> Result<(), StartError> {
        let db = launch
            .open_database(&config.database, store::MIGRATIONS)
            .await?;
        // A cancel undoes a delivery for an order that failed or was cancelled: never shed.
        let service = orderly_kit::tune_service!(
            DeliveryServiceServer::new(Deliveries::new(DeliveryStore::new(db.clone()))),
            launch.server,
            access::rules(),
            cheap = &[],
            exempt = access::NEVER_SHED
        )?;
        let server = launch
            .grpc_server(orderly::FILE_DESCRIPTOR_SET)?
            .add_service(service);
        launch.serve_grpc(db, server).await
    }
}

/// Opens the database, applies migrations, and serves the service on `listener` until
/// `shutdown` resolves; then drains and stops gracefully.
pub async fn serve(
    config: DeliveryConfig,
    server: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    Launch::serve_alone::<DeliveryService>(config, server, listener, shutdown).await
}
