//! Traces across calls: a server span for every call a server answers, continuing the caller's
//! W3C trace context from the request headers, and the context of each client call's span written
//! into its request headers (by [`crate::client::call`]). Spans follow the OpenTelemetry RPC semantic conventions
//! (`rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`, server and client kinds);
//! a failed call marks its span as an error.
//!
//! Health checks and reflection are not traced: they are polled constantly and say nothing about
//! the work.

use std::pin::Pin;
use std::task::{Context, Poll};

use opentelemetry::propagation::{Extractor, Injector};
use tonic::Code;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use std::sync::Arc;

use crate::observe::metrics::status_code;
use crate::observe::rpc::RpcMethod;
use crate::observe::services::Emitter;

/// Whether a server span with this status is an error: the codes that mean the server failed.
pub fn is_server_error(code: i32) -> bool {
    [
        Code::Unknown,
        Code::DeadlineExceeded,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
    ]
    .iter()
    .any(|c| *c as i32 == code)
}

/// Makes `span` a child of the trace context (and baggage) in a request's `headers`, if any, and
/// the span, with every span under it, one of `service`'s (see [`crate::observe::services`]).
pub fn server_parent(
    span: &tracing::Span,
    headers: &http::HeaderMap,
    service: Option<&'static str>,
) {
    let mut parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    if let Some(service) = service {
        parent = parent.with_value(Emitter(service));
    }
    // Fails only when the span is disabled, in which case there is nothing to link.
    let _ = span.set_parent(parent);
}

/// A span for one call of `rpc` that `service` answers, its parent taken from the request's
/// headers. With nothing to record it (no tracer), the span is disabled and costs nothing more.
pub fn server_span(
    headers: &http::HeaderMap,
    rpc: &RpcMethod,
    service: Option<&'static str>,
) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = rpc.name,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = rpc.service,
        rpc.method = rpc.method,
        rpc.grpc.status_code = tracing::field::Empty,
        enduser.id = tracing::field::Empty,
    );
    if !span.is_disabled() {
        server_parent(&span, headers, service);
    }
    span
}

/// A span for one call of `rpc` made to a downstream, a child of the current span.
pub fn client_span(rpc: &RpcMethod) -> tracing::Span {
    tracing::info_span!(
        "grpc.client",
        otel.name = rpc.name,
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = rpc.service,
        rpc.method = rpc.method,
        rpc.grpc.status_code = tracing::field::Empty,
    )
}

/// Records a call's final status on its span; `error` marks it failed.
pub fn record_status(span: &tracing::Span, code: i32, error: bool) {
    span.record("rpc.grpc.status_code", code);
    if error {
        span.record("otel.status_code", "ERROR");
    }
}

/// A tower layer giving every call a server its [`server_span`], as one of the named service's
/// spans when it has a name.
#[derive(Debug, Clone, Default)]
pub struct ServerTraceLayer {
    /// The short name of the service the server's spans belong to (`users`).
    pub service: Option<&'static str>,
}

impl<S> Layer<S> for ServerTraceLayer {
    type Service = ServerTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTrace {
            inner,
            service: self.service,
        }
    }
}

/// The service made by [`ServerTraceLayer`].
#[derive(Debug, Clone)]
pub struct ServerTrace<S> {
    inner: S,
    service: Option<&'static str>,
}

impl<S, B, R> Service<http::Request<B>> for ServerTrace<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        if path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.") {
            return Box::pin(self.inner.call(request));
        }
        let rpc = rpc_method(&mut request);
        let span = server_span(request.headers(), &rpc, self.service);
        if span.is_disabled() {
            return Box::pin(self.inner.call(request));
        }
        let future = span.in_scope(|| self.inner.call(request));
        let recorded = span.clone();
        Box::pin(
            async move {
                let result = future.await;
                let code = result
                    .as_ref()
                    .map(status_code)
                    .unwrap_or(Code::Unavailable as i32);
                record_status(&recorded, code, is_server_error(code));
                result
            }
            .instrument(span),
        )
    }
}

/// The method of a request a server answers: from its extensions, where the first layer to ask
/// leaves it, so that the path is parsed once per call.
pub fn rpc_method<B>(request: &mut http::Request<B>) -> Arc<RpcMethod> {
    if let Some(rpc) = request.extensions().get::<Arc<RpcMethod>>() {
        return rpc.clone();
    }
    let rpc = RpcMethod::of_path(request.uri().path());
    request.extensions_mut().insert(rpc.clone());
    rpc
}

/// Writes the trace context (and baggage) of `span` into an outgoing call's `headers`.
pub fn inject_context(span: &tracing::Span, headers: &mut http::HeaderMap) {
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut HeadersMut(headers))
    });
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut http::HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}
