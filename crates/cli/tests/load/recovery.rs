//! Recovery after an outage: orders left unsettled while payments was dead are all settled, in
//! parallel, within seconds of its return.

use std::time::{Duration, Instant};

use orderly::orders::v1::OrderStatus;

use crate::common::PATIENCE;
use crate::common::shop::{Shop, load};

#[tokio::test]
async fn two_hundred_orders_left_by_a_dead_payments_settle_within_ten_seconds_of_its_return() {
    let _alone = crate::common::alone().await;
    let mut shop = Shop::start(
        &[],
        &[
            // The breaker would refuse most of these orders up front; this test wants them stored.
            "--breaker-minimum-calls",
            "1000000",
            "--recover-after",
            "1s",
            "--sweep-interval",
            "500ms",
        ],
    )
    .await;
    shop.kill_payments().await;
    // 20 callers, 10 orders each: every charge fails, and so does every refund that would undo it.
    let mut placed = 0;
    while placed < 200 {
        let tally = load(&shop, 20, Duration::ZERO, &format!("outage-{placed}")).await;
        assert!(tally.other.is_empty(), "{:?}", tally.other);
        placed += tally.failed + tally.pending + tally.confirmed;
        assert_eq!(tally.confirmed, 0, "nothing can be charged");
    }
    let stranded = shop
        .orders()
        .await
        .into_iter()
        .filter(|o| o.status() == OrderStatus::Pending)
        .count();
    eprintln!("{placed} orders placed while payments was dead, {stranded} still PENDING");
    assert!(
        stranded >= 150,
        "the outage left orders unsettled: {stranded}"
    );

    // Back, answering each call in 100 ms like a real payment provider: one order at a time, 200
    // refunds would take 20 s.
    shop.start_payments(&["--latency", "100ms"]).await;
    let back = Instant::now();
    let settled_in = loop {
        let pending = shop
            .orders()
            .await
            .into_iter()
            .filter(|o| o.status() == OrderStatus::Pending)
            .count();
        if pending == 0 {
            break back.elapsed();
        }
        assert!(back.elapsed() < PATIENCE, "{pending} orders still PENDING");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("{stranded} stranded orders settled {settled_in:?} after payments returned");
    let all = shop.orders().await;
    assert!(all.iter().all(|o| o.status() == OrderStatus::Failed));
    assert!(settled_in <= Duration::from_secs(10), "took {settled_in:?}");
    let _ = tokio::time::timeout(PATIENCE, shop.stop()).await;
}
