//! Starts the payments service on a fresh database and hands back a typed client.

use orderly::common::v1::Money;
use orderly::payments::v1::{ChargeRequest, Payment, PaymentServiceClient};
use orderly_kit::server::config::ServerConfig;
use orderly_payments::PaymentsConfig;
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

/// A payments service running in this test, with a client connected to it.
pub type TestServer = Served<PaymentServiceClient<Channel>>;

/// A server on a fresh database of `backend`; `None` when that backend is skipped.
pub async fn start(backend: TestBackend) -> Option<TestServer> {
    let db = TestDatabase::create(backend).await?;
    let serve = |database_url, listener, stop| {
        let config = PaymentsConfig {
            database: orderly_kit::db::DatabaseConfig {
                url: database_url,
                max_connections: 8,
            },
        };
        orderly_payments::serve(config, ServerConfig::default(), listener, stop)
    };
    Some(Served::start(db, serve, PaymentServiceClient::new).await)
}

/// `minor` units of `currency`.
pub fn money(currency: &str, minor: i64) -> Money {
    Money {
        currency_code: currency.into(),
        amount_minor: minor,
    }
}

/// The minor units of an optional amount (0 when unset).
pub fn minor(amount: Option<&Money>) -> i64 {
    amount.map_or(0, |m| m.amount_minor)
}

/// Charges `amount` EUR minor units for `order_id` under `key`, and returns the payment.
pub async fn charge(
    client: &mut PaymentServiceClient<Channel>,
    order_id: &str,
    amount: i64,
    key: &str,
) -> Payment {
    client
        .charge(ChargeRequest {
            order_id: order_id.into(),
            amount: Some(money("EUR", amount)),
            idempotency_key: key.into(),
        })
        .await
        .expect("charge")
        .into_inner()
        .payment
        .expect("payment in response")
}
