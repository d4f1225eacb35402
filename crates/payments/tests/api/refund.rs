//! Refund: by payment id or by the charge's key, in parts, never more than was charged, once per
//! key; a refund that arrives before its charge voids it.

use orderly::payments::v1::refund_request::Target;
use orderly::payments::v1::{Payment, PaymentStatus, RefundRequest};
use tonic::Code;

use crate::support::{TestServer, charge, minor, money, reason, violated_fields};

crate::on_both_backends!(
    partial_refunds_add_up_and_a_full_refund_takes_the_rest,
    an_over_refund_is_refused_and_changes_nothing,
    a_retried_refund_gives_the_money_back_once,
    a_refund_key_reused_for_another_payment_is_refused,
    a_refund_by_charge_key_finds_the_charge,
    a_refund_before_its_charge_voids_it,
    invalid_refunds_name_their_fields,
);

/// Refunds `amount` (everything left when `None`) of `target` under `key`.
fn refund(target: Target, amount: Option<i64>, key: &str) -> RefundRequest {
    RefundRequest {
        target: Some(target),
        amount: amount.map(|a| money("EUR", a)),
        idempotency_key: key.into(),
        reason: "customer asked".into(),
    }
}

async fn refunded(server: &mut TestServer, request: RefundRequest) -> Payment {
    server
        .client
        .refund(request)
        .await
        .expect("refund")
        .into_inner()
        .payment
        .expect("payment")
}

async fn partial_refunds_add_up_and_a_full_refund_takes_the_rest(mut server: TestServer) {
    let paid = charge(&mut server.client, "order-1", 1999, "charge-1").await;
    let by_id = || Target::PaymentId(paid.id.clone());

    let after = refunded(&mut server, refund(by_id(), Some(500), "refund-1")).await;
    assert_eq!(minor(after.refunded_amount.as_ref()), 500);
    assert_eq!(after.status(), PaymentStatus::PartiallyRefunded);

    let after = refunded(&mut server, refund(by_id(), Some(1000), "refund-2")).await;
    assert_eq!(minor(after.refunded_amount.as_ref()), 1500);

    let after = refunded(&mut server, refund(by_id(), None, "refund-3")).await;
    assert_eq!(minor(after.refunded_amount.as_ref()), 1999);
    assert_eq!(after.status(), PaymentStatus::Refunded);
    assert_eq!(
        minor(after.amount.as_ref()),
        1999,
        "the charge itself stays"
    );

    // A full refund of a fully refunded charge has nothing left to move.
    let again = refunded(&mut server, refund(by_id(), None, "refund-4")).await;
    assert_eq!(minor(again.refunded_amount.as_ref()), 1999);
    server.stop().await;
}

async fn an_over_refund_is_refused_and_changes_nothing(mut server: TestServer) {
    let paid = charge(&mut server.client, "order-1", 1999, "charge-1").await;
    let by_id = || Target::PaymentId(paid.id.clone());
    refunded(&mut server, refund(by_id(), Some(1500), "refund-1")).await;

    let status = server
        .client
        .refund(refund(by_id(), Some(500), "refund-2"))
        .await
        .expect_err("more than is left");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status).as_deref(), Some("REFUND_EXCEEDS_CHARGE"));

    // What is left can still be refunded, under a fresh key.
    let after = refunded(&mut server, refund(by_id(), Some(499), "refund-3")).await;
    assert_eq!(minor(after.refunded_amount.as_ref()), 1999);
    server.stop().await;
}

async fn a_retried_refund_gives_the_money_back_once(mut server: TestServer) {
    let paid = charge(&mut server.client, "order-1", 1999, "charge-1").await;
    let request = refund(Target::PaymentId(paid.id.clone()), Some(700), "refund-1");
    let first = refunded(&mut server, request.clone()).await;
    let again = refunded(&mut server, request).await;
    assert_eq!(minor(first.refunded_amount.as_ref()), 700);
    assert_eq!(minor(again.refunded_amount.as_ref()), 700);
    server.stop().await;
}

async fn a_refund_key_reused_for_another_payment_is_refused(mut server: TestServer) {
    let one = charge(&mut server.client, "order-1", 1999, "charge-1").await;
    let two = charge(&mut server.client, "order-2", 1999, "charge-2").await;
    refunded(
        &mut server,
        refund(Target::PaymentId(one.id.clone()), Some(100), "refund-1"),
    )
    .await;
    let status = server
        .client
        .refund(refund(
            Target::PaymentId(two.id.clone()),
            Some(100),
            "refund-1",
        ))
        .await
        .expect_err("a refund key used for another payment");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status).as_deref(), Some("IDEMPOTENCY_KEY_REUSED"));
    server.stop().await;
}

async fn a_refund_by_charge_key_finds_the_charge(mut server: TestServer) {
    let paid = charge(&mut server.client, "order-1", 1999, "charge-1").await;
    let after = refunded(
        &mut server,
        refund(
            Target::ChargeIdempotencyKey("charge-1".into()),
            None,
            "refund-1",
        ),
    )
    .await;
    assert_eq!(after.id, paid.id);
    assert_eq!(minor(after.refunded_amount.as_ref()), 1999);
    assert_eq!(after.status(), PaymentStatus::Refunded);
    server.stop().await;
}

async fn a_refund_before_its_charge_voids_it(mut server: TestServer) {
    let voided = refunded(
        &mut server,
        refund(
            Target::ChargeIdempotencyKey("charge-1".into()),
            None,
            "refund-1",
        ),
    )
    .await;
    assert_eq!(voided.status(), PaymentStatus::Voided);
    // The charge arriving late takes nothing: it answers with the voided payment.
    let late = charge(&mut server.client, "order-1", 1999, "charge-1").await;
    assert_eq!(late.id, voided.id);
    assert_eq!(late.status(), PaymentStatus::Voided);
    assert_eq!(minor(late.amount.as_ref()), 0);
    server.stop().await;
}

async fn invalid_refunds_name_their_fields(mut server: TestServer) {
    let paid = charge(&mut server.client, "order-1", 1999, "charge-1").await;
    let by_id = || Some(Target::PaymentId(paid.id.clone()));
    let cases = [
        (
            RefundRequest::default(),
            vec!["payment_id", "idempotency_key"],
        ),
        (
            RefundRequest {
                target: by_id(),
                amount: Some(money("EUR", 0)),
                idempotency_key: "r".into(),
                reason: String::new(),
            },
            vec!["amount.amount_minor"],
        ),
        (
            RefundRequest {
                target: by_id(),
                amount: Some(money("USD", 100)),
                idempotency_key: "r".into(),
                reason: String::new(),
            },
            vec!["amount.currency_code"],
        ),
        (
            RefundRequest {
                target: by_id(),
                amount: None,
                idempotency_key: "r".into(),
                reason: "bad\u{0}reason".into(),
            },
            vec!["reason"],
        ),
    ];
    for (request, fields) in cases {
        let status = server
            .client
            .refund(request.clone())
            .await
            .expect_err("invalid refund");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{request:?}: {status:?}"
        );
        assert_eq!(violated_fields(&status), fields, "{request:?}");
    }
    // Nothing was refunded by the refused requests.
    let after = refunded(
        &mut server,
        refund(Target::PaymentId(paid.id.clone()), Some(1), "refund-ok"),
    )
    .await;
    assert_eq!(minor(after.refunded_amount.as_ref()), 1);
    server.stop().await;
}
