//! Each process's admin HTTP port: `GET /metrics` (Prometheus text format, or OpenMetrics with
//! exemplars when the scraper's `Accept` asks for it: see [`crate::observe::exemplars`]), `GET /healthz`
//! (liveness: the process answers) and `GET /readyz` (readiness: every gRPC server of the process
//! reports SERVING; 503 otherwise, and while draining).

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::server::health;

/// What `/readyz` reports on.
#[derive(Debug, Clone, Default)]
pub struct Process {
    /// The gRPC servers the process runs.
    pub servers: health::Servers,
    /// Whether the process accepts unauthenticated callers (`--insecure-no-auth`): `/readyz`
    /// says so.
    pub insecure: bool,
}

/// The admin routes of `process`.
pub fn router(process: Process) -> Router {
    let handle = crate::observe::metrics::install();
    Router::new()
        .route(
            "/metrics",
            get(move |headers: header::HeaderMap| async move {
                let openmetrics = headers
                    .get_all(header::ACCEPT)
                    .iter()
                    .filter_map(|value| value.to_str().ok())
                    .any(|accept| accept.contains("application/openmetrics-text"));
                if openmetrics {
                    (
                        [(header::CONTENT_TYPE, crate::observe::exemplars::OPENMETRICS)],
                        crate::observe::exemplars::openmetrics(&handle.render()),
                    )
                } else {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        handle.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(move || readyz(process.clone())))
}

async fn readyz(process: Process) -> impl IntoResponse {
    let warning = if process.insecure {
        "warning: authentication is off (--insecure-no-auth): every caller may call anything\n"
    } else {
        ""
    };
    if process.servers.all_serving() {
        (StatusCode::OK, format!("ready\n{warning}"))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready\n{warning}"),
        )
    }
}

/// Serves the admin routes of `process` on `listener` until `shutdown` resolves, under the default
/// connection limits (a flood of connections elsewhere in the process leaves `/readyz` answering).
pub async fn serve(
    listener: TcpListener,
    process: Process,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "admin listening");
    crate::http::serve(
        listener,
        router(process),
        crate::conn::ConnectionLimits::default(),
        std::time::Duration::from_secs(1),
        shutdown,
    )
    .await;
    Ok(())
}
