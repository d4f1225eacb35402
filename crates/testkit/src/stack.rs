//! The whole suite in the test's own runtime: users, the catalog, payments, delivery and orders on
//! port 0 over fresh databases (and the gateway in front, when asked for), typed clients ready, and
//! read access to the payments, delivery and catalog databases for checking money, parcels and
//! stock as an auditor would.

use std::net::SocketAddr;
use std::time::Duration;

use orderly::catalog::v1::CatalogServiceClient;
use orderly::common::v1::{Address, Money};
use orderly::delivery::v1::DeliveryServiceClient;
use orderly::orders::v1::{
    CreateOrderRequest, Order, OrderLine, OrderServiceClient, OrderStatus, WatchOrderRequest,
};
use orderly::payments::v1::PaymentServiceClient;
use orderly::users::v1::{CreateUserRequest, UserServiceClient};
use orderly_app::registry::SERVICES;
use orderly_app::{Builder, Settings, System};
use orderly_catalog::{CatalogConfig, CatalogService};
use orderly_delivery::DeliveryService;
use orderly_gateway::GatewayConfig;
use orderly_kit::db::Database;
use orderly_kit::declare::Service as _;
use orderly_kit::params;
use orderly_kit::server::config::ServerConfig;
use orderly_kit::server::faults::FaultConfig;
use orderly_orders::{OrdersConfig, OrdersService};
use orderly_payments::PaymentsService;
use orderly_users::UsersService;
use tonic::transport::Channel;

use crate::db::{TestBackend, TestDatabase};

/// How long any one wait may take before the test fails instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How the suite is set up.
pub struct Options {
    /// Which database every service uses.
    pub backend: TestBackend,
    /// Faults of the payments service.
    pub payments: FaultConfig,
    /// Faults of the delivery service.
    pub delivery: FaultConfig,
    /// Faults of the catalog service.
    pub catalog: FaultConfig,
    /// The most a fan-out may take.
    pub budget: Duration,
    /// How long work may stand still before the sweep settles it.
    pub recover_after: Duration,
    /// How often the sweep runs.
    pub sweep_interval: Duration,
    /// Retries and breakers of orders' calls.
    pub calls: orderly_kit::client::downstream::DownstreamConfig,
    /// Whether every service honours the per-call fault metadata (`--fault-metadata`).
    pub fault_metadata: bool,
    /// A gateway in front of users and orders, its settings changed by this function.
    pub gateway: Option<GatewayTuning>,
    /// A JWKS file: every service then checks callers' bearer tokens against it (issuer
    /// [`orderly_kit::auth::DEV_ISSUER`], audience [`orderly_kit::auth::AUDIENCE`]).
    pub jwks_file: Option<std::path::PathBuf>,
    /// Per-caller rate limits of every service.
    pub rate: orderly_kit::rate::RateConfig,
    /// Whether every hop is mutual TLS (on by default): certificates of a fresh CA for each
    /// service, the gateway, and the test's clients (which call users and orders as the gateway,
    /// payments, delivery and the catalog as orders).
    pub tls: bool,
    /// The catalog's products besides [`TEST_PRODUCTS`] and the demo catalog: `(sku, price in
    /// EUR cents, stock on hand)`.
    pub products: Vec<(String, i64, i64)>,
    /// Every gRPC server's connection cap, when not the default.
    pub max_client_connections: Option<usize>,
}

/// The products every test stack's catalog has besides the demo catalog: `(sku, price in EUR
/// cents)`, each with [`TEST_STOCK`] units on hand. [`order_request`]'s prices must be these.
pub const TEST_PRODUCTS: [(&str, i64); 6] = [
    ("BOOK", 1000),
    ("PEN", 150),
    ("SKU", 100),
    ("MUG", 500),
    ("LAMP", 1999),
    ("INK", 700),
];

/// The page-token secret of every test stack.
pub const TEST_PAGE_SECRET: &str = "orderly-test-page-token-secret-of-32-bytes";

/// Units on hand of each of [`TEST_PRODUCTS`] at start.
pub const TEST_STOCK: i64 = 1_000_000;

/// Changes to the gateway's settings, for [`Options::gateway`].
pub type GatewayTuning = Box<dyn FnOnce(&mut GatewayConfig) + Send>;

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("backend", &self.backend)
            .field("budget", &self.budget)
            .field("fault_metadata", &self.fault_metadata)
            .field("gateway", &self.gateway.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backend: TestBackend::Sqlite,
            payments: FaultConfig::default(),
            delivery: FaultConfig::default(),
            catalog: FaultConfig::default(),
            budget: Duration::from_secs(5),
            recover_after: Duration::from_secs(60),
            sweep_interval: Duration::from_secs(30),
            calls: orderly_kit::client::downstream::DownstreamConfig::default(),
            fault_metadata: false,
            gateway: None,
            jwks_file: None,
            rate: orderly_kit::rate::RateConfig::default(),
            tls: true,
            products: Vec::new(),
            max_client_connections: None,
        }
    }
}

/// Faults that slow the named methods by `latency`.
pub fn slow(latency: Duration, methods: &[&str]) -> FaultConfig {
    FaultConfig {
        latency,
        fault_methods: methods.iter().map(|m| m.to_string()).collect(),
        ..FaultConfig::default()
    }
}

/// Faults that fail `rate` of the calls of the named methods.
pub fn failing(rate: f64, methods: &[&str]) -> FaultConfig {
    FaultConfig {
        fail_rate: rate,
        fault_methods: methods.iter().map(|m| m.to_string()).collect(),
        ..FaultConfig::default()
    }
}

/// The four services (and the gateway, when asked for), running in this test.
pub struct Stack {
    /// UserService client.
    pub users: UserServiceClient<Channel>,
    /// OrderService client.
    pub orders: OrderServiceClient<Channel>,
    /// PaymentService client.
    pub payments: PaymentServiceClient<Channel>,
    /// DeliveryService client.
    pub delivery: DeliveryServiceClient<Channel>,
    /// CatalogService client (calling as orders).
    pub catalog: CatalogServiceClient<Channel>,
    /// Where users and orders listen.
    pub users_url: String,
    /// Where orders listens.
    pub orders_url: String,
    /// Where payments listens.
    pub payments_url: String,
    /// Where the gateway listens, when there is one.
    pub gateway: Option<SocketAddr>,
    /// The CA and every service's certificate, when the stack speaks mutual TLS.
    pub tls_dir: Option<std::path::PathBuf>,
    _certs: Option<tempfile::TempDir>,
    payments_db: Database,
    delivery_db: Database,
    catalog_db: Database,
    system: System,
    dbs: Vec<TestDatabase>,
}

/// A connected channel to the service `to` at `url`: over mutual TLS as the service `from` when
/// `tls_dir` holds the certificates, else plaintext.
pub async fn client_channel(
    url: &str,
    tls_dir: Option<&std::path::Path>,
    from: &str,
    to: &str,
) -> Channel {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned()).expect("uri");
    match tls_dir {
        Some(dir) => {
            let identity = orderly_kit::tls::Identity::load(dir, from).expect("certificates");
            let connector =
                orderly_kit::tls::client::Connector::new(identity, to).expect("service name");
            endpoint
                .connect_with_connector(connector)
                .await
                .expect("connect over TLS")
        }
        None => endpoint.connect().await.expect("connect"),
    }
}

/// Certificates of a fresh CA for every service and for one program outside the suite
/// (`client`, as `orderly up` writes), in a directory removed with the stack.
pub fn issue_certificates() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    orderly_kit::tls::issue::issue(
        dir.path(),
        &orderly_app::registry::names(),
        Duration::from_secs(3600),
        false,
    )
    .expect("issue certificates");
    orderly_kit::tls::issue::issue_outside(dir.path(), &["client"], Duration::from_secs(3600))
        .expect("issue the outside program's certificate");
    dir
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("users_url", &self.users_url)
            .field("orders_url", &self.orders_url)
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Starts the five services (and the gateway, when asked for) through the application's
    /// builder, as `orderly up` does; `None` when the backend is skipped.
    pub async fn start(options: Options) -> Option<Self> {
        let mut dbs = Vec::new();
        for service in SERVICES.iter().filter(|service| service.database) {
            dbs.push((service.name, TestDatabase::create(options.backend).await?));
        }
        let certs = options.tls.then(issue_certificates);
        let tls_dir = certs.as_ref().map(|dir| dir.path().to_owned());
        let mut server = ServerConfig::default();
        server.tls.tls_dir = tls_dir.clone();
        server.auth.jwks_file = options.jwks_file.clone();
        server.rate = options.rate;
        server.faults.fault_metadata = options.fault_metadata;
        if let Some(cap) = options.max_client_connections {
            server.max_client_connections = cap;
        }
        let mut settings = Settings::defaults(TEST_PAGE_SECRET.into());
        settings.server = server;
        // The demo catalog, as under `orderly up`, and the test products beside it.
        settings.demo = true;
        let mut builder = Builder::new(settings);
        for service in &SERVICES {
            if service.name == orderly_gateway::SERVICE_NAME && options.gateway.is_none() {
                continue;
            }
            let database = dbs
                .iter()
                .find(|(name, _)| *name == service.name)
                .map(|(_, db)| db.config(4));
            builder = builder.service(service, SocketAddr::from(([127, 0, 0, 1], 0)), database);
        }
        let faults = |faults: FaultConfig| {
            move |server: &mut ServerConfig| {
                server.faults = FaultConfig {
                    fault_metadata: options.fault_metadata,
                    ..faults
                }
            }
        };
        let euros = |cents| orderly::money::Money::parse_positive("EUR", cents).expect("a price");
        let products: Vec<_> = TEST_PRODUCTS
            .iter()
            .map(|&(sku, cents)| (sku.to_owned(), cents, TEST_STOCK))
            .chain(options.products.iter().cloned())
            .map(|(sku, cents, on_hand)| orderly_catalog::store::NewProduct {
                name: format!("Test product {sku}"),
                description: String::new(),
                sku,
                price: euros(cents),
                on_hand,
            })
            .collect();
        let (budget, recover_after, sweep_interval, calls) = (
            options.budget,
            options.recover_after,
            options.sweep_interval,
            options.calls.clone(),
        );
        builder = builder
            .server_of(PaymentsService::NAME, faults(options.payments))
            .server_of(DeliveryService::NAME, faults(options.delivery))
            .server_of(CatalogService::NAME, faults(options.catalog))
            .tune(CatalogService::NAME, move |catalog: &mut CatalogConfig| {
                catalog.reservation_sweep = Duration::from_millis(100);
                catalog.seed.extend(products);
            })
            .tune(OrdersService::NAME, move |orders: &mut OrdersConfig| {
                orders.budget = budget;
                orders.recover_after = recover_after;
                orders.sweep_interval = sweep_interval;
                orders.calls = calls;
                orders.watch_poll = Duration::from_millis(100);
            });
        if let Some(tune) = options.gateway {
            builder = builder.tune(orderly_gateway::SERVICE_NAME, tune);
        }
        let system = builder.start().await.expect("the services start");
        let url = |name: &str| format!("http://{}", system.addr(name).expect("a started service"));
        let (users_url, orders_url) = (url(UsersService::NAME), url(OrdersService::NAME));
        let (payments_url, delivery_url) = (url(PaymentsService::NAME), url(DeliveryService::NAME));
        let catalog_url = url(CatalogService::NAME);
        let gateway = system.addr(orderly_gateway::SERVICE_NAME);

        // The checks read the payments, delivery and catalog databases directly, as an auditor
        // would.
        let reader = |name: &str| {
            let url = dbs
                .iter()
                .find(|(service, _)| *service == name)
                .map(|(_, db)| db.url().to_owned())
                .expect("a database");
            async move { orderly_kit::db::connect(&url, 2).await.expect("a database") }
        };
        let payments_db = reader(PaymentsService::NAME).await;
        let delivery_db = reader(DeliveryService::NAME).await;
        let catalog_db = reader(CatalogService::NAME).await;
        let tls = tls_dir.as_deref();
        Some(Self {
            users: UserServiceClient::new(
                client_channel(&users_url, tls, "gateway", "users").await,
            ),
            orders: OrderServiceClient::new(
                client_channel(&orders_url, tls, "gateway", "orders").await,
            ),
            payments: PaymentServiceClient::new(
                client_channel(&payments_url, tls, "orders", "payments").await,
            ),
            delivery: DeliveryServiceClient::new(
                client_channel(&delivery_url, tls, "orders", "delivery").await,
            ),
            catalog: CatalogServiceClient::new(
                client_channel(&catalog_url, tls, "orders", "catalog").await,
            ),
            users_url,
            orders_url,
            payments_url,
            gateway,
            tls_dir,
            _certs: certs,
            payments_db,
            delivery_db,
            catalog_db,
            system,
            dbs: dbs.into_iter().map(|(_, db)| db).collect(),
        })
    }

    /// Creates a user; returns its id.
    pub async fn user(&mut self) -> String {
        let email = format!("user-{}@example.com", uuid_like());
        self.users
            .create_user(CreateUserRequest {
                name: "Test User".into(),
                email,
            })
            .await
            .expect("create user")
            .into_inner()
            .user
            .expect("user")
            .id
    }

    /// Net money taken: charged minus refunded, over every payment.
    pub async fn net_charged(&self) -> i64 {
        let (charged, refunded) = crate::db::money_taken(&self.payments_db).await;
        charged - refunded
    }

    /// (amount, refunded) of each real (not voided) charge for `order_id`.
    pub async fn charges_for(&self, order_id: &str) -> Vec<(i64, i64)> {
        self.payments_db
            .fetch_all(
                "SELECT amount, refunded FROM payments WHERE idempotency_key = $1 AND amount > 0",
                params![order_id],
                |row| Ok((row.int("amount")?, row.int("refunded")?)),
            )
            .await
            .expect("payments of order")
    }

    /// `(on hand, reserved, sold)` of the product `sku`, read from the catalog's database.
    pub async fn stock(&self, sku: &str) -> (i64, i64, i64) {
        self.catalog_db
            .fetch_optional(
                "SELECT on_hand, reserved, sold FROM products WHERE sku = $1",
                params![sku],
                |row| Ok((row.int("on_hand")?, row.int("reserved")?, row.int("sold")?)),
            )
            .await
            .expect("stock of product")
            .expect("a product with the SKU")
    }

    /// The state of `order_id`'s stock reservation (`RESERVED`, `COMMITTED`, `RELEASED`), if it
    /// has one.
    pub async fn reservation_status(&self, order_id: &str) -> Option<String> {
        self.catalog_db
            .fetch_optional(
                "SELECT status FROM reservations WHERE order_id = $1",
                params![order_id],
                |row| row.text("status"),
            )
            .await
            .expect("reservation of order")
    }

    /// The status of `order_id`'s delivery, if it has one.
    pub async fn delivery_status(&self, order_id: &str) -> Option<String> {
        self.delivery_db
            .fetch_optional(
                "SELECT status FROM deliveries WHERE order_id = $1",
                params![order_id],
                |row| row.text("status"),
            )
            .await
            .expect("delivery of order")
    }

    /// Follows `order_id` with WatchOrder until the stream ends; returns every status seen.
    pub async fn watch(&mut self, order_id: &str) -> Vec<Order> {
        let mut stream = self
            .orders
            .watch_order(WatchOrderRequest {
                id: order_id.to_owned(),
            })
            .await
            .expect("watch")
            .into_inner();
        let mut seen = Vec::new();
        loop {
            let next = tokio::time::timeout(PATIENCE, stream.message())
                .await
                .expect("a watch update in time");
            match next.expect("watch stream") {
                Some(update) => seen.push(update.order.expect("order")),
                None => return seen,
            }
        }
    }

    /// The order once it settles.
    pub async fn settled(&mut self, order_id: &str) -> Order {
        let seen = self.watch(order_id).await;
        let last = seen.last().cloned().expect("at least the current state");
        assert_ne!(
            last.status(),
            OrderStatus::Pending,
            "the watch ends on a settled order"
        );
        last
    }

    /// Stops every service gracefully and removes the databases.
    pub async fn stop(self) {
        self.system.stop().await.expect("services stopped cleanly");
        self.payments_db.close().await;
        self.delivery_db.close().await;
        self.catalog_db.close().await;
        for db in self.dbs {
            db.remove().await;
        }
    }
}

/// A CreateOrder for `user_id` of `items` (sku, quantity, the catalog's unit price in EUR cents)
/// under `key`, expecting the total those prices make (when it is positive): an order priced
/// otherwise by the catalog is refused with PRICE_CHANGED, so a test's totals are the catalog's.
pub fn order_request(user_id: &str, key: &str, items: &[(&str, i32, i64)]) -> CreateOrderRequest {
    let total: i64 = items
        .iter()
        .map(|(_, quantity, price)| i64::from(*quantity) * price)
        .sum();
    CreateOrderRequest {
        user_id: user_id.to_owned(),
        items: items
            .iter()
            .map(|(sku, quantity, _)| OrderLine {
                sku: (*sku).to_owned(),
                quantity: *quantity,
            })
            .collect(),
        expected_total: (total > 0).then(|| Money {
            currency_code: "EUR".into(),
            amount_minor: total,
        }),
        shipping_address: Some(Address {
            recipient: "Ada".into(),
            line1: "1 Analytical Way".into(),
            line2: String::new(),
            city: "London".into(),
            postal_code: "N1".into(),
            country_code: "GB".into(),
        }),
        idempotency_key: key.to_owned(),
    }
}

/// A fresh unique string.
pub fn uuid_like() -> String {
    format!("{:032x}", fastrand::u128(..))
}
