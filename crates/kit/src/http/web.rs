//! HTTP servers (axum) observed like the gRPC ones: a server span per request, continuing the
//! caller's W3C trace context, and RED metrics per route, after the OpenTelemetry HTTP semantic
//! conventions.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `http_server_request_duration_seconds` | histogram | `http_request_method`, `http_route`, `http_response_status_code` |
//! | `http_server_active_requests` | gauge | `http_route` |
//!
//! The route is the template (`/v1/users/{id}`), never the raw path, so labels stay few.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::observe::trace::server_parent;

/// The route template a request matched, as its spans and metrics name it.
#[derive(Debug, Clone)]
pub struct Route(pub Arc<str>);

/// An axum middleware (`middleware::from_fn_with_state(Route(..), observe)`) that gives every
/// request to its route a server span and records the route's RED metrics.
pub async fn observe(State(Route(route)): State<Route>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let span = tracing::info_span!(
        "http.server",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = %route,
        url.path = request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    server_parent(&span, request.headers());
    let started = Instant::now();
    // The route's label shares the route's string rather than copying it on every request.
    let label = || metrics::SharedString::from_shared(route.clone());
    let active = metrics::gauge!("http_server_active_requests", "http_route" => label());
    active.increment(1.0);
    let response = next.run(request).instrument(span.clone()).await;
    active.decrement(1.0);
    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    metrics::histogram!(
        "http_server_request_duration_seconds",
        "http_request_method" => method,
        "http_route" => label(),
        "http_response_status_code" => status.as_str().to_owned(),
    )
    .record(started.elapsed().as_secs_f64());
    response
}
