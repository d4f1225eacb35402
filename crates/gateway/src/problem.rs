//! Errors as RFC 9457 `application/problem+json`: a gRPC status becomes the HTTP status of the
//! standard mapping (google.rpc.Code's own table; FAILED_PRECONDITION and ABORTED as 409) with its
//! field violations, error reason and retry delay carried over; the gateway's own refusals
//! (malformed JSON, oversized bodies, unknown routes) take the same shape.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderly::error::Reason;
use orderly_kit::status::code_name;
use serde::{Deserialize, Serialize};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use utoipa::ToSchema;

/// The media type of problem bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The reason of the problems that say no route serves a request.
pub const NO_ROUTE: &str = Reason::NoRoute.as_str();

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Violation {
    /// The field, as a JSON path in the request body (`shippingAddress.postalCode`), or a header
    /// or query parameter name.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

/// An RFC 9457 problem: why a request failed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI naming the kind of problem; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status's reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, for a human.
    pub detail: String,
    /// The gRPC status code name the services answered with, e.g. `INVALID_ARGUMENT`.
    pub code: String,
    /// A machine-readable reason (google.rpc.ErrorInfo), e.g. `USER_NOT_FOUND`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The invalid fields of the request, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
    /// How many seconds to wait before retrying (also sent as `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

/// The HTTP status for a gRPC code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // 499 Client Closed Request, as nginx and google.rpc.Code name it.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A proto field path (`shipping_address.postal_code`, `items[0].unit_price`) in the JSON names
/// of the REST API (`shippingAddress.postalCode`, `items[0].unitPrice`).
pub fn json_field_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// A JSON field path (`postalCode`) as the proto field path the services name (`postal_code`).
pub fn proto_field_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl Problem {
    /// A problem of the gateway's own making: HTTP `status`, gRPC `code`, and what went wrong.
    pub fn new(status: StatusCode, code: Code, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code_name(code).into(),
            reason: None,
            violations: Vec::new(),
            retry_after_seconds: None,
        }
    }

    /// An INVALID_ARGUMENT problem (400) naming one invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        let description = description.into();
        let mut problem = Self::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
            format!("invalid request: {description}"),
        );
        problem.violations.push(Violation {
            field: field.into(),
            description,
        });
        problem
    }

    /// 404 for a path no route serves (reason `NO_ROUTE`).
    pub fn no_route(path: &str) -> Self {
        let mut problem = Self::new(
            StatusCode::NOT_FOUND,
            Code::NotFound,
            format!("no route serves {path}; see /openapi.json"),
        );
        problem.reason = Some(NO_ROUTE.into());
        problem
    }

    /// 429 for a request refused because the gateway is at its concurrency limit (reason
    /// `OVERLOADED`), with `Retry-After`.
    pub fn overloaded() -> Self {
        let mut problem = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            Code::ResourceExhausted,
            "the gateway is at its concurrency limit; retry shortly",
        );
        problem.reason = Some(Reason::Overloaded.as_str().into());
        problem.retry_after_seconds = Some(1);
        problem
    }

    /// 405 for a method a route does not serve (reason `NO_ROUTE`).
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        let mut problem = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            Code::Unimplemented,
            format!("{method} is not allowed on {path}; see /openapi.json"),
        );
        problem.reason = Some(NO_ROUTE.into());
        problem
    }
}

impl From<Status> for Problem {
    fn from(status: Status) -> Self {
        let code = status.code();
        let mut problem = Self::new(http_status(code), code, status.message());
        if let Some(bad_request) = status.get_details_bad_request() {
            problem.violations = bad_request
                .field_violations
                .into_iter()
                .map(|v| Violation {
                    field: json_field_path(&v.field),
                    description: v.description,
                })
                .collect();
        }
        if let Some(info) = status.get_details_error_info() {
            // The request is well formed but contradicts what its key did before.
            if Reason::parse(&info.reason) == Some(Reason::IdempotencyKeyReused) {
                problem.status = StatusCode::UNPROCESSABLE_ENTITY.as_u16();
                problem.title = "Unprocessable Content".into();
            }
            problem.kind = format!(
                "urn:problem-type:{}:{}",
                info.domain,
                info.reason.to_ascii_lowercase().replace('_', "-")
            );
            problem.reason = Some(info.reason);
        }
        if let Some(delay) = status
            .get_details_retry_info()
            .and_then(|info| info.retry_delay)
        {
            // Whole seconds, rounded up, as Retry-After needs.
            let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
            problem.retry_after_seconds = Some(seconds.max(1));
        } else if matches!(code, Code::Unavailable | Code::ResourceExhausted) {
            problem.retry_after_seconds = Some(1);
        }
        if http_status(code).is_server_error() {
            // The cause stays in the log, with its source chain (a transport error's is the
            // useful part), since the caller is told less.
            let source = std::error::Error::source(&status).map(|source| format!("{source:?}"));
            tracing::warn!(
                code = code_name(code),
                detail = status.message(),
                source,
                "request failed"
            );
            // A failure on this side of the wire (a refused or reset connection) speaks of the
            // gateway's insides ("tcp connect error"): the caller learns only what to do.
            if std::error::Error::source(&status).is_some() {
                problem.detail = "a service is unavailable; retry shortly".into();
            }
        }
        problem
    }
}

impl From<PathRejection> for Problem {
    /// A path that cannot be read as the route's parameters: 400, naming `path`.
    fn from(rejection: PathRejection) -> Self {
        Self::invalid("path", rejection.body_text())
    }
}

impl From<QueryRejection> for Problem {
    /// A query string that cannot be read as the route's parameters: 400, naming `query`.
    fn from(rejection: QueryRejection) -> Self {
        Self::invalid("query", rejection.body_text())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after_seconds;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750: what a client without a (valid) bearer token should send.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grpc_code_has_its_http_status() {
        let table = [
            (Code::Ok, 200),
            (Code::Cancelled, 499),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 409),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
            (Code::Unauthenticated, 401),
        ];
        for (code, http) in table {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn field_paths_become_json_names() {
        assert_eq!(
            json_field_path("shipping_address.postal_code"),
            "shippingAddress.postalCode"
        );
        assert_eq!(json_field_path("items[0].unit_price"), "items[0].unitPrice");
        assert_eq!(json_field_path("email"), "email");
        assert_eq!(proto_field_path("postalCode"), "postal_code");
    }

    #[test]
    fn violations_and_reasons_are_carried_over() {
        let mut violations = orderly_kit::status::FieldViolations::new();
        violations.add("shipping_address.city", "must not be empty");
        let status: Status = violations.into();
        let problem = Problem::from(status);
        assert_eq!(problem.status, 400);
        assert_eq!(problem.code, "INVALID_ARGUMENT");
        assert_eq!(
            problem.violations,
            vec![Violation {
                field: "shippingAddress.city".into(),
                description: "must not be empty".into()
            }]
        );
    }
}
