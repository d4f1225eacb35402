//! WatchOrder: the current state first, then every change, ending once the order settles.

use std::time::Duration;

use orderly::orders::v1::{ListOrdersRequest, OrderStatus};

use crate::support::{Options, Suite, order_request, slow};

#[tokio::test]
async fn watch_streams_pending_then_confirmed_and_ends() {
    let options = Options {
        payments: slow(Duration::from_millis(400), &["Charge"]),
        ..Options::default()
    };
    let mut suite = Suite::start(options).await.expect("sqlite");
    let user = suite.user().await;
    let mut orders = suite.orders.clone();
    let request = order_request(&user, "k", &[("BOOK", 1, 1000)]);
    let placing = tokio::spawn(async move { orders.create_order(request).await });

    // The order is listed as soon as it is stored PENDING; the charge takes 400 ms more.
    let mut order_id = None;
    for _ in 0..200 {
        let listed = suite
            .orders
            .list_orders(ListOrdersRequest {
                user_id: user.clone(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        if let Some(order) = listed.orders.into_iter().next() {
            order_id = Some(order.id);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let order_id = order_id.expect("the order was stored");
    let seen: Vec<OrderStatus> = suite
        .watch(&order_id)
        .await
        .iter()
        .map(|o| o.status())
        .collect();
    assert_eq!(
        seen,
        [OrderStatus::Pending, OrderStatus::Confirmed],
        "then the stream ended"
    );
    let placed = placing
        .await
        .expect("task")
        .expect("create")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(placed.status(), OrderStatus::Confirmed);

    // Watching a settled order gives its state and ends.
    let seen: Vec<OrderStatus> = suite
        .watch(&order_id)
        .await
        .iter()
        .map(|o| o.status())
        .collect();
    assert_eq!(seen, [OrderStatus::Confirmed]);
    suite.stop().await;
}
