//! The platform every Orderly service is built on. It knows nothing of users or orders: a service
//! hands it its generated gRPC servers and its database URL, and gets back the same production
//! behaviour as every other service.
//!
//! | module | what it holds |
//! |---|---|
//! | [`backoff`] | exponential backoff with full jitter |
//! | [`client`] | shared channels to downstream services, with connect timeouts and keepalive |
//! | [`deadline`] | deadlines from `grpc-timeout` that bound downstream calls |
//! | [`config`] | server flags with `ORDERLY_*` environment fallbacks |
//! | [`server`] | the gRPC server: health, reflection, limits, gzip, graceful shutdown |
//! | [`health`] | `grpc.health.v1` whose watch streams end when the server drains |
//! | [`shutdown`] | SIGTERM/SIGINT as a future, and the drain signal shared by a process |
//! | [`faults`] | opt-in fault injection (latency, failures) for tests and demos |
//! | [`db`] | SQLite or PostgreSQL pools from one URL |
//! | [`money`] | currency codes and checked integer minor-unit arithmetic |
//! | [`time`] | microsecond timestamps and their protobuf form |
//! | [`status`] | typed errors to `tonic::Status` with google.rpc details |
//! | [`telemetry`] | logs: one JSON object a line on stdout, or a readable format for development |
//! | [`pagination`] | AIP-158 page sizes and tamper-checked page tokens |
//! | `testing` | (feature `testing`) fresh SQLite and PostgreSQL databases for integration tests |

pub mod backoff;
pub mod client;
pub mod config;
pub mod db;
pub mod deadline;
pub mod faults;
pub mod health;
pub mod money;
pub mod pagination;
pub mod server;
pub mod shutdown;
pub mod status;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;

pub use tonic;

/// Applies the kit's per-service settings to a generated tonic server (`FooServiceServer::new(..)`):
/// gzip accepted and offered, and the message size limits of a [`config::ServerConfig`].
///
/// Generated servers share no trait for these settings, hence a macro.
#[macro_export]
macro_rules! tune_service {
    ($server:expr, $config:expr) => {
        $server
            .accept_compressed($crate::tonic::codec::CompressionEncoding::Gzip)
            .send_compressed($crate::tonic::codec::CompressionEncoding::Gzip)
            .max_decoding_message_size($config.max_message_bytes)
            .max_encoding_message_size($config.max_message_bytes)
    };
}
