//! Who is calling the gateway, before any route runs: a bearer token sent is verified here (a bad
//! one is a 401 at once, without a call to a service; the services still check the token
//! themselves, and decide what it allows), a route other than sign-up called without one is a 401
//! too (`crate::anonymous_allowed`), and each caller — the token's subject, or the
//! peer address without a token — is held to its rate limit: over it, 429 with `Retry-After` and
//! the `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers.

use orderly::error::Reason;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use orderly_kit::auth::verify::Verifier;
use orderly_kit::rate::{CallerKey, CallerLimits};
use tonic::Status;

use crate::problem::Problem;

/// What the gateway checks of its callers.
#[derive(Debug, Clone, Default)]
pub struct Callers {
    /// Verifies bearer tokens; `None` passes them on unchecked.
    pub verifier: Option<Arc<Verifier>>,
    /// Per-caller rate limits; `None` for none.
    pub limits: Option<CallerLimits>,
}

/// The middleware: checks the caller, then runs the route.
pub async fn check(State(callers): State<Arc<Callers>>, request: Request, next: Next) -> Response {
    let token = match orderly_kit::auth::authorization(request.headers()) {
        Ok(token) => token,
        Err(refusal) => return Problem::from(Status::from(refusal)).into_response(),
    };
    // A route that needs a token refuses a call without one before reading its input, as the
    // document says: a malformed body of a tokenless call is a 401, not a 400.
    let required = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|path| {
            path.as_str().starts_with("/v1/")
                && !crate::anonymous_allowed(request.method(), path.as_str())
        });
    let subject = match (&callers.verifier, token) {
        (Some(verifier), token) if token.is_some() || required => {
            match verifier.authorization(token) {
                Ok(caller) => Some(caller.subject),
                Err(refusal) => return Problem::from(Status::from(refusal)).into_response(),
            }
        }
        _ => None,
    };
    if let Some(limits) = &callers.limits {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let key = subject
            .map(CallerKey::Subject)
            .or(peer.map(CallerKey::Peer));
        if let Some(wait) = key.and_then(|key| limits.check(&key).err()) {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or_else(String::new, |path| path.as_str().to_owned());
            metrics::counter!("orderly_http_rate_limited_total", "http_route" => route)
                .increment(1);
            return limited(limits.burst(), wait);
        }
    }
    next.run(request).await
}

/// 429 for a caller over its limit, for `wait` more.
fn limited(burst: u32, wait: std::time::Duration) -> Response {
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut problem = Problem::from(Status::resource_exhausted(
        "too many requests from this caller; retry after Retry-After",
    ));
    problem.reason = Some(Reason::RateLimited.as_str().into());
    problem.retry_after_seconds = Some(seconds);
    let mut response = problem.into_response();
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(burst));
    headers.insert("ratelimit-remaining", HeaderValue::from(0u32));
    headers.insert("ratelimit-reset", HeaderValue::from(seconds));
    response
}
