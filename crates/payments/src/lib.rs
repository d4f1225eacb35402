//! PaymentService: charges and refunds, exactly once per idempotency key.
//!
//! - [`store`]: the payments and refunds tables, where the unique idempotency keys decide every race;
//! - [`service`]: the gRPC implementation and its request checks;
//! - [`error`]: what can go wrong, and its gRPC status;
//! - [`access`]: who may call which method.
//!
//! Charges and refunds are safe to retry: the same key never moves money twice. A refund by charge
//! key that arrives before the charge voids it, so a caller that gave up on a charge can always
//! make sure no money stays taken.

// Every dependency is used (test builds excepted: they see the dev-dependencies too).
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod access;
pub mod error;
pub mod service;
pub mod store;

use orderly::payments::v1::PaymentServiceServer;
use orderly_kit::db::DatabaseConfig;
use orderly_kit::server::config::ServerConfig;
use orderly_kit::server::{Bootstrap, run_with_database};
use tokio::net::TcpListener;

pub use service::Payments;
pub use store::PaymentStore;

/// What the payments service needs besides the common server settings.
#[derive(Debug, Clone)]
pub struct PaymentsConfig {
    /// Its database (`sqlite://path/to/payments.db` or `postgres://...`).
    pub database: DatabaseConfig,
}

pub use orderly_kit::server::StartError;

/// Opens the database, applies migrations, and serves PaymentService on `listener` until
/// `shutdown` resolves; then drains and stops gracefully.
pub async fn serve(
    config: PaymentsConfig,
    server: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let service = Bootstrap {
        name: "payments",
        database: config.database,
        migrations: store::MIGRATIONS,
        descriptor_set: orderly::FILE_DESCRIPTOR_SET,
    };
    let server_config = server.clone();
    run_with_database(service, server, listener, shutdown, |db| {
        // A refund undoes a charge for an order that failed or was cancelled: never shed.
        orderly_kit::tune_service!(
            PaymentServiceServer::new(Payments::new(PaymentStore::new(db))),
            server_config,
            access::rules(),
            cheap = &[],
            exempt = access::NEVER_SHED
        )
    })
    .await
}
