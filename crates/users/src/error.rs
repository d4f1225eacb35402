//! What can go wrong in a UserService call, and the one place it becomes a gRPC status.

use orderly::error::Reason;
use orderly_kit::status::{FieldViolations, with_info};
use tonic::{Code, Status};

use crate::store::StoreError;

/// The error domain of this service in `google.rpc.ErrorInfo`.
pub const DOMAIN: &str = orderly::error::domain::USERS;

/// Why a UserService call failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The request has invalid fields; nothing was written.
    #[error(transparent)]
    Invalid(#[from] FieldViolations),
    /// No user has this id.
    #[error("no user with id {0}")]
    NotFound(String),
    /// Another user has this email address.
    #[error("email address already in use")]
    EmailTaken,
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] orderly_kit::db::QueryError),
    /// The caller may not do this.
    #[error(transparent)]
    Refused(#[from] orderly_kit::auth::AuthError),
}

impl From<StoreError> for UserError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::EmailTaken => Self::EmailTaken,
            StoreError::Database(error) => Self::Database(error),
        }
    }
}

impl From<UserError> for Status {
    fn from(error: UserError) -> Self {
        match error {
            UserError::Invalid(violations) => violations.into(),
            UserError::NotFound(id) => with_info(
                Code::NotFound,
                format!("no user with id {id}"),
                Reason::UserNotFound,
                DOMAIN,
                [("id", id)],
            ),
            UserError::EmailTaken => with_info(
                Code::AlreadyExists,
                "email address already in use",
                Reason::EmailTaken,
                DOMAIN,
                [],
            ),
            UserError::Database(error) => orderly_kit::status::database(&error),
            UserError::Refused(refusal) => refusal.into(),
        }
    }
}
