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
//! expires is released by the sweeper the service runs beside its server, so stock held by an order
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
use orderly_kit::declare::Launch;
use orderly_kit::declare::launch::Stopped;
use orderly_kit::pagination::PageTokens;
use orderly_kit::server::config::ServerConfig;
use tokio::net::TcpListener;

pub use service::Catalog;
pub use store::CatalogStore;

/// The command-line flags of the catalog service.
#[derive(Debug, Clone, clap::Args)]
pub struct CatalogArgs {
    /// How often expired stock reservations are looked for and released.
    #[arg(long, env = "ORDERLY_RESERVATION_SWEEP", default_value = "5s", value_parser = humantime::parse_duration)]
    pub reservation_sweep: Duration,

    /// Add the demo catalog's products (those whose SKUs are not taken) at start; `orderly up`
    /// always does, unless --empty-catalog.
    #[arg(long, env = "ORDERLY_DEMO_CATALOG")]
    pub demo_catalog: bool,

    /// Under `orderly up`: start with an empty catalog instead of the demo products.
    #[arg(long, env = "ORDERLY_EMPTY_CATALOG")]
    pub empty_catalog: bool,
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

/// CatalogService's declaration: what the application's builder starts.
#[derive(Debug, Clone, Copy)]
pub struct CatalogService;

impl orderly_kit::declare::Service for CatalogService {
    const NAME: &'static str = "catalog";
    const TITLE: &'static str = orderly::catalog::v1::catalog_service_methods::SERVICE;
    const PORT: u16 = 50055;
    const SIGNS_PAGES: bool = true;

    type Flags = CatalogArgs;
    type Config = CatalogConfig;
    type Error = StartError;

    fn configure(flags: CatalogArgs, launch: &Launch) -> Result<CatalogConfig, StartError> {
        let mut config = CatalogConfig::new(launch.database.clone());
        config.page_token_secret = launch.page_token_secret.clone();
        config.reservation_sweep = flags.reservation_sweep;
        if flags.demo_catalog || (launch.demo && !flags.empty_catalog) {
            config.seed = seed::demo_catalog();
        }
        Ok(config)
    }

    /// Adds the seed products before the server starts, so that its first answer already has
    /// them, and releases expired reservations beside the server.
    async fn run(config: CatalogConfig, mut launch: Launch) -> Result<(), StartError> {
        let db = launch
            .open_database(&config.database, store::MIGRATIONS)
            .await?;
        let store = CatalogStore::new(db.clone());
        if let Err(error) = seed(&store, &config.seed).await {
            db.close().await;
            return Err(error);
        }
        let interval = config.reservation_sweep;
        launch.background(|stopped| sweep(store.clone(), interval, stopped));
        let catalog = Catalog::new(store, PageTokens::new(config.page_token_secret.expose()));
        let service = orderly_kit::tune_service!(
            CatalogServiceServer::new(catalog),
            launch.server,
            access::rules(),
            cheap = access::CHEAP,
            exempt = access::NEVER_SHED
        )?;
        let server = launch
            .grpc_server(orderly::FILE_DESCRIPTOR_SET)?
            .add_service(service);
        launch.serve_grpc(db, server).await
    }
}

/// Opens the database, applies migrations, adds the seed products, and serves CatalogService on
/// `listener` until `shutdown` resolves, with the expiry sweeper beside it; then drains and stops
/// gracefully.
pub async fn serve(
    config: CatalogConfig,
    server: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    Launch::serve_alone::<CatalogService>(config, server, listener, shutdown).await
}

/// Adds the products of `products` whose SKUs are not taken (none to add: nothing done).
async fn seed(store: &CatalogStore, products: &[store::NewProduct]) -> Result<(), StartError> {
    if products.is_empty() {
        return Ok(());
    }
    match store.seed(products).await {
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

/// Releases expired reservations every `interval` (a batch at a time), until `stopped`.
async fn sweep(store: CatalogStore, interval: Duration, mut stopped: Stopped) {
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
