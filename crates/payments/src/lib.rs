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
use orderly_kit::declare::{Launch, NoFlags};
use orderly_kit::server::config::ServerConfig;
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

/// PaymentService's declaration: what the application's builder starts.
#[derive(Debug, Clone, Copy)]
pub struct PaymentsService;

impl orderly_kit::declare::Service for PaymentsService {
    const NAME: &'static str = "payments";
    const TITLE: &'static str = orderly::payments::v1::payment_service_methods::SERVICE;
    const PORT: u16 = 50053;

    type Flags = NoFlags;
    type Config = PaymentsConfig;
    type Error = StartError;

    fn configure(_: NoFlags, launch: &Launch) -> Result<PaymentsConfig, StartError> {
        Ok(PaymentsConfig {
            database: launch.database.clone(),
        })
    }

    async fn run(config: PaymentsConfig, launch: Launch) -> Result<(), StartError> {
        let db = launch
            .open_database(&config.database, store::MIGRATIONS)
            .await?;
        // A refund undoes a charge for an order that failed or was cancelled: never shed.
        let service = orderly_kit::tune_service!(
            PaymentServiceServer::new(Payments::new(PaymentStore::new(db.clone()))),
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
    config: PaymentsConfig,
    server: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    Launch::serve_alone::<PaymentsService>(config, server, listener, shutdown).await
}
