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

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Gauge, Histogram};
use tracing::Instrument;

use crate::observe::trace::server_parent;

/// Distinct (method, status) pairs whose duration histogram a route keeps at hand; rarer ones are
/// looked up by their labels on each request.
const KEPT_HISTOGRAMS: usize = 32;

/// The route template a request matched (`/v1/users/{id}`), as its spans and metrics name it, with
/// the route's metric handles resolved once rather than from label strings on every request.
#[derive(Debug, Clone)]
pub struct Route(Arc<RouteState>);

#[derive(Debug)]
struct RouteState {
    service: &'static str,
    template: Arc<str>,
    active: Gauge,
    durations: RwLock<HashMap<(Method, StatusCode), Histogram>>,
}

impl Route {
    /// The route of `template`, served by `service` (its short name, which its spans report as
    /// when several services share a process: see [`crate::observe::services`]).
    pub fn new(service: &'static str, template: &str) -> Self {
        let template: Arc<str> = Arc::from(template);
        let active = metrics::gauge!(
            "http_server_active_requests",
            "http_route" => metrics::SharedString::from_shared(template.clone())
        );
        Self(Arc::new(RouteState {
            service,
            template,
            active,
            durations: RwLock::default(),
        }))
    }

    /// `http_server_request_duration_seconds` of this route's `method` requests answered `status`.
    fn duration(&self, method: &Method, status: StatusCode) -> Histogram {
        let key = (method.clone(), status);
        if let Some(histogram) = self
            .0
            .durations
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&key)
        {
            return histogram.clone();
        }
        let histogram = metrics::histogram!(
            "http_server_request_duration_seconds",
            "http_request_method" => method.as_str().to_owned(),
            "http_route" => metrics::SharedString::from_shared(self.0.template.clone()),
            "http_response_status_code" => status.as_str().to_owned(),
        );
        let mut durations = self
            .0
            .durations
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if durations.len() < KEPT_HISTOGRAMS {
            durations.insert(key, histogram.clone());
        }
        histogram
    }
}

/// An axum middleware (`middleware::from_fn_with_state(Route::new(..), observe)`) that gives every
/// request to its route a server span and records the route's RED metrics.
pub async fn observe(State(route): State<Route>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let template = &route.0.template;
    let span = tracing::info_span!(
        "http.server",
        otel.name = format!("{method} {template}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = %template,
        url.path = request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    if !span.is_disabled() {
        server_parent(&span, request.headers(), Some(route.0.service));
    }
    let started = Instant::now();
    route.0.active.increment(1.0);
    let response = next.run(request).instrument(span.clone()).await;
    route.0.active.decrement(1.0);
    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    route
        .duration(&method, status)
        .record(started.elapsed().as_secs_f64());
    response
}
