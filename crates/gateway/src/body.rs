//! Request bodies: JSON parsed into the API's types with every failure a problem+json (400 for
//! malformed JSON or a wrong field, naming the field; 413 past the size limit; 415 for another
//! media type), never axum's plain-text rejections. An empty body, or a JSON `null` (which proto3's
//! JSON mapping reads as "the default"), reads as `{}`.
//!
//! Before any route sees a request, [`arrive_in_time`] reads its whole body, outside the
//! gateway's concurrency limit and within the body timeout: a client that sends its body a byte a
//! second holds a connection until the timeout (then 408, and the connection is closed), never a
//! permit that another user's request needs. It also refuses framing that proxies could read two
//! ways (`Content-Length` beside `Transfer-Encoding`, request smuggling's shape) and conflicting
//! `Content-Type`s.

use std::time::Duration;

use axum::body::{Body, HttpBody as _};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use serde::de::DeserializeOwned;
use tonic::Code;

use crate::problem::Problem;

/// How request bodies must arrive.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// The largest body, in bytes; a larger one is 413.
    pub max_bytes: usize,
    /// How long a body may take to arrive once the headers have; a slower one is 408.
    pub timeout: Duration,
}

/// The middleware that reads each request's body in full, within [`Arrival::timeout`], before
/// the rest of the gateway sees the request (see the module documentation).
pub async fn arrive_in_time(
    State(arrival): State<Arrival>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(problem) = ambiguous(&request) {
        return closing(problem);
    }
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let limited = http_body_util::Limited::new(body, arrival.max_bytes);
    let bytes = match tokio::time::timeout(arrival.timeout, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Err(_) => {
            metrics::counter!("orderly_http_body_timeout_total").increment(1);
            return closing(Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                Code::DeadlineExceeded,
                format!(
                    "the request body did not arrive within {}",
                    humantime::format_duration(arrival.timeout)
                ),
            ));
        }
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            return closing(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::ResourceExhausted,
                format!(
                    "the request body is larger than {} bytes",
                    arrival.max_bytes
                ),
            ));
        }
        Ok(Err(error)) => {
            return closing(Problem::new(
                StatusCode::BAD_REQUEST,
                Code::InvalidArgument,
                format!("the request body could not be read: {error}"),
            ));
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// A problem for a request whose head frames or describes the body two ways, if it does (hyper
/// hides a `Content-Length` beside `Transfer-Encoding`; the connection marks that head).
fn ambiguous(request: &Request) -> Option<Problem> {
    let headers = request.headers();
    let marked = request
        .extensions()
        .get::<orderly_kit::conn::framing::AmbiguousFraming>()
        .is_some();
    if marked
        || (headers.contains_key(header::CONTENT_LENGTH)
            && headers.contains_key(header::TRANSFER_ENCODING))
    {
        return Some(Problem::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
            "a request may not carry both Content-Length and Transfer-Encoding",
        ));
    }
    let mut types = headers.get_all(header::CONTENT_TYPE).iter();
    let first = types.next();
    if types.any(|other| Some(other) != first) {
        return Some(Problem::invalid(
            "Content-Type",
            "was sent more than once with different values",
        ));
    }
    None
}

/// `problem` as a response that closes its connection: what is left of the request on it cannot
/// be told apart from the next one.
fn closing(problem: Problem) -> Response {
    let mut response = problem.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A JSON request body of type `T`.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|media| {
                let media = media.trim().to_ascii_lowercase();
                media == "application/json" || media.ends_with("+json")
            });
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    Code::ResourceExhausted
                } else {
                    Code::InvalidArgument
                };
                Problem::new(status, code, rejection.body_text())
            })?;
        let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
            Bytes::from_static(b"{}")
        } else if is_json == Some(true) {
            if bytes.trim_ascii() == b"null" {
                Bytes::from_static(b"{}")
            } else {
                bytes
            }
        } else {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::InvalidArgument,
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        };
        parse(&bytes).map(JsonBody)
    }
}

/// `bytes` as a `T`, or the problem naming what is wrong and where.
// The error is the response itself, made once per refused request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    // serde would read a struct from an array too; every body of this API is an object.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{')
        && serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
    {
        return Err(Problem::invalid("body", "must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            Problem::new(
                StatusCode::BAD_REQUEST,
                Code::InvalidArgument,
                format!("malformed JSON: {inner}"),
            )
        } else {
            let field = if path == "." { "body".into() } else { path };
            Problem::invalid(field, inner.to_string())
        }
    })?;
    deserializer.end().map_err(|error| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
            format!("malformed JSON: {error}"),
        )
    })?;
    Ok(value)
}

/// The fields a PATCH changes (AIP-134): those its `updateMask` names (JSON names, turned into the
/// proto's), or, with no mask or an empty one, those the body sent (`sent`: each field and whether
/// it was there). Nothing to change is a 400 naming the fields that could be.
#[expect(
    clippy::result_large_err,
    reason = "a handler's error is its Problem, returned as it is built"
)]
pub fn update_paths(mask: Option<&str>, sent: &[(&str, bool)]) -> Result<Vec<String>, Problem> {
    let masked: Vec<String> = mask
        .iter()
        .flat_map(|mask| mask.split(','))
        .map(|field| crate::problem::proto_field_path(field.trim()))
        .filter(|field| !field.is_empty())
        .collect();
    if !masked.is_empty() {
        return Ok(masked);
    }
    let paths: Vec<String> = sent
        .iter()
        .filter(|(_, present)| *present)
        .map(|(field, _)| (*field).to_owned())
        .collect();
    if paths.is_empty() {
        let names: Vec<&str> = sent.iter().map(|(field, _)| *field).collect();
        let choices = match names.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        return Err(Problem::invalid(
            "body",
            format!("nothing to change: give {choices} (or an updateMask)"),
        ));
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::json::NewOrder;

    #[test]
    fn a_wrong_type_names_its_field() {
        let problem = parse::<NewOrder>(br#"{"items":[{"sku":"a","quantity":"two"}]}"#)
            .expect_err("quantity is not a number");
        assert_eq!(problem.status, 400);
        assert_eq!(problem.violations[0].field, "items[0].quantity");
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        let problem = parse::<NewOrder>(br#"{"items": ["#).expect_err("cut short");
        assert_eq!(problem.status, 400);
        assert!(
            problem.detail.starts_with("malformed JSON"),
            "{}",
            problem.detail
        );
        let problem = parse::<NewOrder>(br#"{} {}"#).expect_err("trailing");
        assert!(
            problem.detail.starts_with("malformed JSON"),
            "{}",
            problem.detail
        );
    }

    #[test]
    fn a_patch_changes_the_masked_fields_or_the_ones_sent() {
        let sent = [("name", true), ("description", false), ("price", true)];
        assert_eq!(
            super::update_paths(Some("name, stockOnHand"), &sent).ok(),
            Some(vec!["name".to_owned(), "stock_on_hand".to_owned()])
        );
        for empty_mask in [None, Some(""), Some(" , ")] {
            assert_eq!(
                super::update_paths(empty_mask, &sent).ok(),
                Some(vec!["name".to_owned(), "price".to_owned()])
            );
        }
        let nothing = [("name", false), ("description", false), ("price", false)];
        let problem = super::update_paths(None, &nothing).expect_err("nothing to change");
        assert_eq!(problem.violations[0].field, "body");
        assert!(
            problem.violations[0]
                .description
                .contains("name, description or price")
        );
    }
}
