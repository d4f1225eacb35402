//! CreateOrder's saga against real services: confirm, compensate, deadlines, concurrency, and
//! idempotency; and CancelOrder, GetOrder, ListOrders.

use std::time::{Duration, Instant};

use orderly::delivery::v1::{DeliveryStatus, GetDeliveryRequest};
use orderly::orders::v1::{CancelOrderRequest, GetOrderRequest, ListOrdersRequest, OrderStatus};
use orderly::payments::v1::{GetPaymentRequest, PaymentStatus};
use orderly_testkit::db::TestBackend;
use tonic::Code;
use tonic_types::StatusExt;

use orderly_testkit::stack::{Options, Stack as Suite, failing, order_request, slow, uuid_like};

async fn happy_path(backend: TestBackend) {
    let Some(mut suite) = Suite::start(Options {
        backend,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let user = suite.user().await;
    let request = order_request(&user, "key-1", &[("LAMP", 2, 1999), ("PEN", 3, 150)]);
    let order = suite
        .orders
        .create_order(request)
        .await
        .expect("create")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(
        order.status(),
        OrderStatus::Confirmed,
        "{}",
        order.status_reason
    );
    let total = order.total.as_ref().expect("total");
    assert_eq!(
        (total.currency_code.as_str(), total.amount_minor),
        ("EUR", 2 * 1999 + 3 * 150)
    );

    let payment = suite
        .payments
        .get_payment(GetPaymentRequest {
            id: order.payment_id.clone(),
        })
        .await
        .expect("payment");
    let payment = payment.into_inner().payment.expect("payment");
    assert_eq!(payment.status(), PaymentStatus::Succeeded);
    assert_eq!(
        payment.amount.as_ref().map(|m| m.amount_minor),
        Some(total.amount_minor)
    );
    assert_eq!(payment.order_id, order.id);
    let delivery = suite
        .delivery
        .get_delivery(GetDeliveryRequest {
            id: order.delivery_id.clone(),
        })
        .await
        .expect("delivery");
    assert_eq!(
        delivery.into_inner().delivery.expect("delivery").status(),
        DeliveryStatus::Scheduled
    );
    assert_eq!(
        suite.charges_for(&order.id).await,
        [(total.amount_minor, 0)],
        "exactly one charge"
    );
    assert_eq!(suite.net_charged().await, total.amount_minor);

    let fetched = suite
        .orders
        .get_order(GetOrderRequest {
            id: order.id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .order;
    assert_eq!(fetched.as_ref(), Some(&order));
    suite.stop().await;
}

#[tokio::test]
async fn an_order_is_confirmed_with_one_charge_and_one_delivery_on_sqlite() {
    happy_path(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn an_order_is_confirmed_with_one_charge_and_one_delivery_on_postgres() {
    happy_path(TestBackend::Postgres).await;
}

#[tokio::test]
async fn a_failed_payment_cancels_the_delivery_and_charges_nothing() {
    let options = Options {
        payments: failing(1.0, &["Charge"]),
        ..Options::default()
    };
    let mut suite = Suite::start(options).await.expect("sqlite");
    let user = suite.user().await;
    let order = suite
        .orders
        .create_order(order_request(&user, "k", &[("BOOK", 1, 1000)]))
        .await
        .expect("create");
    let order = order.into_inner().order.expect("order");
    assert_eq!(order.status(), OrderStatus::Failed);
    assert!(
        order.status_reason.contains("payment failed"),
        "{}",
        order.status_reason
    );
    assert_eq!(
        suite.delivery_status(&order.id).await.as_deref(),
        Some("CANCELLED")
    );
    assert_eq!(suite.net_charged().await, 0);
    suite.stop().await;
}

#[tokio::test]
async fn a_failed_delivery_refunds_the_charge() {
    let options = Options {
        delivery: failing(1.0, &["ScheduleDelivery"]),
        ..Options::default()
    };
    let mut suite = Suite::start(options).await.expect("sqlite");
    let user = suite.user().await;
    let order = suite
        .orders
        .create_order(order_request(&user, "k", &[("BOOK", 1, 1000)]))
        .await
        .expect("create");
    let order = order.into_inner().order.expect("order");
    assert_eq!(order.status(), OrderStatus::Failed);
    assert!(
        order.status_reason.contains("delivery failed"),
        "{}",
        order.status_reason
    );
    assert_eq!(
        suite.charges_for(&order.id).await,
        [(1000, 1000)],
        "charged, then refunded in full"
    );
    assert_eq!(suite.net_charged().await, 0);
    suite.stop().await;
}

#[tokio::test]
async fn an_unknown_user_or_a_bad_request_changes_nothing() {
    let mut suite = Suite::start(Options::default()).await.expect("sqlite");
    let stranger = uuid::Uuid::now_v7().to_string();
    let stock = suite.stock("BOOK").await;
    let status = suite
        .orders
        .create_order(order_request(&stranger, "k", &[("BOOK", 1, 1000)]))
        .await
        .expect_err("unknown user");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        status.get_details_error_info().map(|i| i.reason).as_deref(),
        Some("USER_NOT_FOUND")
    );
    // The stock is reserved while the user is checked, and given back before the refusal.
    assert_eq!(suite.stock("BOOK").await, stock, "nothing left reserved");

    let user = suite.user().await;
    let mut bad = order_request(&user, "", &[("BOOK", 0, -1)]);
    bad.shipping_address = None;
    let status = suite.orders.create_order(bad).await.expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = status
        .get_details_bad_request()
        .expect("bad request")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        ["items[0].quantity", "shipping_address", "idempotency_key"]
    );

    let listed = suite
        .orders
        .list_orders(ListOrdersRequest {
            user_id: user,
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(listed.into_inner().orders.is_empty(), "nothing was written");
    assert_eq!(suite.net_charged().await, 0);
    suite.stop().await;
}

#[tokio::test]
async fn slow_downstreams_hit_the_deadline_and_are_still_compensated() {
    let budget = Duration::from_millis(300);
    let options = Options {
        payments: slow(Duration::from_millis(1500), &["Charge"]),
        delivery: slow(Duration::from_millis(1500), &["ScheduleDelivery"]),
        budget,
        ..Options::default()
    };
    let mut suite = Suite::start(options).await.expect("sqlite");
    let user = suite.user().await;
    let started = Instant::now();
    let outcome = suite
        .orders
        .create_order(order_request(&user, "k", &[("BOOK", 1, 1000)]))
        .await;
    let took = started.elapsed();
    assert!(
        took < budget + Duration::from_millis(100),
        "answered in {took:?}"
    );
    let order_id = match outcome {
        Err(status) => {
            assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
            status
                .get_details_error_info()
                .and_then(|i| i.metadata.get("id").cloned())
                .expect("order id in ErrorInfo")
        }
        Ok(response) => {
            let order = response.into_inner().order.expect("order");
            assert_eq!(order.status(), OrderStatus::Failed);
            order.id
        }
    };
    let settled = suite.settled(&order_id).await;
    assert_eq!(settled.status(), OrderStatus::Failed);
    assert!(
        settled.status_reason.contains("deadline"),
        "{}",
        settled.status_reason
    );
    assert_eq!(
        suite.delivery_status(&order_id).await.as_deref(),
        Some("CANCELLED")
    );
    // The slow charge lands after its refund voided it: it must take nothing.
    let late = suite
        .payments
        .charge(orderly::payments::v1::ChargeRequest {
            order_id: order_id.clone(),
            amount: Some(orderly::common::v1::Money {
                currency_code: "EUR".into(),
                amount_minor: 1000,
            }),
            idempotency_key: order_id.clone(),
        })
        .await
        .expect("a replayed charge answers");
    assert_eq!(
        late.into_inner().payment.expect("payment").status(),
        PaymentStatus::Voided
    );
    assert_eq!(suite.net_charged().await, 0);
    suite.stop().await;
}

#[tokio::test]
async fn payment_and_delivery_run_concurrently() {
    let options = Options {
        payments: slow(Duration::from_millis(200), &["Charge"]),
        delivery: slow(Duration::from_millis(200), &["ScheduleDelivery"]),
        ..Options::default()
    };
    let mut suite = Suite::start(options).await.expect("sqlite");
    let user = suite.user().await;
    let started = Instant::now();
    let order = suite
        .orders
        .create_order(order_request(&user, "k", &[("BOOK", 1, 1000)]))
        .await
        .expect("create");
    let took = started.elapsed();
    assert_eq!(
        order.into_inner().order.expect("order").status(),
        OrderStatus::Confirmed
    );
    // Two 200 ms calls one after the other would take at least 400 ms.
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(350),
        "took {took:?}"
    );
    suite.stop().await;
}

#[tokio::test]
async fn twenty_concurrent_retries_with_one_key_make_one_order_and_one_charge() {
    let options = Options {
        payments: slow(Duration::from_millis(100), &["Charge"]),
        ..Options::default()
    };
    let mut suite = Suite::start(options).await.expect("sqlite");
    let user = suite.user().await;
    let key = uuid_like();
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let mut orders = suite.orders.clone();
            let request = order_request(&user, &key, &[("BOOK", 1, 1000)]);
            tokio::spawn(async move { orders.create_order(request).await })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for call in calls {
        let order = call
            .await
            .expect("task")
            .expect("create")
            .into_inner()
            .order
            .expect("order");
        assert_eq!(
            order.status(),
            OrderStatus::Confirmed,
            "every caller sees the settled order"
        );
        ids.insert(order.id);
    }
    assert_eq!(ids.len(), 1, "one order");
    let id = ids.into_iter().next().expect("one id");
    assert_eq!(suite.charges_for(&id).await, [(1000, 0)], "one charge");
    assert_eq!(suite.net_charged().await, 1000);
    suite.stop().await;
}

#[tokio::test]
async fn cancelling_a_confirmed_order_refunds_and_unschedules_it_once() {
    let mut suite = Suite::start(Options::default()).await.expect("sqlite");
    let user = suite.user().await;
    let order = suite
        .orders
        .create_order(order_request(&user, "k", &[("MUG", 2, 500)]))
        .await
        .expect("create");
    let order = order.into_inner().order.expect("order");
    assert_eq!(order.status(), OrderStatus::Confirmed);

    for _ in 0..2 {
        let cancelled = suite
            .orders
            .cancel_order(CancelOrderRequest {
                id: order.id.clone(),
                reason: "changed my mind".into(),
            })
            .await
            .expect("cancel")
            .into_inner()
            .order
            .expect("order");
        assert_eq!(cancelled.status(), OrderStatus::Cancelled);
        assert_eq!(cancelled.status_reason, "changed my mind");
    }
    assert_eq!(
        suite.charges_for(&order.id).await,
        [(1000, 1000)],
        "refunded once, in full"
    );
    assert_eq!(
        suite.delivery_status(&order.id).await.as_deref(),
        Some("CANCELLED")
    );

    let status = suite
        .orders
        .cancel_order(CancelOrderRequest {
            id: uuid::Uuid::now_v7().to_string(),
            reason: String::new(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    suite.stop().await;
}

#[tokio::test]
async fn a_failed_order_cannot_be_cancelled() {
    let options = Options {
        payments: failing(1.0, &["Charge"]),
        ..Options::default()
    };
    let mut suite = Suite::start(options).await.expect("sqlite");
    let user = suite.user().await;
    let order = suite
        .orders
        .create_order(order_request(&user, "k", &[("BOOK", 1, 1000)]))
        .await
        .expect("create");
    let order = order.into_inner().order.expect("order");
    let status = suite
        .orders
        .cancel_order(CancelOrderRequest {
            id: order.id,
            reason: String::new(),
        })
        .await
        .expect_err("not confirmed");
    assert_eq!(status.code(), Code::FailedPrecondition);
    suite.stop().await;
}

#[tokio::test]
async fn a_users_orders_are_listed_newest_first_in_pages() {
    let mut suite = Suite::start(Options::default()).await.expect("sqlite");
    let user = suite.user().await;
    let other = suite.user().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let order = suite
            .orders
            .create_order(order_request(&user, &format!("k{i}"), &[("SKU", 1, 100)]))
            .await;
        ids.push(order.expect("create").into_inner().order.expect("order").id);
    }
    suite
        .orders
        .create_order(order_request(&other, "k0", &[("SKU", 1, 100)]))
        .await
        .expect("other's order");
    ids.reverse();

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = suite
            .orders
            .list_orders(ListOrdersRequest {
                user_id: user.clone(),
                page_size: 2,
                page_token: token,
            })
            .await
            .expect("list")
            .into_inner();
        assert!(
            page.orders
                .iter()
                .all(|o| o.user_id == user && o.items.len() == 1)
        );
        seen.extend(page.orders.into_iter().map(|o| o.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ids, "newest first, each once, only this user's");

    // A token is bound to its query: another user's listing refuses it.
    let first = suite
        .orders
        .list_orders(ListOrdersRequest {
            user_id: user.clone(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("list")
        .into_inner();
    let status = suite
        .orders
        .list_orders(ListOrdersRequest {
            user_id: other,
            page_size: 1,
            page_token: first.next_page_token,
        })
        .await
        .expect_err("foreign token");
    assert_eq!(status.code(), Code::InvalidArgument);
    suite.stop().await;
}

#[tokio::test]
async fn a_hung_delivery_is_cut_off_at_the_budget_and_the_charge_refunded() {
    let budget = Duration::from_millis(400);
    let options = Options {
        // Delivery never answers a schedule.
        delivery: slow(Duration::from_secs(3600), &["ScheduleDelivery"]),
        budget,
        ..Options::default()
    };
    let mut suite = Suite::start(options).await.expect("sqlite");
    let user = suite.user().await;
    let started = Instant::now();
    let outcome = suite
        .orders
        .create_order(order_request(&user, "k", &[("BOOK", 1, 1000)]))
        .await;
    let took = started.elapsed();
    assert!(
        took < budget + Duration::from_millis(100),
        "answered in {took:?}"
    );
    let order_id = match outcome {
        Err(status) => {
            assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
            status
                .get_details_error_info()
                .and_then(|i| i.metadata.get("id").cloned())
                .expect("order id")
        }
        Ok(response) => response.into_inner().order.expect("order").id,
    };
    let settled = suite.settled(&order_id).await;
    assert_eq!(settled.status(), OrderStatus::Failed);
    assert_eq!(
        suite.charges_for(&order_id).await,
        [(1000, 1000)],
        "charged, then refunded"
    );
    assert_eq!(
        suite.delivery_status(&order_id).await.as_deref(),
        Some("CANCELLED")
    );
    assert_eq!(suite.net_charged().await, 0);
    suite.stop().await;
}

#[tokio::test]
async fn a_page_of_large_orders_stops_short_of_the_message_limit() {
    // 150 orders of 100 lines with 64-character SKUs: about 9 KB each, 1.3 MB in all, so a
    // thousand-order page of them would not fit a message of the old kind either.
    let sku = |i: usize| format!("{i:0>64}");
    let mut suite = Suite::start(Options {
        products: (0..100).map(|i| (sku(i), 100, 1_000)).collect(),
        ..Options::default()
    })
    .await
    .expect("sqlite");
    let user = suite.user().await;
    let lines: Vec<(String, i32, i64)> = (0..100).map(|i| (sku(i), 1, 100)).collect();
    let lines: Vec<(&str, i32, i64)> = lines.iter().map(|(s, q, p)| (s.as_str(), *q, *p)).collect();
    let mut placed = tokio::task::JoinSet::new();
    for worker in 0..10 {
        let mut orders = suite.orders.clone();
        let request = |n: usize| order_request(&user, &format!("big-{worker}-{n}"), &lines);
        let requests: Vec<_> = (0..15).map(request).collect();
        placed.spawn(async move {
            for request in requests {
                orders.create_order(request).await.expect("placed");
            }
        });
    }
    while let Some(done) = placed.join_next().await {
        done.expect("worker");
    }

    let mut seen = std::collections::HashSet::new();
    let mut pages = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = suite
            .orders
            .list_orders(ListOrdersRequest {
                user_id: user.clone(),
                page_size: 1000,
                page_token,
            })
            .await
            .expect("a maximum page of large orders is answered")
            .into_inner();
        pages.push(page.orders.len());
        assert!(prost::Message::encoded_len(&page) <= 1024 * 1024 + 64 * 1024);
        seen.extend(page.orders.into_iter().map(|o| o.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    eprintln!("page sizes: {pages:?}");
    assert!(
        pages.len() >= 2 && pages[0] < 150,
        "a short first page: {pages:?}"
    );
    assert_eq!(seen.len(), 150, "every order exactly once across pages");
    suite.stop().await;
}
