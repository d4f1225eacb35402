//! CatalogService: the products Orderly sells, their prices, and their stock.
//!
//! - [`store`]: the products and reservations tables, whose conditional updates keep stock from
//!   going negative and decide every race between a commit and a release;
//! - [`service`]: the gRPC implementation and its request checks;
//! - [`error`]: what can go wrong, and its gRPC status;
//! - [`access`]: who may call which method;
//! - [`seed`]: the demo catalog `orderly up` starts with.
//!
//! Orders reserve stock before they are charged, keyed by the order id: all lines or none. A
//! reservation is then committed (sold) or released (back on hand); one that is neither before it
//! expires is released by the sweeper [`serve`] runs beside the server, so stock held by an order
//! whose service crashed comes back by itself.

// Every dependency is used (test builds excepted: they see the dev-dependencies too).
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod access;
pub mod error;
pub mod seed;
pub mod service;
pub mod store;

use std::time::Duration;

use orderly::catalog::v1::CatalogServiceServer;
use orderly_kit::db::DatabaseConfig;
use orderly_kit::pagination::PageTokens;
use orderly_kit::server::config::ServerConfig;
use orderly_kit::server::{Bootstrap, run_with_database};
use orderly_kit::shutdown::Shutdown;
use tokio::net::TcpListener;

pub use service::Catalog;
pub use store::CatalogStore;

/// The command-line flags of the catalog service.
#[derive(Debug, Clone, clap::Args)]
pub struct CatalogArgs {
    /// How often expired stock reservations are looked for and released.
    #[arg(long, env = "ORDERLY_RESERVATION_SWEEP", default_value = "5s", value_parser = humantime::parse_duration)]
    pub reservation_sweep: Duration,

    /// Add the demo catalog's products (those whose SKUs are not taken) at start.
    #[arg(long, env = "ORDERLY_DEMO_CATALOG")]
    pub demo_catalog: bool,
}

/// What the catalog service needs besides the common server settings.
#[derive(Debug, Clone)]
pub struct CatalogConfig {
    /// Its database (`sqlite://path/to/catalog.db` or `postgres://...`).
    pub database: DatabaseConfig,
    /// The secret that signs page tokens; replicas must share it.
    pub page_token_secret: orderly_kit::secret::Secret,
    /// How often expired reservations are released.
    pub reservation_sweep: Duration,
    /// Products added at start unless their SKUs are taken (the demo catalog, or none).
    pub seed: Vec<store::NewProduct>,
}

impl CatalogConfig {
    /// The defaults for a database: no seed, a sweep every 5 s.
    pub fn new(database: DatabaseConfig) -> Self {
        Self {
            database,
            page_token_secret: "orderly-development-secret".into(),
            reservation_sweep: Duration::from_secs(5),
            seed: Vec::new(),
        }
    }
}

pub use orderly_kit::server::StartError;

/// Opens the database, applies migrations, adds the seed products, and serves CatalogService on
/// `listener` until `shutdown` resolves, with the expiry sweeper beside it; then drains and stops
/// gracefully.
pub async fn serve(
    config: CatalogConfig,
    server: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let service = Bootstrap {
        name: "catalog",
        database: config.database.clone(),
        migrations: store::MIGRATIONS,
        descriptor_set: orderly::FILE_DESCRIPTOR_SET,
    };
    if !config.seed.is_empty() {
        seed(&service, &config.seed).await?;
    }
    let stop = Shutdown::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.trigger();
        }
    });
    let server_config = server.clone();
    let mut sweeping = None;
    let result = run_with_database(service, server, listener, stop.wait(), |db| {
        let store = CatalogStore::new(db);
        sweeping = Some(tokio::spawn(sweep(
            store.clone(),
            config.reservation_sweep,
            stop.clone(),
        )));
        let catalog = Catalog::new(store, PageTokens::new(config.page_token_secret.expose()));
        orderly_kit::tune_service!(
            CatalogServiceServer::new(catalog),
            server_config,
            access::rules(),
            cheap = access::CHEAP,
            exempt = access::NEVER_SHED
        )
    })
    .await;
    stop.trigger();
    if let Some(sweeping) = sweeping {
        let _ = sweeping.await;
    }
    result
}

/// Adds the seed products before the server starts, so that its first answer already has them.
async fn seed(service: &Bootstrap, products: &[store::NewProduct]) -> Result<(), StartError> {
    let db =
        orderly_kit::db::open(service.name, &service.database.url, 1, service.migrations).await?;
    let added = CatalogStore::new(db.clone()).seed(products).await;
    db.close().await;
    match added {
        Ok(added) => {
            tracing::info!(added, "demo catalog");
            Ok(())
        }
        Err(source) => Err(StartError::Setup {
            step: "write the seed products",
            source,
        }),
    }
}

/// Releases expired reservations every `interval` (a batch at a time), until `stop`.
async fn sweep(store: CatalogStore, interval: Duration, stop: Shutdown) {
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        match store
            .release_expired(orderly_kit::time::now_micros(), 500)
            .await
        {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "expired reservations released"),
            Err(error) => tracing::error!(%error, "reservation sweep failed"),
        }
        tokio::select! {
            () = &mut stopped => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
