//! What can go wrong in a PaymentService call, and the one place it becomes a gRPC status.

use orderly::error::Reason;
use orderly_kit::status::{FieldViolations, with_info};
use tonic::{Code, Status};

/// The error domain of this service in `google.rpc.ErrorInfo`.
pub const DOMAIN: &str = orderly::error::domain::PAYMENTS;

/// Why a PaymentService call failed.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The request has invalid fields; nothing was written.
    #[error(transparent)]
    Invalid(#[from] FieldViolations),
    /// No payment has this id.
    #[error("no payment with id {0}")]
    NotFound(String),
    /// The idempotency key was first used for a different charge.
    #[error("idempotency key {0:?} was used for a different charge")]
    KeyReused(String),
    /// The refund asks for more than is left to refund.
    #[error("refund of {requested} exceeds the {remaining} left to refund")]
    ExceedsCharge {
        /// What was asked, in minor units.
        requested: i64,
        /// What is left, in minor units.
        remaining: i64,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] orderly_kit::db::QueryError),
}

impl From<PaymentError> for Status {
    fn from(error: PaymentError) -> Self {
        let message = error.to_string();
        match error {
            PaymentError::Invalid(violations) => violations.into(),
            PaymentError::NotFound(id) => with_info(
                Code::NotFound,
                message,
                Reason::PaymentNotFound,
                DOMAIN,
                [("id", id)],
            ),
            PaymentError::KeyReused(key) => with_info(
                Code::FailedPrecondition,
                message,
                Reason::IdempotencyKeyReused,
                DOMAIN,
                [("idempotency_key", key)],
            ),
            PaymentError::ExceedsCharge {
                requested,
                remaining,
            } => with_info(
                Code::FailedPrecondition,
                message,
                Reason::RefundExceedsCharge,
                DOMAIN,
                [
                    ("requested", requested.to_string()),
                    ("remaining", remaining.to_string()),
                ],
            ),
            PaymentError::Database(error) => orderly_kit::status::database(&error),
        }
    }
}
