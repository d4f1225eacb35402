//! What can go wrong in a DeliveryService call, and the one place it becomes a gRPC status.

use orderly::error::Reason;
use orderly_kit::status::{FieldViolations, with_info};
use tonic::{Code, Status};

/// The error domain of this service in `google.rpc.ErrorInfo`.
pub const DOMAIN: &str = orderly::error::domain::DELIVERY;

/// Why a DeliveryService call failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The request has invalid fields; nothing was written.
    #[error(transparent)]
    Invalid(#[from] FieldViolations),
    /// No delivery has this id.
    #[error("no delivery with id {0}")]
    NotFound(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] orderly_kit::db::QueryError),
}

impl From<DeliveryError> for Status {
    fn from(error: DeliveryError) -> Self {
        let message = error.to_string();
        match error {
            DeliveryError::Invalid(violations) => violations.into(),
            DeliveryError::NotFound(id) => with_info(
                Code::NotFound,
                message,
                Reason::DeliveryNotFound,
                DOMAIN,
                [("id", id)],
            ),
            DeliveryError::Database(error) => orderly_kit::status::database(&error),
        }
    }
}
