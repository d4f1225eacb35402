//! Reservations: every line or none, never more than is on hand however many orders race for the
//! last units; committed into sales or released back on hand, each once; released by the catalog
//! when they expire; and keyed by the order, so that retries and late releases are harmless.

use std::time::Duration;

use orderly::catalog::v1::{
    CommitReservationRequest, ReleaseReservationRequest, ReservationStatus, UpdateProductRequest,
};
use prost_types::FieldMask;
use tonic::Code;

use crate::support::{
    TestServer, create, euros, new_product, reason, reserve_request, stock, violated_fields,
};

crate::on_both_backends!(
    a_reservation_takes_every_line_or_none,
    fifty_orders_racing_for_the_last_ten_units_reserve_exactly_ten,
    a_commit_sells_and_a_release_puts_back_each_once,
    a_retried_reservation_reserves_once_and_a_changed_one_is_refused,
    a_release_that_comes_first_keeps_the_reservation_from_being_made,
    an_expired_reservation_is_released_by_the_catalog_and_cannot_be_committed,
    invalid_reservations_name_every_bad_field,
);

async fn a_reservation_takes_every_line_or_none(mut server: TestServer) {
    create(&mut server, "MUG-1", 100, 5).await;
    create(&mut server, "PEN-1", 100, 1).await;
    let status = server
        .client
        .reserve_stock(reserve_request("order-1", &[("MUG-1", 2), ("PEN-1", 2)]))
        .await
        .expect_err("one line short");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status).as_deref(), Some("OUT_OF_STOCK"));
    let info = orderly_testkit::details::error_info(&status).expect("error info");
    assert_eq!(info.metadata.get("skus").map(String::as_str), Some("PEN-1"));
    assert_eq!(
        stock(&mut server, "MUG-1").await,
        (5, 0, 0),
        "nothing taken"
    );

    let status = server
        .client
        .reserve_stock(reserve_request("order-1", &[("MUG-1", 1), ("NONE", 1)]))
        .await
        .expect_err("an unknown product");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status).as_deref(), Some("PRODUCT_NOT_FOUND"));
    assert_eq!(
        stock(&mut server, "MUG-1").await,
        (5, 0, 0),
        "nothing taken"
    );

    // The order id was not spent by the refusals.
    let reservation = server
        .client
        .reserve_stock(reserve_request("order-1", &[("PEN-1", 1), ("MUG-1", 2)]))
        .await
        .expect("both lines on hand")
        .into_inner()
        .reservation
        .expect("reservation");
    assert_eq!(reservation.status(), ReservationStatus::Reserved);
    let lines: Vec<_> = reservation
        .lines
        .iter()
        .map(|l| (l.sku.as_str(), l.quantity))
        .collect();
    assert_eq!(lines, [("MUG-1", 2), ("PEN-1", 1)]);
    assert_eq!(stock(&mut server, "MUG-1").await, (3, 2, 0));
    assert_eq!(stock(&mut server, "PEN-1").await, (0, 1, 0));
    server.stop().await;
}

async fn fifty_orders_racing_for_the_last_ten_units_reserve_exactly_ten(mut server: TestServer) {
    create(&mut server, "LAST", 100, 10).await;
    let attempts = (0..50).map(|n| {
        let mut client = server.client.clone();
        async move {
            client
                .reserve_stock(reserve_request(&format!("order-{n}"), &[("LAST", 1)]))
                .await
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let reserved = results.iter().filter(|r| r.is_ok()).count();
    let out_of_stock = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|status| reason(status).as_deref() == Some("OUT_OF_STOCK"))
        .count();
    assert_eq!((reserved, out_of_stock), (10, 40), "{results:?}");
    assert_eq!(stock(&mut server, "LAST").await, (0, 10, 0));
    server.stop().await;
}

async fn a_commit_sells_and_a_release_puts_back_each_once(mut server: TestServer) {
    create(&mut server, "MUG-1", 100, 5).await;
    for order in ["sold", "released"] {
        server
            .client
            .reserve_stock(reserve_request(order, &[("MUG-1", 2)]))
            .await
            .expect("reserve");
    }
    assert_eq!(stock(&mut server, "MUG-1").await, (1, 4, 0));
    for _ in 0..2 {
        let committed = server
            .client
            .commit_reservation(CommitReservationRequest {
                order_id: "sold".into(),
            })
            .await
            .expect("commit")
            .into_inner()
            .reservation
            .expect("reservation");
        assert_eq!(committed.status(), ReservationStatus::Committed);
        let released = server
            .client
            .release_reservation(ReleaseReservationRequest {
                order_id: "released".into(),
                reason: "payment failed".into(),
            })
            .await
            .expect("release")
            .into_inner()
            .reservation
            .expect("reservation");
        assert_eq!(released.status(), ReservationStatus::Released);
        assert_eq!(stock(&mut server, "MUG-1").await, (3, 0, 2), "once each");
    }
    let status = server
        .client
        .commit_reservation(CommitReservationRequest {
            order_id: "released".into(),
        })
        .await
        .expect_err("commit after release");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status).as_deref(), Some("RESERVATION_RELEASED"));

    // Releasing a sale (a cancelled order) puts its units back on hand.
    server
        .client
        .release_reservation(ReleaseReservationRequest {
            order_id: "sold".into(),
            reason: "order cancelled".into(),
        })
        .await
        .expect("release a sale");
    assert_eq!(stock(&mut server, "MUG-1").await, (5, 0, 0));

    let status = server
        .client
        .commit_reservation(CommitReservationRequest {
            order_id: "never".into(),
        })
        .await
        .expect_err("no reservation");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status).as_deref(), Some("RESERVATION_NOT_FOUND"));
    server.stop().await;
}

async fn a_retried_reservation_reserves_once_and_a_changed_one_is_refused(mut server: TestServer) {
    create(&mut server, "MUG-1", 100, 5).await;
    let first = server
        .client
        .reserve_stock(reserve_request("order-1", &[("MUG-1", 2)]))
        .await
        .expect("reserve")
        .into_inner();
    // Each line comes back with the unit price it was reserved at: what the order is priced at.
    let lines = &first.reservation.as_ref().expect("reservation").lines;
    assert_eq!(lines[0].unit_price, Some(euros(100)));
    // The price changes; the retry answers the reservation as it was made, price included.
    let mut dearer = new_product("MUG-1", "ignored", 250, 0);
    dearer.description.clear();
    server
        .client
        .update_product(UpdateProductRequest {
            product: Some(dearer),
            update_mask: Some(FieldMask {
                paths: vec!["price".into()],
            }),
        })
        .await
        .expect("update the price");
    let again = server
        .client
        .reserve_stock(reserve_request("order-1", &[("MUG-1", 2)]))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(again, first);
    assert_eq!(stock(&mut server, "MUG-1").await, (3, 2, 0));
    let status = server
        .client
        .reserve_stock(reserve_request("order-1", &[("MUG-1", 3)]))
        .await
        .expect_err("another reservation for the order");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status).as_deref(), Some("IDEMPOTENCY_KEY_REUSED"));
    assert_eq!(stock(&mut server, "MUG-1").await, (3, 2, 0));
    server.stop().await;
}

async fn a_release_that_comes_first_keeps_the_reservation_from_being_made(mut server: TestServer) {
    create(&mut server, "MUG-1", 100, 5).await;
    let released = server
        .client
        .release_reservation(ReleaseReservationRequest {
            order_id: "late".into(),
            reason: "gave up".into(),
        })
        .await
        .expect("release first")
        .into_inner()
        .reservation
        .expect("reservation");
    assert_eq!(released.status(), ReservationStatus::Released);
    assert!(released.lines.is_empty());
    let reservation = server
        .client
        .reserve_stock(reserve_request("late", &[("MUG-1", 2)]))
        .await
        .expect("the late reservation")
        .into_inner()
        .reservation
        .expect("reservation");
    assert_eq!(reservation.status(), ReservationStatus::Released);
    assert_eq!(stock(&mut server, "MUG-1").await, (5, 0, 0), "never taken");
    server.stop().await;
}

async fn an_expired_reservation_is_released_by_the_catalog_and_cannot_be_committed(
    mut server: TestServer,
) {
    create(&mut server, "MUG-1", 100, 5).await;
    let mut short = reserve_request("slow", &[("MUG-1", 2)]);
    short.ttl = Some(prost_types::Duration {
        seconds: 0,
        nanos: 200_000_000,
    });
    server.client.reserve_stock(short).await.expect("reserve");
    assert_eq!(stock(&mut server, "MUG-1").await, (3, 2, 0));
    // The sweeper runs every 50 ms: the units come back soon after the 200 ms.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while stock(&mut server, "MUG-1").await != (5, 0, 0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "expired units never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = server
        .client
        .commit_reservation(CommitReservationRequest {
            order_id: "slow".into(),
        })
        .await
        .expect_err("commit after expiry");
    assert_eq!(reason(&status).as_deref(), Some("RESERVATION_RELEASED"));
    assert_eq!(stock(&mut server, "MUG-1").await, (5, 0, 0));
    server.stop().await;
}

async fn invalid_reservations_name_every_bad_field(mut server: TestServer) {
    create(&mut server, "MUG-1", 100, 5).await;
    let mut request = reserve_request("", &[("MUG-1", 0), ("MUG-1", 1), ("A\u{0}", 1)]);
    request.ttl = Some(prost_types::Duration {
        seconds: -1,
        nanos: 0,
    });
    let status = server
        .client
        .reserve_stock(request)
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "lines[0].quantity",
            "lines[1].sku",
            "lines[2].sku",
            "order_id",
            "ttl"
        ]
    );
    let status = server
        .client
        .reserve_stock(reserve_request("order-1", &[]))
        .await
        .expect_err("no lines");
    assert_eq!(violated_fields(&status), ["lines"]);
    assert_eq!(stock(&mut server, "MUG-1").await, (5, 0, 0));
    server.stop().await;
}

/// Beyond the server's concurrency limit, new reservations are shed (RESOURCE_EXHAUSTED, retry
/// later, nothing taken) but releases never are: they undo orders that failed elsewhere.
#[tokio::test]
async fn under_overload_reservations_are_shed_but_releases_never() {
    let slow = orderly_kit::server::faults::FaultConfig {
        latency: Duration::from_millis(100),
        fault_methods: vec!["ReserveStock".into(), "ReleaseReservation".into()],
        ..Default::default()
    };
    let config = orderly_kit::server::config::ServerConfig {
        max_concurrent_calls: 2,
        faults: slow,
        ..Default::default()
    };
    let mut server = crate::support::start_with(orderly_testkit::TestBackend::Sqlite, config)
        .await
        .expect("sqlite");
    create(&mut server, "MUG-1", 100, 1_000).await;
    let reservations = (0..20).map(|n| {
        let mut client = server.client.clone();
        async move {
            client
                .reserve_stock(reserve_request(&format!("order-{n}"), &[("MUG-1", 1)]))
                .await
        }
    });
    let reserved = futures_util::future::join_all(reservations).await;
    let shed = reserved
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::ResourceExhausted))
        .count();
    assert!(shed > 0, "some reservations shed: {reserved:?}");
    assert!(
        reserved
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(s) if s.code() == Code::ResourceExhausted)),
        "the others reserved: {reserved:?}"
    );
    let releases = (0..20).map(|n| {
        let mut client = server.client.clone();
        async move {
            client
                .release_reservation(ReleaseReservationRequest {
                    order_id: format!("order-{n}"),
                    reason: "payment failed".into(),
                })
                .await
        }
    });
    let released = futures_util::future::join_all(releases).await;
    assert!(
        released.iter().all(Result::is_ok),
        "none shed: {released:?}"
    );
    assert_eq!(
        stock(&mut server, "MUG-1").await,
        (1_000, 0, 0),
        "all back on hand"
    );
    server.stop().await;
}
