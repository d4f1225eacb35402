//! ScheduleDelivery, CancelDelivery and GetDelivery.

use orderly::delivery::v1::{
    CancelDeliveryRequest, Delivery, DeliveryStatus, GetDeliveryRequest, ScheduleDeliveryRequest,
};
use tonic::Code;

use crate::support::{TestServer, address, reason, schedule, violated_fields};

crate::on_both_backends!(
    a_scheduled_delivery_is_read_back,
    scheduling_an_order_twice_makes_one_delivery,
    a_cancel_sticks_and_is_idempotent,
    a_cancel_before_the_schedule_wins,
    invalid_requests_name_their_fields_and_store_nothing,
    an_unknown_delivery_is_not_found,
);

async fn get(server: &mut TestServer, id: &str) -> Delivery {
    server
        .client
        .get_delivery(GetDeliveryRequest { id: id.into() })
        .await
        .expect("get")
        .into_inner()
        .delivery
        .expect("delivery")
}

async fn cancel(server: &mut TestServer, order_id: &str) -> Delivery {
    server
        .client
        .cancel_delivery(CancelDeliveryRequest {
            order_id: order_id.into(),
            reason: "order cancelled".into(),
        })
        .await
        .expect("cancel")
        .into_inner()
        .delivery
        .expect("delivery")
}

async fn a_scheduled_delivery_is_read_back(mut server: TestServer) {
    let scheduled = schedule(&mut server.client, "order-1").await;
    assert!(!scheduled.id.is_empty());
    assert_eq!(scheduled.order_id, "order-1");
    assert_eq!(scheduled.status(), DeliveryStatus::Scheduled);
    assert_eq!(scheduled.address, Some(address()));
    let eta = scheduled
        .estimated_arrival_time
        .expect("an arrival estimate");
    let created = scheduled.create_time.expect("a create time");
    assert!(eta.seconds > created.seconds, "{eta:?} after {created:?}");

    assert_eq!(get(&mut server, &scheduled.id).await, scheduled);
    server.stop().await;
}

async fn scheduling_an_order_twice_makes_one_delivery(mut server: TestServer) {
    let first = schedule(&mut server.client, "order-1").await;
    let again = schedule(&mut server.client, "order-1").await;
    assert_eq!(again, first);
    let other = schedule(&mut server.client, "order-2").await;
    assert_ne!(other.id, first.id);
    server.stop().await;
}

async fn a_cancel_sticks_and_is_idempotent(mut server: TestServer) {
    let scheduled = schedule(&mut server.client, "order-1").await;
    let cancelled = cancel(&mut server, "order-1").await;
    assert_eq!(cancelled.id, scheduled.id);
    assert_eq!(cancelled.status(), DeliveryStatus::Cancelled);
    let again = cancel(&mut server, "order-1").await;
    assert_eq!(again.id, scheduled.id);
    assert_eq!(again.status(), DeliveryStatus::Cancelled);
    // A late retry of the schedule does not bring it back.
    let late = schedule(&mut server.client, "order-1").await;
    assert_eq!(late.id, scheduled.id);
    assert_eq!(late.status(), DeliveryStatus::Cancelled);
    assert_eq!(
        get(&mut server, &scheduled.id).await.status(),
        DeliveryStatus::Cancelled
    );
    server.stop().await;
}

async fn a_cancel_before_the_schedule_wins(mut server: TestServer) {
    let cancelled = cancel(&mut server, "order-1").await;
    assert_eq!(cancelled.status(), DeliveryStatus::Cancelled);
    // The schedule arriving after its cancel ships nothing.
    let late = schedule(&mut server.client, "order-1").await;
    assert_eq!(late.id, cancelled.id);
    assert_eq!(late.status(), DeliveryStatus::Cancelled);
    server.stop().await;
}

async fn invalid_requests_name_their_fields_and_store_nothing(mut server: TestServer) {
    let mut no_city = address();
    no_city.city = String::new();
    let mut bad_country = address();
    bad_country.country_code = "Narnia".into();
    let cases = [
        (
            ScheduleDeliveryRequest::default(),
            vec!["order_id", "address"],
        ),
        (
            ScheduleDeliveryRequest {
                order_id: "order-1".into(),
                address: Some(no_city),
            },
            vec!["address.city"],
        ),
        (
            ScheduleDeliveryRequest {
                order_id: "order\u{0}1".into(),
                address: Some(bad_country),
            },
            vec!["order_id", "address.country_code"],
        ),
    ];
    for (request, fields) in cases {
        let status = server
            .client
            .schedule_delivery(request.clone())
            .await
            .expect_err("invalid schedule");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{request:?}: {status:?}"
        );
        assert_eq!(violated_fields(&status), fields, "{request:?}");
    }
    let status = server
        .client
        .cancel_delivery(CancelDeliveryRequest {
            order_id: "order-1".into(),
            reason: "bad\u{7}reason".into(),
        })
        .await
        .expect_err("invalid cancel");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["reason"]);

    // None of them stored anything: order-1 is still free to ship.
    let scheduled = schedule(&mut server.client, "order-1").await;
    assert_eq!(scheduled.status(), DeliveryStatus::Scheduled);
    server.stop().await;
}

async fn an_unknown_delivery_is_not_found(mut server: TestServer) {
    let status = server
        .client
        .get_delivery(GetDeliveryRequest {
            id: "no-such-delivery".into(),
        })
        .await
        .expect_err("unknown delivery");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status).as_deref(), Some("DELIVERY_NOT_FOUND"));
    server.stop().await;
}
