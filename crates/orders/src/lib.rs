//! OrderService: places orders across users, the catalog, payments and delivery, and undoes what
//! failed.
//!
//! - [`model`]: validated orders and their totals;
//! - [`store`]: the orders tables and their conditional transitions;
//! - [`downstream`]: keyed, deadline-bound calls to users, the catalog, payments and delivery;
//! - [`flow`]: the saga (fan-out, commit the stock and confirm, or compensate), cancelling, and
//!   crash recovery;
//! - [`changes`] and [`follow`]: change notices and following an order, for WatchOrder;
//! - [`outcomes`]: counters of what became of orders (settled by status, compensated, recovered);
//! - [`service`]: the gRPC implementation; [`error`]: its errors and their statuses;
//! - [`access`]: who may call which method.
//!
//! The service also runs the recovery sweep: at start and then on an interval, every order whose work
//! stood still longer than `recover_after` is settled, so no charge is ever orphaned by a crash.

// Every dependency is used (test builds excepted: they see the dev-dependencies too).
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod access;
pub mod changes;
pub mod downstream;
pub mod error;
pub mod flow;
pub mod follow;
pub mod model;
pub mod outcomes;
pub mod service;
pub mod store;

use std::time::Duration;

use orderly::orders::v1::OrderServiceServer;
use orderly_kit::client::downstream::DownstreamConfig;
use orderly_kit::db::DatabaseConfig;
use orderly_kit::declare::Launch;
use orderly_kit::declare::launch::Stopped;
use orderly_kit::pagination::PageTokens;
use orderly_kit::server::config::ServerConfig;
use tokio::net::TcpListener;

use crate::changes::Changes;
use crate::downstream::{DownstreamUrls, Downstreams};
use crate::flow::{Flow, FlowConfig};
pub use crate::service::{Orders, Timing};
use crate::store::OrderStore;

/// The command-line flags of the orders service's timing; their defaults are
/// [`OrdersConfig::new`]'s.
#[derive(Debug, Clone, clap::Args)]
pub struct OrdersArgs {
    /// The most a CreateOrder's payment and delivery may take together.
    #[arg(long, env = "ORDERLY_ORDER_BUDGET", default_value = "5s", value_parser = humantime::parse_duration)]
    pub order_budget: Duration,

    /// How long an order's work may stand still before the recovery sweep settles it.
    #[arg(long, env = "ORDERLY_RECOVER_AFTER", default_value = "60s", value_parser = humantime::parse_duration)]
    pub recover_after: Duration,

    /// How often the recovery sweep runs.
    #[arg(long, env = "ORDERLY_SWEEP_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub sweep_interval: Duration,
}

impl Default for OrdersArgs {
    /// The flags' declared defaults.
    fn default() -> Self {
        orderly_kit::args::defaults()
    }
}

/// What the orders service needs besides the common server settings.
#[derive(Debug, Clone)]
pub struct OrdersConfig {
    /// Its database (`sqlite://path/to/orders.db` or `postgres://...`).
    pub database: DatabaseConfig,
    /// The secret that signs page tokens; replicas must share it.
    pub page_token_secret: orderly_kit::secret::Secret,
    /// Where users, the catalog, payments and delivery listen.
    pub downstream: DownstreamUrls,
    /// The most a CreateOrder fan-out may take (the caller's deadline may shorten it).
    pub budget: Duration,
    /// How long an order's work may stand still before the recovery sweep settles it. Longer than
    /// any live saga, so that one replica never settles another's order in flight.
    pub recover_after: Duration,
    /// How often the recovery sweep runs.
    pub sweep_interval: Duration,
    /// How often watchers re-read an order, for changes made by other replicas.
    pub watch_poll: Duration,
    /// How long undo calls may take.
    pub flow: FlowConfig,
    /// Retries, retry budget and circuit breakers of the calls to users, payments and delivery.
    pub calls: DownstreamConfig,
}

impl OrdersConfig {
    /// The defaults (the flags' of [`OrdersArgs`]), for a database and downstreams.
    pub fn new(database: DatabaseConfig, downstream: DownstreamUrls) -> Self {
        Self::with_args(database, downstream, &OrdersArgs::default())
    }

    /// The settings `args` ask for, for a database and downstreams.
    pub fn with_args(
        database: DatabaseConfig,
        downstream: DownstreamUrls,
        args: &OrdersArgs,
    ) -> Self {
        Self {
            database,
            page_token_secret: "orderly-development-secret".into(),
            downstream,
            budget: args.order_budget,
            recover_after: args.recover_after,
            sweep_interval: args.sweep_interval,
            watch_poll: Duration::from_millis(500),
            flow: FlowConfig::default(),
            calls: DownstreamConfig::default(),
        }
    }
}

pub use orderly_kit::server::StartError;

/// OrderService's declaration: what the application's builder starts.
#[derive(Debug, Clone, Copy)]
pub struct OrdersService;

impl orderly_kit::declare::Service for OrdersService {
    const NAME: &'static str = "orders";
    const TITLE: &'static str = orderly::orders::v1::order_service_methods::SERVICE;
    const PORT: u16 = 50052;
    const SIGNS_PAGES: bool = true;
    const CALLS: &'static [&'static str] = &[USERS, PAYMENTS, DELIVERY, CATALOG];

    type Flags = OrdersArgs;
    type Config = OrdersConfig;
    type Error = StartError;

    fn configure(flags: OrdersArgs, launch: &Launch) -> Result<OrdersConfig, StartError> {
        let peers = &launch.peers;
        let downstream = DownstreamUrls {
            users: peers.url(USERS)?.to_owned(),
            payments: peers.url(PAYMENTS)?.to_owned(),
            delivery: peers.url(DELIVERY)?.to_owned(),
            catalog: peers.url(CATALOG)?.to_owned(),
        };
        let mut config = OrdersConfig::with_args(launch.database.clone(), downstream, &flags);
        config.page_token_secret = launch.page_token_secret.clone();
        config.calls = launch.calls.clone();
        Ok(config)
    }

    /// Settles orders left over from a crash and serves, with the recovery sweep beside the
    /// server.
    async fn run(mut config: OrdersConfig, mut launch: Launch) -> Result<(), StartError> {
        // Its calls to users, payments and delivery go out as orders, over mutual TLS when
        // configured.
        config.calls.client.tls = launch.server.tls.identity(Self::NAME)?;
        let downstreams = Downstreams::new(&config.downstream, &config.calls)?;
        let db = launch
            .open_database(&config.database, store::MIGRATIONS)
            .await?;
        let store = OrderStore::new(db.clone());
        let changes = Changes::default();
        let flow = Flow::new(
            store.clone(),
            downstreams.clone(),
            changes.clone(),
            config.flow.clone(),
        );
        let timing = Timing {
            budget: config.budget,
            watch_poll: config.watch_poll,
        };
        let (recover_after, interval) = (config.recover_after, config.sweep_interval);
        let sweeping = flow.clone();
        launch.background(move |stopped| sweep(sweeping, recover_after, interval, stopped));
        let orders = Orders::new(
            store,
            downstreams,
            flow,
            changes,
            PageTokens::new(config.page_token_secret.expose()),
            timing,
        );
        let service = orderly_kit::tune_service!(
            OrderServiceServer::new(orders),
            launch.server,
            access::rules()
        )?;
        let server = launch
            .grpc_server(orderly::FILE_DESCRIPTOR_SET)?
            .add_service(service);
        launch.serve_grpc(db, server).await
    }
}

/// The services orders calls, by name.
const USERS: &str = "users";
const PAYMENTS: &str = "payments";
const DELIVERY: &str = "delivery";
const CATALOG: &str = "catalog";

/// Opens the database, settles orders left over from a crash, and serves OrderService on
/// `listener` until `shutdown` resolves, with the recovery sweep beside it; then drains and stops
/// gracefully.
pub async fn serve(
    config: OrdersConfig,
    server: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    Launch::serve_alone::<OrdersService>(config, server, listener, shutdown).await
}

/// Settles stale orders at start and then every `interval`, until `stopped`.
async fn sweep(flow: Flow, recover_after: Duration, interval: Duration, mut stopped: Stopped) {
    loop {
        match flow.recover(recover_after).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "recovery sweep settled orders"),
            Err(error) => tracing::error!(%error, "recovery sweep failed"),
        }
        tokio::select! {
            () = &mut stopped => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
