//! The money and stock invariants under random faults: whatever fails, the money taken equals the
//! totals of the confirmed orders, every unit of every product is on hand, reserved or in a
//! confirmed order, and no order is left unsettled.

use std::time::Duration;

use orderly::orders::v1::{ListOrdersRequest, OrderStatus};
use orderly_kit::client::backoff::Backoff;
use orderly_kit::client::breaker::BreakerConfig;
use orderly_kit::client::downstream::DownstreamConfig;
use orderly_kit::server::faults::FaultConfig;

use crate::support::{Options, Suite, order_request};

#[tokio::test]
async fn money_matches_confirmed_orders_under_random_faults() {
    // Every method of payments and delivery fails 25% of the time, undo calls included; the
    // catalog's fail 10% of the time.
    let faults = FaultConfig {
        fail_rate: 0.25,
        ..FaultConfig::default()
    };
    // Five products at random prices, with less stock than the orders ask for: some orders are
    // refused OUT_OF_STOCK.
    const STOCK: i64 = 150;
    let products: Vec<(String, i64, i64)> = (0..5)
        .map(|i| {
            (
                format!("RND-{i}"),
                100 + i64::from(fastrand::u32(..) % 5000),
                STOCK,
            )
        })
        .collect();
    let options = Options {
        payments: faults.clone(),
        delivery: faults,
        catalog: FaultConfig {
            fail_rate: 0.1,
            ..FaultConfig::default()
        },
        products: products.clone(),
        budget: Duration::from_millis(800),
        recover_after: Duration::from_secs(2),
        sweep_interval: Duration::from_millis(250),
        // Random failures can cross a breaker's threshold by chance; breakers have tests of their own.
        // Two attempts per call, so that both outcomes are certain rather than likely: a charge
        // or a schedule then fails for good with probability 0.25² = 1/16, an order with at least
        // 1 − (15/16)² ≈ 12% (more when the retry budget runs dry): 14, 16 and 26 of ~150 stored
        // orders in three runs, so none failing is a ~e⁻¹⁴ event. With the default three attempts
        // it was ~3% (3 to 6 orders), and a CI run saw none.
        calls: DownstreamConfig {
            breaker: BreakerConfig {
                minimum_calls: usize::MAX,
                ..BreakerConfig::default()
            },
            backoff: Backoff {
                max_attempts: 2,
                ..DownstreamConfig::default().backoff
            },
            ..DownstreamConfig::default()
        },
        ..Options::default()
    };
    let mut suite = Suite::start(options).await.expect("sqlite");
    let users = [suite.user().await, suite.user().await, suite.user().await];

    let orders_total = 240;
    let mut placed = tokio::task::JoinSet::new();
    let concurrency = std::sync::Arc::new(tokio::sync::Semaphore::new(12));
    for i in 0..orders_total {
        let mut orders = suite.orders.clone();
        let user = users[i % users.len()].clone();
        // One to three different products, one to five of each.
        let first = fastrand::usize(..products.len());
        let lines: Vec<(String, i32, i64)> = (0..1 + fastrand::usize(..3))
            .map(|n| &products[(first + n) % products.len()])
            .map(|(sku, price, _)| (sku.clone(), 1 + (fastrand::u32(..) % 5) as i32, *price))
            .collect();
        let permit = concurrency.clone();
        placed.spawn(async move {
            let _permit = permit.acquire_owned().await;
            let lines: Vec<(&str, i32, i64)> =
                lines.iter().map(|(s, q, p)| (s.as_str(), *q, *p)).collect();
            let request = order_request(&user, &format!("order-{i}"), &lines);
            orders
                .create_order(request)
                .await
                .map(|r| r.into_inner().order)
        });
    }
    let started = std::time::Instant::now();
    let mut answered = 0;
    while let Some(result) = placed.join_next().await {
        // Failures (UNAVAILABLE from a failed user check, DEADLINE_EXCEEDED) are expected here.
        if matches!(result.expect("task"), Ok(Some(_))) {
            answered += 1;
        }
    }
    assert!(
        answered > orders_total / 2,
        "most calls answered: {answered}"
    );

    // Wait for every stored order to settle, through WatchOrder.
    let mut confirmed_total = 0;
    let mut confirmed_units = std::collections::HashMap::<String, i64>::new();
    let mut counts = std::collections::HashMap::new();
    for user in &users {
        let listed = suite
            .orders
            .list_orders(ListOrdersRequest {
                user_id: user.clone(),
                page_size: 1000,
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        for order in listed.orders {
            let settled = suite.settled(&order.id).await;
            *counts.entry(settled.status()).or_insert(0) += 1;
            if settled.status() == OrderStatus::Confirmed {
                for item in &settled.items {
                    *confirmed_units.entry(item.sku.clone()).or_default() +=
                        i64::from(item.quantity);
                }
                confirmed_total += settled.total.expect("total").amount_minor;
            }
        }
    }
    eprintln!("settled orders: {counts:?} after {:?}", started.elapsed());
    assert!(
        counts.get(&OrderStatus::Confirmed).copied().unwrap_or(0) > 0,
        "some orders confirmed"
    );
    assert!(
        counts.get(&OrderStatus::Failed).copied().unwrap_or(0) > 0,
        "some orders failed"
    );
    assert_eq!(
        counts.get(&OrderStatus::Pending),
        None,
        "no order left PENDING"
    );
    assert_eq!(
        suite.net_charged().await,
        confirmed_total,
        "charges − refunds = totals of confirmed orders"
    );
    for (sku, _, start) in &products {
        let (on_hand, reserved, sold) = suite.stock(sku).await;
        let confirmed = confirmed_units.get(sku).copied().unwrap_or(0);
        eprintln!(
            "{sku}: {on_hand} on hand, {reserved} reserved, {sold} sold, {confirmed} in confirmed orders"
        );
        assert_eq!(
            on_hand + reserved + confirmed,
            *start,
            "{sku}: every unit is on hand, reserved, or in a confirmed order"
        );
        assert_eq!(sold, confirmed, "{sku}: sold = units of confirmed orders");
        assert!(on_hand >= 0 && reserved >= 0, "{sku}: never below zero");
    }
    suite.stop().await;
}
