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
use orderly_kit::server::config::ServerConfig;
use orderly_kit::server::{Bootstrap, run_with_database};
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

/// Opens the database, applies migrations, and serves DeliveryService on `listener` until
/// `shutdown` resolves; then drains and stops gracefully.
pub async fn serve(
    config: DeliveryConfig,
    server: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let service = Bootstrap {
        name: "delivery",
        database: config.database,
        migrations: store::MIGRATIONS,
        descriptor_set: orderly::FILE_DESCRIPTOR_SET,
    };
    let server_config = server.clone();
    run_with_database(service, server, listener, shutdown, |db| {
        // A cancel undoes a delivery for an order that failed or was cancelled: never shed.
        orderly_kit::tune_service!(
            DeliveryServiceServer::new(Deliveries::new(DeliveryStore::new(db))),
            server_config,
            access::rules(),
            cheap = &[],
            exempt = access::NEVER_SHED
        )
    })
    .await
}
