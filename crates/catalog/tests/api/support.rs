//! Starts the catalog service on a fresh database and hands back a typed client.

use std::time::Duration;

use orderly::catalog::v1::{
    CatalogServiceClient, CreateProductRequest, GetProductRequest, Product, ReserveStockRequest,
    StockLine,
};
use orderly::common::v1::Money;
use orderly_catalog::CatalogConfig;
use orderly_kit::server::config::ServerConfig;
use orderly_testkit::{Served, TestBackend, TestDatabase};
use tonic::transport::Channel;

pub use orderly_testkit::details::{reason, violated_fields};

/// Runs `scenario(server)` as a test on SQLite and as a test on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        orderly_testkit::on_both_backends!($crate::support::start; $($scenario),*);
    };
}

/// A catalog service running in this test, with a client connected to it.
pub type TestServer = Served<CatalogServiceClient<Channel>>;

/// How often the test servers look for expired reservations.
pub const SWEEP: Duration = Duration::from_millis(50);

/// A server on a fresh database of `backend`; `None` when that backend is skipped.
pub async fn start(backend: TestBackend) -> Option<TestServer> {
    start_with(backend, ServerConfig::default()).await
}

/// Like [`start`], with these server settings.
pub async fn start_with(backend: TestBackend, server: ServerConfig) -> Option<TestServer> {
    let db = TestDatabase::create(backend).await?;
    let serve = |database_url, listener, stop| {
        let mut config = CatalogConfig::new(orderly_kit::db::DatabaseConfig {
            url: database_url,
            max_connections: 8,
        });
        config.reservation_sweep = SWEEP;
        orderly_catalog::serve(config, server, listener, stop)
    };
    Some(Served::start(db, serve, CatalogServiceClient::new).await)
}

/// `cents` euro cents.
pub fn euros(cents: i64) -> Money {
    Money {
        currency_code: "EUR".into(),
        amount_minor: cents,
    }
}

/// A new product's request fields.
pub fn new_product(sku: &str, name: &str, cents: i64, on_hand: i64) -> Product {
    Product {
        sku: sku.into(),
        name: name.into(),
        description: format!("{name}, for the tests"),
        price: Some(euros(cents)),
        stock_on_hand: on_hand,
        ..Default::default()
    }
}

/// Creates a product and returns it as stored.
pub async fn create(server: &mut TestServer, sku: &str, cents: i64, on_hand: i64) -> Product {
    server
        .client
        .create_product(CreateProductRequest {
            product: Some(new_product(sku, &format!("Product {sku}"), cents, on_hand)),
        })
        .await
        .expect("create product")
        .into_inner()
        .product
        .expect("product")
}

/// The product `sku` as it stands.
pub async fn get(server: &mut TestServer, sku: &str) -> Product {
    server
        .client
        .get_product(GetProductRequest { sku: sku.into() })
        .await
        .expect("get product")
        .into_inner()
        .product
        .expect("product")
}

/// `(on hand, reserved, sold)` of `sku`.
pub async fn stock(server: &mut TestServer, sku: &str) -> (i64, i64, i64) {
    let product = get(server, sku).await;
    (
        product.stock_on_hand,
        product.stock_reserved,
        product.stock_sold,
    )
}

/// A reservation request for `order_id` of `(sku, quantity)` lines.
pub fn reserve_request(order_id: &str, lines: &[(&str, i64)]) -> ReserveStockRequest {
    ReserveStockRequest {
        order_id: order_id.into(),
        lines: lines
            .iter()
            .map(|(sku, quantity)| StockLine {
                sku: (*sku).into(),
                quantity: *quantity,
                ..Default::default()
            })
            .collect(),
        ttl: None,
    }
}
