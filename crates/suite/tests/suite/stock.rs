//! The saga's first leg: orders are priced by the catalog whatever the caller sends, refused with
//! nothing left reserved when the price changed or the stock is short, never sell more than
//! is on hand however many race for it, and give the stock back when they fail or are cancelled —
//! each on SQLite and on PostgreSQL.

use orderly::common::v1::Money;
use orderly::error::StatusExt as _;
use orderly::orders::v1::{CancelOrderRequest, OrderStatus};
use orderly_testkit::db::TestBackend;
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::{Options, Suite, failing, order_request};

/// A suite on `backend` with `options`, or `None` when that backend is skipped.
async fn start(backend: TestBackend, options: Options) -> Option<Suite> {
    Suite::start(Options { backend, ..options }).await
}

async fn priced_by_the_catalog(backend: TestBackend) {
    let Some(mut suite) = start(backend, Options::default()).await else {
        return;
    };
    let user = suite.user().await;
    // No expected total: whatever the caller thinks, the catalog's prices make the total.
    let mut request = order_request(&user, "priced", &[("LAMP", 2, 1), ("PEN", 1, 1)]);
    request.expected_total = None;
    let order = suite
        .orders
        .create_order(request)
        .await
        .expect("placed")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(
        order.status(),
        OrderStatus::Confirmed,
        "{}",
        order.status_reason
    );
    let prices: Vec<i64> = order
        .items
        .iter()
        .map(|i| i.unit_price.as_ref().map_or(0, |p| p.amount_minor))
        .collect();
    assert_eq!(prices, [1999, 150]);
    assert_eq!(
        order.total.as_ref().map(|t| t.amount_minor),
        Some(2 * 1999 + 150)
    );
    assert_eq!(suite.net_charged().await, 2 * 1999 + 150);
    assert_eq!(suite.stock("LAMP").await.2, 2, "two lamps sold");

    // A total other than the catalog's is refused, nothing left reserved and nothing charged.
    let mut stale = order_request(&user, "stale", &[("LAMP", 1, 1999)]);
    stale.expected_total = Some(Money::new("EUR", 1500));
    let before = suite.stock("LAMP").await;
    let status = suite
        .orders
        .create_order(stale)
        .await
        .expect_err("a changed price");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        status.get_details_error_info().map(|i| i.reason).as_deref(),
        Some("PRICE_CHANGED")
    );
    let change = status.price_change().expect("both totals, typed");
    assert_eq!(
        (change.expected.minor(), change.actual.minor()),
        (1500, 1999)
    );
    assert_eq!(suite.stock("LAMP").await, before, "nothing reserved");
    assert_eq!(suite.net_charged().await, 2 * 1999 + 150, "nothing charged");

    // An unknown product is refused likewise.
    let status = suite
        .orders
        .create_order(order_request(
            &user,
            "unknown",
            &[("NO-SUCH-THING", 1, 100)],
        ))
        .await
        .expect_err("no such product");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        status.get_details_error_info().map(|i| i.reason).as_deref(),
        Some("PRODUCT_NOT_FOUND")
    );
    suite.stop().await;
}

async fn the_last_units_are_sold_once(backend: TestBackend) {
    let options = Options {
        products: vec![("LAST".into(), 250, 10)],
        ..Options::default()
    };
    let Some(mut suite) = start(backend, options).await else {
        return;
    };
    let user = suite.user().await;
    // Each buyer retries what the client library retries (a keyed CreateOrder refused while the
    // catalog sheds a burst): what counts is how each order ends.
    let attempts = (0..50).map(|i| {
        let mut orders = suite.orders.clone();
        let request = order_request(&user, &format!("last-{i}"), &[("LAST", 1, 250)]);
        async move {
            let policy = orderly::client::RetryPolicy::default();
            let mut retry = 0;
            loop {
                match orders.create_order(request.clone()).await {
                    Err(status) if status.is_retryable() && retry + 1 < policy.max_attempts => {
                        tokio::time::sleep(policy.delay(retry, &status)).await;
                        retry += 1;
                    }
                    answer => return answer,
                }
            }
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let confirmed = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter_map(|r| r.get_ref().order.as_ref())
        .filter(|o| o.status() == OrderStatus::Confirmed)
        .count();
    let out_of_stock: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|s| {
            s.code() == Code::FailedPrecondition
                && s.get_details_error_info().map(|i| i.reason).as_deref() == Some("OUT_OF_STOCK")
        })
        .collect();
    assert_eq!((confirmed, out_of_stock.len()), (10, 40), "{results:?}");
    let info = out_of_stock[0]
        .get_details_error_info()
        .expect("error info");
    assert_eq!(info.metadata.get("skus").map(String::as_str), Some("LAST"));
    assert_eq!(
        suite.stock("LAST").await,
        (0, 0, 10),
        "all ten sold, none below zero"
    );
    assert_eq!(suite.net_charged().await, 10 * 250, "ten charged, no more");
    suite.stop().await;
}

async fn a_failed_charge_and_a_cancel_give_the_stock_back(backend: TestBackend) {
    let options = Options {
        payments: failing(1.0, &["Charge"]),
        ..Options::default()
    };
    let Some(mut suite) = start(backend, options).await else {
        return;
    };
    let user = suite.user().await;
    let before = suite.stock("MUG").await;
    let order = suite
        .orders
        .create_order(order_request(&user, "declined", &[("MUG", 3, 500)]))
        .await
        .expect("answered")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(order.status(), OrderStatus::Failed);
    assert_eq!(
        suite.stock("MUG").await,
        before,
        "the reservation was released"
    );
    assert_eq!(
        suite.reservation_status(&order.id).await.as_deref(),
        Some("RELEASED")
    );
    suite.stop().await;

    // A confirmed order that is cancelled puts its units back on hand.
    let Some(mut suite) = start(backend, Options::default()).await else {
        return;
    };
    let user = suite.user().await;
    let before = suite.stock("MUG").await;
    let order = suite
        .orders
        .create_order(order_request(&user, "kept", &[("MUG", 3, 500)]))
        .await
        .expect("placed")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(order.status(), OrderStatus::Confirmed);
    assert_eq!(suite.stock("MUG").await, (before.0 - 3, 0, 3));
    let cancelled = suite
        .orders
        .cancel_order(CancelOrderRequest {
            id: order.id.clone(),
            reason: "changed my mind".into(),
        })
        .await
        .expect("cancelled")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(cancelled.status(), OrderStatus::Cancelled);
    assert_eq!(suite.stock("MUG").await, before, "back on hand");
    suite.stop().await;
}

#[tokio::test]
async fn orders_are_priced_by_the_catalog_on_sqlite() {
    priced_by_the_catalog(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn orders_are_priced_by_the_catalog_on_postgres() {
    priced_by_the_catalog(TestBackend::Postgres).await;
}

#[tokio::test]
async fn fifty_orders_for_the_last_ten_units_confirm_ten_on_sqlite() {
    the_last_units_are_sold_once(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn fifty_orders_for_the_last_ten_units_confirm_ten_on_postgres() {
    the_last_units_are_sold_once(TestBackend::Postgres).await;
}

#[tokio::test]
async fn failed_and_cancelled_orders_give_the_stock_back_on_sqlite() {
    a_failed_charge_and_a_cancel_give_the_stock_back(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn failed_and_cancelled_orders_give_the_stock_back_on_postgres() {
    a_failed_charge_and_a_cancel_give_the_stock_back(TestBackend::Postgres).await;
}
