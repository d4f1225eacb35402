//! What can go wrong in a CatalogService call, and the one place it becomes a gRPC status.

use orderly::error::Reason;
use orderly_kit::status::{FieldViolations, listed, with_info};
use tonic::{Code, Status};

/// The error domain of this service in `google.rpc.ErrorInfo`.
pub const DOMAIN: &str = orderly::error::domain::CATALOG;

/// Why a CatalogService call failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The request has invalid fields; nothing was written.
    #[error(transparent)]
    Invalid(#[from] FieldViolations),
    /// No product has these SKUs.
    #[error("no product with SKU {}", listed(.0))]
    ProductNotFound(Vec<String>),
    /// Another product has the SKU.
    #[error("a product with SKU {0} exists")]
    SkuTaken(String),
    /// These products have fewer units on hand than asked; nothing was reserved or taken.
    #[error("not enough stock of {}", listed(.0))]
    OutOfStock(Vec<String>),
    /// The order has no reservation.
    #[error("no reservation for order {0}")]
    ReservationNotFound(String),
    /// The order's reservation was released (or expired) before it was committed.
    #[error("the reservation of order {0} was released")]
    ReservationReleased(String),
    /// The key was used before for a different request.
    #[error("{0:?} was used for a different request")]
    KeyReused(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] orderly_kit::db::QueryError),
}

impl From<CatalogError> for Status {
    fn from(error: CatalogError) -> Self {
        let message = error.to_string();
        match error {
            CatalogError::Invalid(violations) => violations.into(),
            CatalogError::ProductNotFound(skus) => with_info(
                Code::NotFound,
                message,
                Reason::ProductNotFound,
                DOMAIN,
                [("skus", listed(&skus))],
            ),
            CatalogError::SkuTaken(sku) => with_info(
                Code::AlreadyExists,
                message,
                Reason::SkuTaken,
                DOMAIN,
                [("sku", sku)],
            ),
            CatalogError::OutOfStock(skus) => with_info(
                Code::FailedPrecondition,
                message,
                Reason::OutOfStock,
                DOMAIN,
                [("skus", listed(&skus))],
            ),
            CatalogError::ReservationNotFound(order_id) => with_info(
                Code::NotFound,
                message,
                Reason::ReservationNotFound,
                DOMAIN,
                [("order_id", order_id)],
            ),
            CatalogError::ReservationReleased(order_id) => with_info(
                Code::FailedPrecondition,
                message,
                Reason::ReservationReleased,
                DOMAIN,
                [("order_id", order_id)],
            ),
            CatalogError::KeyReused(key) => with_info(
                Code::FailedPrecondition,
                message,
                Reason::IdempotencyKeyReused,
                DOMAIN,
                [("idempotency_key", key)],
            ),
            CatalogError::Database(error) => orderly_kit::status::database(&error),
        }
    }
}
