//! The gRPC implementation of PaymentService: check the whole request, then let the store's unique
//! keys make each charge and refund happen once.

use orderly::common::v1::Money as MoneyMessage;
use orderly::money::{Money, MoneyError};
use orderly::payments::v1::refund_request::Target;
use orderly::payments::v1::{
    ChargeRequest, ChargeResponse, GetPaymentRequest, GetPaymentResponse, Payment, PaymentService,
    PaymentStatus, RefundRequest, RefundResponse,
};
use orderly::validate::{required_text, text};
use orderly_kit::status::FieldViolations;
use orderly_kit::time::timestamp;
use tonic::{Request, Response, Status};

use crate::error::PaymentError;
use crate::store::{Charged, PaymentRecord, PaymentStore, Refunded};

/// The longest idempotency key and refund reason, in characters.
pub use orderly::validate::limits::{KEY_CHARS as MAX_KEY_CHARS, REASON_CHARS as MAX_REASON_CHARS};

/// PaymentService over a [`PaymentStore`].
#[derive(Debug, Clone)]
pub struct Payments {
    store: PaymentStore,
}

impl Payments {
    /// The service over `store`.
    pub fn new(store: PaymentStore) -> Self {
        Self { store }
    }
}

type Reply<T> = Result<Response<T>, Status>;
/// What a handler answers before the trait edge turns its error into a status.
type Answer<T> = Result<Response<T>, PaymentError>;

/// Checks an amount that must be paid: present, a currency code, more than zero.
fn positive_amount(
    violations: &mut FieldViolations,
    field: &str,
    money: Option<&MoneyMessage>,
) -> Option<Money> {
    let Some(money) = money else {
        violations.add(field, "is required");
        return None;
    };
    match Money::parse_positive(&money.currency_code, money.amount_minor) {
        Ok(money) => Some(money),
        Err(error @ MoneyError::BadCurrency) => {
            violations.add(format!("{field}.currency_code"), error.to_string());
            None
        }
        Err(error) => {
            violations.add(format!("{field}.amount_minor"), error.to_string());
            None
        }
    }
}

/// The wire form of a stored payment.
fn payment(record: PaymentRecord) -> Payment {
    let status = if record.is_voided() {
        PaymentStatus::Voided
    } else if record.refunded == 0 {
        PaymentStatus::Succeeded
    } else if record.refunded < record.amount {
        PaymentStatus::PartiallyRefunded
    } else {
        PaymentStatus::Refunded
    };
    let money = |minor| {
        Some(MoneyMessage {
            currency_code: record.currency.clone(),
            amount_minor: minor,
        })
    };
    Payment {
        amount: money(record.amount),
        refunded_amount: money(record.refunded),
        status: status as i32,
        id: record.id,
        order_id: record.order_id,
        idempotency_key: record.idempotency_key,
        create_time: Some(timestamp(record.create_time)),
        update_time: Some(timestamp(record.update_time)),
    }
}

/// The handlers, in the service's own error type; [`PaymentService`] turns it into a status
/// once.
impl Payments {
    async fn charge(&self, request: Request<ChargeRequest>) -> Answer<ChargeResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let order_id = violations.text("order_id", required_text(&request.order_id, MAX_KEY_CHARS));
        let amount = positive_amount(&mut violations, "amount", request.amount.as_ref());
        let key = violations.text(
            "idempotency_key",
            required_text(&request.idempotency_key, MAX_KEY_CHARS),
        );
        let (Some(order_id), Some(amount), Some(key)) = (order_id, amount, key) else {
            return Err(PaymentError::Invalid(violations));
        };
        let record = match self.store.charge(&order_id, amount, &key).await? {
            Charged::New(record) => {
                tracing::info!(payment_id = %record.id, %order_id, amount = amount.minor(), currency = %amount.currency(), "charged");
                record
            }
            // A voided charge answers every later attempt: the caller gave up on it.
            Charged::Existing(record) if record.is_voided() => record,
            Charged::Existing(record)
                if record.order_id != order_id
                    || record.amount != amount.minor()
                    || record.currency != amount.currency().as_str() =>
            {
                return Err(PaymentError::KeyReused(key));
            }
            Charged::Existing(record) => record,
        };
        Ok(Response::new(ChargeResponse {
            payment: Some(payment(record)),
        }))
    }

    async fn refund(&self, request: Request<RefundRequest>) -> Answer<RefundResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let target = match &request.target {
            Some(Target::PaymentId(id)) => violations
                .text("payment_id", required_text(id, MAX_KEY_CHARS))
                .map(Target::PaymentId),
            Some(Target::ChargeIdempotencyKey(key)) => violations
                .text("charge_idempotency_key", required_text(key, MAX_KEY_CHARS))
                .map(Target::ChargeIdempotencyKey),
            None => {
                violations.add(
                    "payment_id",
                    "payment_id or charge_idempotency_key is required",
                );
                None
            }
        };
        let amount = match request.amount.as_ref() {
            Some(_) => {
                positive_amount(&mut violations, "amount", request.amount.as_ref()).map(Some)
            }
            None => Some(None),
        };
        let key = violations.text(
            "idempotency_key",
            required_text(&request.idempotency_key, MAX_KEY_CHARS),
        );
        let reason = violations.text("reason", text(&request.reason, MAX_REASON_CHARS));
        let (Some(target), Some(amount), Some(key), Some(reason), true) =
            (target, amount, key, reason, violations.is_empty())
        else {
            return Err(PaymentError::Invalid(violations));
        };

        let current = match target {
            Target::PaymentId(id) => match self.store.get(&id).await? {
                Some(current) => current,
                None => return Err(PaymentError::NotFound(id)),
            },
            // A charge the caller never saw answered may still be on its way: void it.
            Target::ChargeIdempotencyKey(charge_key) => self.store.void_charge(&charge_key).await?,
        };
        if let Some(amount) = amount
            && !current.is_voided()
            && amount.currency().as_str() != current.currency
        {
            let mut violations = FieldViolations::new();
            violations.add(
                "amount.currency_code",
                format!("must be the charge's currency, {}", current.currency),
            );
            return Err(PaymentError::Invalid(violations));
        }
        let requested = amount.map_or(current.remaining(), |a| a.minor());
        // Nothing to move (voided, or a full refund of a fully refunded charge): answer as is.
        if current.is_voided() || requested == 0 {
            return Ok(Response::new(RefundResponse {
                payment: Some(payment(current)),
            }));
        }
        let refunded = self
            .store
            .refund(&current.id, requested, &key, &reason)
            .await?;
        let record = match refunded {
            Refunded::Done(record) => {
                tracing::info!(payment_id = %record.id, amount = requested, reason, "refunded");
                record
            }
            Refunded::Replayed => {
                let earlier = self.store.refund_payment(&key).await?;
                if earlier.as_deref() != Some(current.id.as_str()) {
                    return Err(PaymentError::KeyReused(key));
                }
                self.store.get(&current.id).await?.unwrap_or(current)
            }
            Refunded::Exceeds => {
                let latest = self.store.get(&current.id).await?.unwrap_or(current);
                return Err(PaymentError::ExceedsCharge {
                    requested,
                    remaining: latest.remaining(),
                });
            }
        };
        Ok(Response::new(RefundResponse {
            payment: Some(payment(record)),
        }))
    }

    async fn get_payment(&self, request: Request<GetPaymentRequest>) -> Answer<GetPaymentResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let Some(id) = violations.text("id", required_text(&request.id, MAX_KEY_CHARS)) else {
            return Err(PaymentError::Invalid(violations));
        };
        match self.store.get(&id).await? {
            Some(record) => Ok(Response::new(GetPaymentResponse {
                payment: Some(payment(record)),
            })),
            None => Err(PaymentError::NotFound(id)),
        }
    }
}

#[tonic::async_trait]
impl PaymentService for Payments {
    async fn charge(&self, request: Request<ChargeRequest>) -> Reply<ChargeResponse> {
        Payments::charge(self, request).await.map_err(Status::from)
    }

    async fn refund(&self, request: Request<RefundRequest>) -> Reply<RefundResponse> {
        Payments::refund(self, request).await.map_err(Status::from)
    }

    async fn get_payment(&self, request: Request<GetPaymentRequest>) -> Reply<GetPaymentResponse> {
        Payments::get_payment(self, request)
            .await
            .map_err(Status::from)
    }
}
