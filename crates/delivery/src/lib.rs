//! DeliveryService: schedules and cancels the shipping of orders, at most one delivery per order.
//!
//! - [`store`]: the deliveries table, where the unique order id decides every race;
//! - [`service`]: the gRPC implementation and its request checks;
//! - [`error`]: what can go wrong, and its gRPC status.
//!
//! Scheduling is idempotent per order, and a cancel that arrives before its schedule leaves a
//! cancelled record behind, so the late schedule finds it and books nothing.

pub mod error;
pub mod service;
pub mod store;

use orderly::delivery::v1::DeliveryServiceServer;
use orderly_kit::server::GrpcServer;
use orderly_kit::server::config::ServerConfig;
use tokio::net::TcpListener;

pub use service::Deliveries;
pub use store::DeliveryStore;

/// What the delivery service needs besides the common server settings.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// `sqlite://path/to/delivery.db` (created when missing) or `postgres://...`.
    pub database_url: String,
    /// The most database connections the service opens.
    pub max_connections: u32,
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
    let pool = orderly_kit::db::open(
        "delivery",
        &config.database_url,
        config.max_connections,
        store::MIGRATIONS,
    )
    .await?;
    let deliveries = Deliveries::new(DeliveryStore::new(pool.clone()));
    GrpcServer::new(server.clone())
        .add_service(orderly_kit::tune_service!(
            DeliveryServiceServer::new(deliveries),
            server
        ))
        .reflect(orderly::FILE_DESCRIPTOR_SET)
        .serve_with_pool(pool, listener, shutdown)
        .await?;
    Ok(())
}
