//! Circuit breakers that never make a failure worse, across real processes: a downstream failing
//! a share of calls that retries can absorb never opens its breaker; one failing every call opens
//! it within two seconds; refused orders store nothing; and a healed downstream is found by the
//! first orders after the cool-down, also after a long idle spell.

use std::time::{Duration, Instant};

use orderly::orders::v1::OrderStatus;

use crate::common::shop::{Shop, load};
use crate::common::{PATIENCE, metric, order_request, scrape};

/// Charge fails `rate` of its calls for 15 s under 20 concurrent orders: retries, inside their 20%
/// budget, absorb what they can, and the breaker, which counts calls, never opens.
async fn retries_absorb(rate: &str) {
    // Counts outcomes only: the 30% and 40% runs may share the machine.
    let _untimed = crate::common::untimed().await;
    let shop = Shop::start(&["--fail-rate", rate, "--fault-methods", "Charge"], &[]).await;
    let tally = load(&shop, 20, Duration::from_secs(15), "absorb").await;
    let placed = tally.confirmed + tally.failed;
    let share = tally.confirmed as f64 / placed as f64;
    let p: f64 = rate.parse().expect("rate");

    let seen = scrape(shop.orders.admin).await;
    let retries = metric(
        &seen,
        "orderly_client_retries_total",
        &[("rpc_method", "Charge")],
    );
    // Every attempt, first or retry, succeeds with probability 1 - p; the budget decides how
    // many retries there are. 20% of calls as retries is its floor: (1 - p) × 1.2.
    let floor = (1.0 - p) * 1.2;
    let predicted = (1.0 - p) * (placed as f64 + retries) / placed as f64;
    eprintln!(
        "fail rate {p}: {placed} orders, {} confirmed ({:.1}%), {} failed, {retries} charge retries; \
         budget floor (1 - p) x 1.2 = {:.1}%, predicted from the retries made (1 - p) x (orders + retries) / orders = {:.1}%",
        tally.confirmed,
        share * 100.0,
        tally.failed,
        floor * 100.0,
        predicted * 100.0,
    );
    assert!(
        tally.other.is_empty(),
        "unexpected outcomes: {:?}",
        &tally.other[..tally.other.len().min(5)]
    );
    assert_eq!(
        tally.refused, 0,
        "no order refused: the breaker stayed closed"
    );
    let (state, opened) = shop.breaker("payments", "Charge").await;
    assert_eq!(
        (state, opened),
        (0.0, 0.0),
        "the Charge breaker never opened"
    );
    assert!(placed > 200, "the load ran: {placed} orders");
    assert!(
        share >= floor - 0.04,
        "{share} below the budget's floor {floor}"
    );
    assert!(
        (share - predicted).abs() < 0.04,
        "{share} vs predicted {predicted}"
    );
    shop.stop().await;
}

#[tokio::test]
async fn thirty_percent_failing_charges_never_open_the_breaker() {
    retries_absorb("0.3").await;
}

#[tokio::test]
async fn forty_percent_failing_charges_never_open_the_breaker() {
    retries_absorb("0.4").await;
}

#[tokio::test]
async fn a_dead_downstream_opens_the_breaker_fast_refuses_up_front_and_is_found_again_after_idle() {
    let alone = crate::common::alone().await;
    let mut shop = Shop::start(
        &["--fail-rate", "1", "--fault-methods", "Charge"],
        &["--breaker-cool-down", "1s"],
    )
    .await;
    let tally = load(&shop, 20, Duration::from_secs(3), "dead").await;
    eprintln!("dead payments: {tally:?}");
    assert!(tally.other.is_empty(), "{:?}", tally.other);
    assert_eq!(tally.confirmed, 0);
    let first_refusal = tally.first_refusal.expect("the breaker opened");
    assert!(
        first_refusal <= Duration::from_secs(2),
        "opened after {first_refusal:?}"
    );
    // Refused orders were never stored: the store holds exactly the orders that were answered.
    assert_eq!(shop.stored_orders().await as u64, tally.failed);

    shop.heal_payments().await;
    // Thirty seconds without a single call; then the first orders go through. Nothing here is
    // timed meanwhile, so the other load tests may run.
    drop(alone);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let _alone = crate::common::alone().await;
    let (state, _) = shop.breaker("payments", "Charge").await;
    assert_eq!(state, 2.0, "half-open after the cool-down, with no traffic");
    let mut client = shop.client().await;
    for i in 0..3 {
        let order = client
            .create_order(order_request(&shop.user_id, &format!("after-idle-{i}")))
            .await
            .expect("the first orders after the cool-down are taken")
            .into_inner()
            .order
            .expect("order");
        assert_eq!(order.status(), OrderStatus::Confirmed);
    }
    let (state, _) = shop.breaker("payments", "Charge").await;
    assert_eq!(state, 0.0, "closed by its probes");
    // A burst now: every order confirmed, none failed for a breaker.
    let burst = load(&shop, 30, Duration::from_millis(500), "burst").await;
    assert!(burst.other.is_empty(), "{:?}", burst.other);
    assert_eq!((burst.failed, burst.refused), (0, 0), "{burst:?}");
    assert!(burst.confirmed >= 30);
    let _ = tokio::time::timeout(PATIENCE, shop.stop()).await;
}

/// A burst that lands on a half-open breaker: each order is either refused up front (nothing
/// stored) or processed, never stored and then failed for the breaker.
#[tokio::test]
async fn a_burst_on_a_half_open_breaker_is_refused_or_processed_never_half_done() {
    let _alone = crate::common::alone().await;
    let mut shop = Shop::start(
        &["--fail-rate", "1", "--fault-methods", "Charge"],
        &[
            "--breaker-cool-down",
            "500ms",
            "--breaker-minimum-calls",
            "10",
        ],
    )
    .await;
    let opening = load(&shop, 10, Duration::from_secs(1), "open").await;
    assert!(opening.refused > 0, "the breaker opened: {opening:?}");
    shop.heal_payments().await;
    let deadline = Instant::now() + PATIENCE;
    while shop.breaker("payments", "Charge").await.0 != 2.0 {
        assert!(Instant::now() < deadline, "half-open in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored_before = shop.stored_orders().await as u64;
    let burst = load(&shop, 30, Duration::from_millis(1), "half-open").await;
    eprintln!("burst on a half-open breaker: {burst:?}");
    assert!(burst.other.is_empty(), "{:?}", burst.other);
    assert_eq!(
        burst.failed, 0,
        "no order stored and then failed: {burst:?}"
    );
    assert!(burst.confirmed >= 1, "the probes went through");
    assert!(
        burst.refused > 0,
        "the rest was refused up front: {burst:?}"
    );
    assert_eq!(
        shop.stored_orders().await as u64,
        stored_before + burst.confirmed
    );
    let _ = tokio::time::timeout(PATIENCE, shop.stop()).await;
}
