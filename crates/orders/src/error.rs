//! What can go wrong in an OrderService call, and the one place it becomes a gRPC status.

use orderly::error::Reason;
use orderly_kit::status::{FieldViolations, listed, with_info};
use tonic::{Code, Status};

use crate::flow::FlowError;
use crate::model::PricingError;

/// The error domain of this service in `google.rpc.ErrorInfo`.
pub const DOMAIN: &str = orderly::error::domain::ORDERS;

/// Why an OrderService call failed.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The caller may not do this.
    #[error(transparent)]
    Refused(#[from] orderly_kit::auth::AuthError),
    /// The request has invalid fields; nothing was written.
    #[error(transparent)]
    Invalid(#[from] FieldViolations),
    /// No order has this id.
    #[error("no order with id {0}")]
    NotFound(String),
    /// The idempotency key made an order from a different request.
    #[error("idempotency key {0:?} was used for a different order; use a new key for a new order")]
    KeyReused(String),
    /// The user placing the order does not exist; nothing was charged.
    #[error("no user with id {0}")]
    UnknownUser(String),
    /// The order is not in a state that allows the call.
    #[error("order {id} is {status}, not CONFIRMED")]
    NotConfirmed {
        /// The order.
        id: String,
        /// Its status.
        status: &'static str,
    },
    /// The users service could not answer.
    #[error("users service: {}", .0.message())]
    Users(Status),
    /// The catalog could not answer.
    #[error("catalog service: {}", .0.message())]
    Catalog(Status),
    /// The order cannot be priced as asked; nothing was reserved or charged.
    #[error(transparent)]
    Pricing(#[from] crate::model::PricingError),
    /// Not enough stock of these products; nothing was reserved or charged.
    #[error("not enough stock of {}", listed(.0))]
    OutOfStock(Vec<String>),
    /// The catalog has no product with these SKUs; nothing was reserved or charged.
    #[error("no product with SKU {}", listed(.0))]
    UnknownProducts(Vec<String>),
    /// A downstream's circuit breaker is open: the order was refused before anything was stored.
    #[error("{0} is failing and its circuit breaker is open; nothing was ordered, retry later")]
    FailingFast(&'static str),
    /// The call's deadline passed while the order was still being worked on.
    #[error("deadline exceeded; order {0} is still being processed: watch it or get it later")]
    StillProcessing(String),
    /// The saga failed.
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] orderly_kit::db::QueryError),
    /// A bug on this side (a task that panicked): logged with its detail, answered as INTERNAL
    /// without it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<OrderError> for Status {
    fn from(error: OrderError) -> Self {
        let message = error.to_string();
        match error {
            OrderError::Refused(refusal) => refusal.into(),
            OrderError::Invalid(violations) => violations.into(),
            OrderError::NotFound(id) => with_info(
                Code::NotFound,
                message,
                Reason::OrderNotFound,
                DOMAIN,
                [("id", id)],
            ),
            OrderError::KeyReused(key) => with_info(
                Code::InvalidArgument,
                message,
                Reason::IdempotencyKeyReused,
                DOMAIN,
                [("idempotency_key", key)],
            ),
            OrderError::UnknownUser(id) => with_info(
                Code::FailedPrecondition,
                message,
                Reason::UserNotFound,
                DOMAIN,
                [("user_id", id)],
            ),
            OrderError::NotConfirmed { id, status } => with_info(
                Code::FailedPrecondition,
                message,
                Reason::OrderNotConfirmed,
                DOMAIN,
                [("id", id), ("status", status.to_owned())],
            ),
            // What failed inside is logged, not told: callers need not know the call graph.
            OrderError::Users(status) | OrderError::Catalog(status)
                if status.code() == Code::DeadlineExceeded =>
            {
                tracing::debug!(%message, "deadline exceeded");
                Status::deadline_exceeded("deadline exceeded")
            }
            OrderError::Users(_) | OrderError::Catalog(_) => {
                tracing::warn!(%message, "order refused");
                Status::unavailable("a service the order needs is unavailable; retry later")
            }
            OrderError::Pricing(PricingError::UnknownProducts(skus))
            | OrderError::UnknownProducts(skus) => with_info(
                Code::FailedPrecondition,
                message,
                Reason::ProductNotFound,
                DOMAIN,
                [("skus", listed(&skus))],
            ),
            OrderError::Pricing(PricingError::PriceChanged { expected, actual }) => with_info(
                Code::FailedPrecondition,
                message,
                Reason::PriceChanged,
                DOMAIN,
                [("expected", expected), ("actual", actual)],
            ),
            OrderError::Pricing(PricingError::MixedCurrencies(..) | PricingError::TooLarge) => {
                Status::failed_precondition(message)
            }
            OrderError::OutOfStock(skus) => with_info(
                Code::FailedPrecondition,
                message,
                Reason::OutOfStock,
                DOMAIN,
                [("skus", listed(&skus))],
            ),
            OrderError::FailingFast(downstream) => with_info(
                Code::Unavailable,
                message,
                Reason::DownstreamCircuitOpen,
                DOMAIN,
                [("downstream", downstream.to_owned())],
            ),
            OrderError::StillProcessing(id) => with_info(
                Code::DeadlineExceeded,
                message,
                Reason::OrderStillProcessing,
                DOMAIN,
                [("id", id)],
            ),
            OrderError::Flow(FlowError::Database(error)) | OrderError::Database(error) => {
                orderly_kit::status::database(&error)
            }
            OrderError::Flow(FlowError::Downstream(status)) => {
                tracing::warn!(message = status.message(), "order refused");
                Status::unavailable("a service the order needs failed; retry later")
            }
            OrderError::Flow(error @ FlowError::Missing(_)) => {
                tracing::error!(%error, "order saga error");
                Status::internal("internal error")
            }
            OrderError::Internal(detail) => {
                tracing::error!(detail, "internal error");
                Status::internal("internal error")
            }
        }
    }
}
