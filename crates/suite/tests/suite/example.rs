//! The root crate's `examples/place_order.rs`, run against the real services.

#[allow(dead_code)]
#[path = "../../../../examples/place_order.rs"]
mod place_order;

use orderly::orders::v1::OrderStatus;

use crate::support::{Options, Suite};

#[tokio::test]
async fn the_place_order_example_confirms_an_order() {
    let suite = Suite::start(Options::default()).await.expect("sqlite");
    let order = place_order::place_order(
        &suite.users_url,
        &suite.orders_url,
        None,
        suite.tls_dir.as_deref(),
    )
    .await
    .expect("example runs");
    assert_eq!(
        order.status(),
        OrderStatus::Confirmed,
        "{}",
        order.status_reason
    );
    assert_eq!(order.total.map(|m| m.amount_minor), Some(2 * 1999));
    suite.stop().await;
}
