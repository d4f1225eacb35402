//! From typed errors to `tonic::Status`, with the google.rpc details that tell a caller what to fix:
//! `BadRequest` field violations for invalid input, `ErrorInfo` for a machine-readable reason.
//!
//! Services keep their errors as enums and convert them here, in one place, at the gRPC edge.

use std::collections::HashMap;

use orderly::error::Reason;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The invalid fields of one request, each with what is wrong with it. A request is checked whole,
/// so the caller learns every problem at once.
#[derive(Debug, Default, Clone)]
pub struct FieldViolations {
    violations: Vec<FieldViolation>,
}

impl FieldViolations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` (a path such as `items[2].quantity`) is invalid, and why.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations
            .push(FieldViolation::new(field, description));
    }

    /// Keeps the value of a check, or records its error against `field`.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, error.to_string());
                None
            }
        }
    }

    /// Keeps a checked text field (the API crate's `validate::text` rule), owned, or records its
    /// problem against `field`.
    pub fn text<E: std::fmt::Display>(
        &mut self,
        field: &str,
        checked: Result<&str, E>,
    ) -> Option<String> {
        self.check(field, checked.map(str::to_owned))
    }

    /// Whether every field was valid.
    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    /// The violations, in the order they were found.
    pub fn violations(&self) -> &[FieldViolation] {
        &self.violations
    }

    /// `Ok(())` when there are no violations, otherwise `Err(self)`.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl std::fmt::Display for FieldViolations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields: Vec<&str> = self.violations.iter().map(|v| v.field.as_str()).collect();
        write!(f, "invalid request: {}", fields.join(", "))
    }
}

impl std::error::Error for FieldViolations {}

impl From<FieldViolations> for Status {
    /// INVALID_ARGUMENT with a `google.rpc.BadRequest` that lists every violation.
    fn from(violations: FieldViolations) -> Self {
        let message = violations.to_string();
        Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request(violations.violations),
        )
    }
}

/// A status with a `google.rpc.ErrorInfo`: `reason` one the API defines (callers match on the same
/// type), `domain` the service that produced it (`orderly::error::domain`), `metadata` the values a
/// program may need (e.g. the id).
pub fn with_info(
    code: Code,
    message: impl Into<String>,
    reason: Reason,
    domain: &str,
    metadata: impl IntoIterator<Item = (&'static str, String)>,
) -> Status {
    let metadata: HashMap<String, String> = metadata
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason.as_str(), domain, metadata),
    )
}

/// How a list of items travels in an error's message and metadata (written here, read by
/// `orderly::error::StatusExt::skus`).
pub use orderly::error::{LISTED, listed};

/// The name of a gRPC code as in google.rpc.Code, e.g. `INVALID_ARGUMENT`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The message a response must carry (`what`: `user`, `payment`), or INTERNAL when the server left
/// it out: the one way every caller treats a response that breaks its contract.
pub fn present<T>(message: Option<T>, what: &str) -> Result<T, Status> {
    message.ok_or_else(|| Status::internal(format!("the service answered without a {what}")))
}

/// The status of a database failure. A database that cannot be reached or is busy is UNAVAILABLE
/// (worth a retry); a value it cannot take is INVALID_ARGUMENT (the request's fault, logged as a
/// gap in validation); anything else is INTERNAL. Details are logged, never sent: they can leak
/// schema and data.
#[cfg(feature = "db")]
pub fn database(error: &crate::db::QueryError) -> Status {
    if error.is_unavailable() {
        tracing::warn!(%error, "database unavailable");
        Status::unavailable("database unavailable")
    } else if error.is_bad_value() {
        tracing::error!(%error, "the database refused a value that validation let through");
        Status::invalid_argument("the request holds a value that cannot be stored")
    } else {
        tracing::error!(%error, "database error");
        Status::internal("internal error")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_become_invalid_argument_with_bad_request() {
        let mut violations = FieldViolations::new();
        violations.add("name", "must not be empty");
        violations.add("email", "is not an email address");
        let status = Status::from(violations);
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad_request = status
            .get_details_bad_request()
            .expect("bad request details");
        let fields: Vec<_> = bad_request
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["name", "email"]);
        assert_eq!(status.message(), "invalid request: name, email");
    }

    #[test]
    fn error_info_carries_reason_and_metadata() {
        let status = with_info(
            Code::NotFound,
            "no such order",
            Reason::OrderNotFound,
            orderly::error::domain::ORDERS,
            [("id", "7".into())],
        );
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, Reason::OrderNotFound.as_str());
        assert_eq!(info.metadata.get("id").map(String::as_str), Some("7"));
    }
}
