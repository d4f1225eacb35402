//! The platform every Orderly service is built on. It knows nothing of users or orders: a service
//! hands it its generated gRPC servers and its database URL, and gets back the same production
//! behaviour as every other service.
//!
//! | module | what it holds |
//! |---|---|
//! | [`admin`] | the admin HTTP port: `/metrics`, `/healthz`, `/readyz` |
//! | [`metrics`] | the Prometheus recorder and server RED metrics |
//! | [`shed`] | a concurrency limit that refuses excess calls at once |
//! | [`balance`] | replicas from a list or DNS, kept in rotation by their health |
//! | [`breaker`] | a circuit breaker per downstream that classifies gRPC statuses |
//! | [`downstream`] | one downstream's calls: deadline, retries within a budget, breaker, metrics |
//! | [`backoff`] | exponential backoff with full jitter |
//! | [`client`] | shared channels to downstream services, with connect timeouts and keepalive |
//! | [`deadline`] | deadlines from `grpc-timeout` that bound downstream calls |
//! | [`config`] | server flags with `ORDERLY_*` environment fallbacks |
//! | [`conn`] | connection caps, header timeouts and an accept loop that survives EMFILE |
//! | [`server`] | the gRPC server: health, reflection, limits, gzip, graceful shutdown |
//! | [`http`] | axum routers served over HTTP/1.1 with those limits and a graceful stop |
//! | [`health`] | `grpc.health.v1` whose watch streams end when the server drains |
//! | [`shutdown`] | SIGTERM/SIGINT as a future, and the drain signal shared by a process |
//! | [`faults`] | opt-in fault injection (latency, failures) for tests and demos |
//! | [`db`] | SQLite or PostgreSQL pools from one URL |
//! | [`money`] | currency codes and checked integer minor-unit arithmetic |
//! | [`time`] | microsecond timestamps and their protobuf form |
//! | [`status`] | typed errors to `tonic::Status` with google.rpc details |
//! | [`telemetry`] | JSON logs with trace ids, and OTLP trace export configured by `OTEL_*` |
//! | [`trace`] | server and client spans, and W3C trace context across calls |
//! | [`web`] | spans and RED metrics for HTTP (axum) routes |
//! | [`refuse`] | answering a refused call while draining its body (h2's DATA-frame budget) |
//! | [`probe`] | one HTTP request over plain TCP, for health checks and tests |
//! | [`pagination`] | AIP-158 page sizes and tamper-checked page tokens |
//! | `testing` | (feature `testing`) fresh SQLite and PostgreSQL databases for integration tests |

pub mod admin;
pub mod backoff;
pub mod balance;
pub mod breaker;
pub mod client;
pub mod config;
pub mod conn;
pub mod db;
pub mod deadline;
pub mod downstream;
pub mod faults;
pub mod health;
pub mod http;
pub mod metrics;
pub mod money;
pub mod pagination;
pub mod probe;
pub mod refuse;
pub mod server;
pub mod shed;
pub mod shutdown;
pub mod status;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod trace;
pub mod web;

pub use tonic;

/// Applies the kit's per-service settings to a generated tonic server (`FooServiceServer::new(..)`):
/// gzip accepted and offered, the message size limits of a [`config::ServerConfig`], its opt-in
/// fault injection ([`faults::FaultService`], inside the limit, like handler time), and load
/// shedding beyond its concurrency limit ([`shed::Shed`]).
///
/// Generated servers share no trait for these settings, hence a macro.
#[macro_export]
macro_rules! tune_service {
    ($server:expr, $config:expr) => {
        $crate::shed::Shed::new(
            $crate::faults::FaultService::new(
                $server
                    .accept_compressed($crate::tonic::codec::CompressionEncoding::Gzip)
                    .send_compressed($crate::tonic::codec::CompressionEncoding::Gzip)
                    .max_decoding_message_size($config.max_message_bytes)
                    .max_encoding_message_size($config.max_message_bytes),
                $config.faults.clone(),
            ),
            $config.max_concurrent_calls,
        )
    };
}
