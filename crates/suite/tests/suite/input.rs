//! Hostile text: NUL and other control characters in every free-text field of every method are
//! refused with INVALID_ARGUMENT naming the field, before they reach a database (PostgreSQL cannot
//! store NUL and would fail the call as INTERNAL), and refusing them opens no breaker.

use orderly::common::v1::{Address, Money};
use orderly::delivery::v1::{CancelDeliveryRequest, GetDeliveryRequest, ScheduleDeliveryRequest};
use orderly::orders::v1::{CancelOrderRequest, OrderStatus};
use orderly::payments::v1::refund_request::Target;
use orderly::payments::v1::{ChargeRequest, GetPaymentRequest, RefundRequest};
use orderly::users::v1::{CreateUserRequest, UpdateUserRequest, User};
use orderly_testkit::db::TestBackend;
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::{Options, Suite, order_request};

/// Values no free-text field may hold.
const HOSTILE: [&str; 4] = ["A\u{0}", "line\nbreak", "\u{1b}[31mred", "del\u{7f}"];

/// Asserts that `result` is INVALID_ARGUMENT with a violation of `field`.
fn refused<T: std::fmt::Debug>(result: Result<T, tonic::Status>, field: &str, value: &str) {
    let status = result.expect_err(&format!("{field} = {value:?} is refused"));
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{field} = {value:?}: {status:?}"
    );
    let fields: Vec<String> = status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default();
    assert!(
        fields.iter().any(|f| f == field),
        "{field} = {value:?} is named: {fields:?}"
    );
}

fn address() -> Address {
    Address {
        recipient: "Ada".into(),
        line1: "1 Way".into(),
        line2: String::new(),
        city: "London".into(),
        postal_code: "N1".into(),
        country_code: "GB".into(),
    }
}

/// Every address field set to `value` in turn, with the field's name.
fn hostile_addresses(value: &str) -> Vec<(&'static str, Address)> {
    let v = value.to_owned();
    vec![
        (
            "recipient",
            Address {
                recipient: v.clone(),
                ..address()
            },
        ),
        (
            "line1",
            Address {
                line1: v.clone(),
                ..address()
            },
        ),
        (
            "line2",
            Address {
                line2: v.clone(),
                ..address()
            },
        ),
        (
            "city",
            Address {
                city: v.clone(),
                ..address()
            },
        ),
        (
            "postal_code",
            Address {
                postal_code: v,
                ..address()
            },
        ),
    ]
}

async fn control_characters_are_refused_everywhere(backend: TestBackend) {
    let Some(mut suite) = Suite::start(Options {
        backend,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let user = suite.user().await;
    let confirmed = suite
        .orders
        .create_order(order_request(&user, "good", &[("MUG", 1, 500)]))
        .await
        .expect("a good order")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(confirmed.status(), OrderStatus::Confirmed);
    let money = || {
        Some(Money {
            currency_code: "EUR".into(),
            amount_minor: 100,
        })
    };

    for value in HOSTILE {
        let v = || value.to_owned();
        // Users.
        let create = |name: String, email: String| CreateUserRequest { name, email };
        refused(
            suite
                .users
                .create_user(create(v(), "x@example.com".into()))
                .await,
            "name",
            value,
        );
        refused(
            suite
                .users
                .create_user(create("X".into(), format!("x{value}@example.com")))
                .await,
            "email",
            value,
        );
        let update = |name: String, email: String| UpdateUserRequest {
            user: Some(User {
                id: user.clone(),
                name,
                email,
                ..User::default()
            }),
            update_mask: None,
        };
        refused(
            suite
                .users
                .update_user(update(v(), "x@example.com".into()))
                .await,
            "user.name",
            value,
        );
        refused(
            suite
                .users
                .update_user(update("X".into(), format!("\"{value}\"@example.com")))
                .await,
            "user.email",
            value,
        );

        // Orders.
        refused(
            suite
                .orders
                .create_order(order_request(&user, "k", &[(value, 1, 100)]))
                .await,
            "items[0].sku",
            value,
        );
        refused(
            suite
                .orders
                .create_order(order_request(&user, value, &[("SKU", 1, 100)]))
                .await,
            "idempotency_key",
            value,
        );
        for (field, hostile) in hostile_addresses(value) {
            let mut request = order_request(&user, "k", &[("SKU", 1, 100)]);
            request.shipping_address = Some(hostile);
            refused(
                suite.orders.create_order(request).await,
                &format!("shipping_address.{field}"),
                value,
            );
        }
        let cancel = CancelOrderRequest {
            id: confirmed.id.clone(),
            reason: v(),
        };
        refused(suite.orders.cancel_order(cancel).await, "reason", value);

        // Payments.
        let charge = |order_id: String, idempotency_key: String| ChargeRequest {
            order_id,
            amount: money(),
            idempotency_key,
        };
        refused(
            suite.payments.charge(charge(v(), "k".into())).await,
            "order_id",
            value,
        );
        refused(
            suite.payments.charge(charge("o".into(), v())).await,
            "idempotency_key",
            value,
        );
        let refund = |target: Target, idempotency_key: String, reason: String| RefundRequest {
            target: Some(target),
            amount: None,
            idempotency_key,
            reason,
        };
        refused(
            suite
                .payments
                .refund(refund(Target::PaymentId(v()), "k".into(), String::new()))
                .await,
            "payment_id",
            value,
        );
        refused(
            suite
                .payments
                .refund(refund(
                    Target::ChargeIdempotencyKey(v()),
                    "k".into(),
                    String::new(),
                ))
                .await,
            "charge_idempotency_key",
            value,
        );
        refused(
            suite
                .payments
                .refund(refund(
                    Target::PaymentId(confirmed.payment_id.clone()),
                    v(),
                    String::new(),
                ))
                .await,
            "idempotency_key",
            value,
        );
        refused(
            suite
                .payments
                .refund(refund(
                    Target::PaymentId(confirmed.payment_id.clone()),
                    "k".into(),
                    v(),
                ))
                .await,
            "reason",
            value,
        );
        refused(
            suite
                .payments
                .get_payment(GetPaymentRequest { id: v() })
                .await,
            "id",
            value,
        );

        // Delivery.
        let schedule = |order_id: String, address: Address| ScheduleDeliveryRequest {
            order_id,
            address: Some(address),
        };
        refused(
            suite
                .delivery
                .schedule_delivery(schedule(v(), address()))
                .await,
            "order_id",
            value,
        );
        for (field, hostile) in hostile_addresses(value) {
            refused(
                suite
                    .delivery
                    .schedule_delivery(schedule("o".into(), hostile))
                    .await,
                &format!("address.{field}"),
                value,
            );
        }
        refused(
            suite
                .delivery
                .cancel_delivery(CancelDeliveryRequest {
                    order_id: v(),
                    reason: String::new(),
                })
                .await,
            "order_id",
            value,
        );
        refused(
            suite
                .delivery
                .cancel_delivery(CancelDeliveryRequest {
                    order_id: confirmed.id.clone(),
                    reason: v(),
                })
                .await,
            "reason",
            value,
        );
        refused(
            suite
                .delivery
                .get_delivery(GetDeliveryRequest { id: v() })
                .await,
            "id",
            value,
        );
    }

    // Fifty hostile orders in a row, then a good one: it is taken (no breaker opened), and the
    // store holds only the good orders.
    for i in 0..50 {
        let request = order_request(&user, &format!("hostile-{i}"), &[("A\u{0}", 1, 100)]);
        assert_eq!(
            suite
                .orders
                .create_order(request)
                .await
                .expect_err("refused")
                .code(),
            Code::InvalidArgument
        );
    }
    let after = suite
        .orders
        .create_order(order_request(&user, "after", &[("MUG", 1, 500)]))
        .await
        .expect("taken after fifty refusals")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(after.status(), OrderStatus::Confirmed);
    assert_eq!(
        suite.net_charged().await,
        1000,
        "two good orders charged, nothing else"
    );
    suite.stop().await;
}

#[tokio::test]
async fn control_characters_are_refused_in_every_text_field_on_sqlite() {
    control_characters_are_refused_everywhere(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn control_characters_are_refused_in_every_text_field_on_postgres() {
    control_characters_are_refused_everywhere(TestBackend::Postgres).await;
}
