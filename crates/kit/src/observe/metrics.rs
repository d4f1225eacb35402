//! Prometheus metrics: the process-wide recorder, and the RED metrics of every gRPC call a server
//! answers, named after the OpenTelemetry RPC semantic conventions.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `rpc_server_duration_seconds` | histogram | `rpc_system`, `rpc_service`, `rpc_method`, `rpc_grpc_status_code` |
//! | `rpc_server_requests_in_flight` | gauge | `rpc_service` |
//! | `rpc_client_duration_seconds` | histogram | as the server's (recorded by [`crate::client::call`]) |
//!
//! The two duration histograms carry OpenMetrics exemplars of sampled calls
//! ([`crate::observe::exemplars`]). Handles are resolved once per method and code ([`crate::observe::rpc`]). Other modules add
//! theirs: retries and budgets ([`crate::client::downstream`]), breakers
//! ([`crate::client::breaker`]), shed calls ([`crate::server::shed`]).
//!
//! A response's status is read from its headers: servers send errors as trailers-only responses,
//! so a unary call's code is there; a response without one in its headers succeeded (streams that
//! fail after their first message are counted by the code they started with).

use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower::{Layer, Service};

/// Histogram buckets for call durations, in seconds: 0.5 ms to 10 s.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle) and
/// returns the handle that renders the text format.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        // The buckets are non-empty constants, so this cannot fail; fall back to summaries if it did.
        let builder = builder
            .set_buckets(DURATION_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was already installed; /metrics will not show Orderly's metrics"
            );
        }
        handle
    })
}

/// The gRPC status code in a response's headers, or 0 (OK) when the status will come in trailers.
pub fn status_code<B>(response: &http::Response<B>) -> i32 {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A tower layer recording the server RED metrics of every call.
#[derive(Debug, Clone, Default)]
pub struct ServerMetricsLayer;

impl<S> Layer<S> for ServerMetricsLayer {
    type Service = ServerMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerMetrics { inner }
    }
}

/// The service made by [`ServerMetricsLayer`].
#[derive(Debug, Clone)]
pub struct ServerMetrics<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for ServerMetrics<S>
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
        let rpc = crate::observe::trace::rpc_method(&mut request);
        let started = Instant::now();
        rpc.in_flight().increment(1.0);
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            rpc.in_flight().decrement(1.0);
            // A transport-level error never reached a handler: UNAVAILABLE (14).
            let code = result.as_ref().map(status_code).unwrap_or(14);
            let seconds = started.elapsed().as_secs_f64();
            rpc.server_duration(code).record(seconds);
            // Inside the trace layer's span, when there is one.
            crate::observe::exemplars::offer(
                &tracing::Span::current(),
                crate::observe::exemplars::End::Server,
                (
                    rpc.service,
                    rpc.method,
                    crate::observe::rpc::code_label(code),
                ),
                seconds,
            );
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_come_from_trailers_only_headers() {
        let failed = http::Response::builder()
            .header("grpc-status", "5")
            .body(())
            .expect("response");
        assert_eq!(status_code(&failed), 5);
        assert_eq!(status_code(&http::Response::new(())), 0);
    }
}
