//! Starts the delivery service on a fresh database and hands back a typed client.

use orderly::common::v1::Address;
use orderly::delivery::v1::{Delivery, DeliveryServiceClient, ScheduleDeliveryRequest};
use orderly_delivery::DeliveryConfig;
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

/// A delivery service running in this test, with a client connected to it.
pub type TestServer = Served<DeliveryServiceClient<Channel>>;

/// A server on a fresh database of `backend`; `None` when that backend is skipped.
pub async fn start(backend: TestBackend) -> Option<TestServer> {
    let db = TestDatabase::create(backend).await?;
    let serve = |database_url, listener, stop| {
        let config = DeliveryConfig {
            database: orderly_kit::db::DatabaseConfig {
                url: database_url,
                max_connections: 8,
            },
        };
        orderly_delivery::serve(config, ServerConfig::default(), listener, stop)
    };
    Some(Served::start(db, serve, DeliveryServiceClient::new).await)
}

/// A valid address.
pub fn address() -> Address {
    Address {
        recipient: "Ada Lovelace".into(),
        line1: "12 St James's Square".into(),
        line2: String::new(),
        city: "London".into(),
        postal_code: "SW1Y 4JH".into(),
        country_code: "GB".into(),
    }
}

/// Schedules the delivery of `order_id` to [`address`], and returns it.
pub async fn schedule(client: &mut DeliveryServiceClient<Channel>, order_id: &str) -> Delivery {
    client
        .schedule_delivery(ScheduleDeliveryRequest {
            order_id: order_id.into(),
            address: Some(address()),
        })
        .await
        .expect("schedule")
        .into_inner()
        .delivery
        .expect("delivery in response")
}
