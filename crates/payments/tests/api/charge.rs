//! Charge and GetPayment: money taken once per key, and requests checked before anything is written.

use orderly::payments::v1::{ChargeRequest, GetPaymentRequest, PaymentStatus};
use tonic::Code;

use crate::support::{TestServer, charge, minor, money, reason, violated_fields};

crate::on_both_backends!(
    a_charge_is_stored_and_read_back,
    a_retried_charge_takes_the_money_once,
    a_key_reused_for_a_different_charge_is_refused,
    invalid_charges_name_every_bad_field_and_store_nothing,
    an_unknown_payment_is_not_found,
);

async fn a_charge_is_stored_and_read_back(mut server: TestServer) {
    let payment = charge(&mut server.client, "order-1", 1999, "charge-1").await;
    assert!(!payment.id.is_empty());
    assert_eq!(payment.order_id, "order-1");
    assert_eq!(minor(payment.amount.as_ref()), 1999);
    assert_eq!(minor(payment.refunded_amount.as_ref()), 0);
    assert_eq!(payment.status(), PaymentStatus::Succeeded);
    assert_eq!(payment.idempotency_key, "charge-1");

    let read = server
        .client
        .get_payment(GetPaymentRequest {
            id: payment.id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .payment
        .expect("payment");
    assert_eq!(read, payment);
    server.stop().await;
}

async fn a_retried_charge_takes_the_money_once(mut server: TestServer) {
    let first = charge(&mut server.client, "order-1", 1999, "charge-1").await;
    let again = charge(&mut server.client, "order-1", 1999, "charge-1").await;
    assert_eq!(again.id, first.id);
    assert_eq!(again, first);
    server.stop().await;
}

async fn a_key_reused_for_a_different_charge_is_refused(mut server: TestServer) {
    let first = charge(&mut server.client, "order-1", 1999, "charge-1").await;
    for (order_id, amount) in [("order-1", 2999), ("order-2", 1999)] {
        let status = server
            .client
            .charge(ChargeRequest {
                order_id: order_id.into(),
                amount: Some(money("EUR", amount)),
                idempotency_key: "charge-1".into(),
            })
            .await
            .expect_err("a different charge under a used key");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert_eq!(reason(&status).as_deref(), Some("IDEMPOTENCY_KEY_REUSED"));
    }
    // The first charge is untouched.
    let read = server
        .client
        .get_payment(GetPaymentRequest {
            id: first.id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .payment
        .expect("payment");
    assert_eq!(read, first);
    server.stop().await;
}

async fn invalid_charges_name_every_bad_field_and_store_nothing(mut server: TestServer) {
    let cases = [
        (
            ChargeRequest::default(),
            vec!["order_id", "amount", "idempotency_key"],
        ),
        (
            ChargeRequest {
                order_id: "order-1".into(),
                amount: Some(money("EUR", -5)),
                idempotency_key: "k".into(),
            },
            vec!["amount.amount_minor"],
        ),
        (
            ChargeRequest {
                order_id: "order-1".into(),
                amount: Some(money("ZZZ", 100)),
                idempotency_key: "k".into(),
            },
            vec!["amount.currency_code"],
        ),
        (
            ChargeRequest {
                order_id: "order\u{0}1".into(),
                amount: Some(money("EUR", 100)),
                idempotency_key: "k\u{7}".into(),
            },
            vec!["order_id", "idempotency_key"],
        ),
    ];
    for (request, fields) in cases {
        let status = server
            .client
            .charge(request.clone())
            .await
            .expect_err("invalid charge");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{request:?}: {status:?}"
        );
        assert_eq!(violated_fields(&status), fields, "{request:?}");
    }
    // The key of the refused requests is still free: nothing was stored under it.
    let payment = charge(&mut server.client, "order-1", 100, "k").await;
    assert_eq!(minor(payment.amount.as_ref()), 100);
    server.stop().await;
}

async fn an_unknown_payment_is_not_found(mut server: TestServer) {
    let status = server
        .client
        .get_payment(GetPaymentRequest {
            id: "no-such-payment".into(),
        })
        .await
        .expect_err("unknown payment");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status).as_deref(), Some("PAYMENT_NOT_FOUND"));

    let status = server
        .client
        .get_payment(GetPaymentRequest::default())
        .await
        .expect_err("no id");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["id"]);
    server.stop().await;
}
