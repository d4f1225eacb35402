//! OrderService: places orders across users, payments and delivery, and undoes what failed.
//!
//! - [`model`]: validated orders and their totals;
//! - [`store`]: the orders tables and their conditional transitions;
//! - [`downstream`]: keyed, deadline-bound calls to users, payments and delivery;
//! - [`flow`]: the saga (fan-out, confirm or compensate), cancelling, and crash recovery;
//! - [`changes`] and [`follow`]: change notices and following an order, for WatchOrder;
//! - [`service`]: the gRPC implementation; [`error`]: its errors and their statuses.
//!
//! [`serve`] also runs the recovery sweep: at start and then on an interval, every order whose work
//! stood still longer than `recover_after` is settled, so no charge is ever orphaned by a crash.

pub mod changes;
pub mod downstream;
pub mod error;
pub mod flow;
pub mod follow;
pub mod model;
pub mod service;
pub mod store;

use std::time::Duration;

use orderly::orders::v1::OrderServiceServer;
use orderly_kit::client::downstream::DownstreamConfig;
use orderly_kit::pagination::PageTokens;
use orderly_kit::server::GrpcServer;
use orderly_kit::server::config::ServerConfig;
use orderly_kit::shutdown::Shutdown;
use tokio::net::TcpListener;

use crate::changes::Changes;
use crate::downstream::{DownstreamUrls, Downstreams};
use crate::flow::{Flow, FlowConfig};
pub use crate::service::{Orders, Timing};
use crate::store::OrderStore;

/// What the orders service needs besides the common server settings.
#[derive(Debug, Clone)]
pub struct OrdersConfig {
    /// `sqlite://path/to/orders.db` (created when missing) or `postgres://...`.
    pub database_url: String,
    /// The most database connections the service opens.
    pub max_connections: u32,
    /// The secret that signs page tokens; replicas must share it.
    pub page_token_secret: String,
    /// Where users, payments and delivery listen.
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
    /// How undo calls are retried.
    pub flow: FlowConfig,
    /// Retries, retry budget and circuit breakers of the calls to users, payments and delivery.
    pub calls: DownstreamConfig,
}

impl OrdersConfig {
    /// The defaults, for a database and downstreams.
    pub fn new(database_url: String, downstream: DownstreamUrls) -> Self {
        Self {
            database_url,
            max_connections: 16,
            page_token_secret: "orderly-development-secret".into(),
            downstream,
            budget: Duration::from_secs(5),
            recover_after: Duration::from_secs(60),
            sweep_interval: Duration::from_secs(30),
            watch_poll: Duration::from_millis(500),
            flow: FlowConfig::default(),
            calls: DownstreamConfig::default(),
        }
    }
}

pub use orderly_kit::server::StartError;

/// Opens the database, settles orders left over from a crash, and serves OrderService on
/// `listener` until `shutdown` resolves; then drains and stops gracefully.
pub async fn serve(
    config: OrdersConfig,
    server: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let pool = orderly_kit::db::open(
        "orders",
        &config.database_url,
        config.max_connections,
        store::MIGRATIONS,
    )
    .await?;
    let store = OrderStore::new(pool.clone());
    let downstreams = Downstreams::new(&config.downstream, &config.calls)?;
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
    let orders = Orders::new(
        store,
        downstreams,
        flow.clone(),
        changes,
        PageTokens::new(&config.page_token_secret),
        timing,
    );

    let stop = Shutdown::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.trigger();
        }
    });
    let sweep = tokio::spawn(sweep(
        flow,
        config.recover_after,
        config.sweep_interval,
        stop.clone(),
    ));
    let result = GrpcServer::new(server.clone())
        .add_service(orderly_kit::tune_service!(
            OrderServiceServer::new(orders),
            server
        ))
        .reflect(orderly::FILE_DESCRIPTOR_SET)
        .serve_with_pool(pool, listener, stop.wait())
        .await;
    stop.trigger();
    let _ = sweep.await;
    Ok(result?)
}

/// Settles stale orders at start and then every `interval`, until `stop`.
async fn sweep(flow: Flow, recover_after: Duration, interval: Duration, stop: Shutdown) {
    let stopped = stop.wait();
    tokio::pin!(stopped);
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
