//! The platform every Orderly service is built on. It knows nothing of users or orders: a service
//! hands it its generated gRPC servers and its database URL, and gets back the same production
//! behaviour as every other service.
//!
//! Its folders are its layers, each behind a cargo feature so that a crate takes only what it uses
//! (the gateway, a client of the services, compiles no database driver and no gRPC server):
//!
//! | module | feature | what it holds |
//! |---|---|---|
//! | [`declare`] | `server` | what a service declares so that one builder starts it, and what it starts with |
//! | [`server`] | `server` | the gRPC server: bootstrap, health, load shedding, faults, config, the admin port |
//! | [`client`] | `client` | channels, balancing, and each downstream's deadline, retries, breaker, backoff |
//! | [`http`] | `http` | axum routers over HTTP/1.1 with the connection hygiene, route spans, a one-request HTTP client (`orderly check`, tests) |
//! | [`db`] | `db` | SQLite or PostgreSQL pools from one URL, migrations |
//! | [`auth`] | `auth` | bearer JWTs verified against a JWKS, per-method rules of who may call what |
//! | [`args`] | `args` | command-line settings whose declared defaults are their `Default` |
//! | [`observe`] | always | JSON logs, OTLP traces, W3C trace context, Prometheus metrics |
//! | [`metadata`] | always | names of the request metadata the kit reads (fault injection) |
//! | [`conn`] | always | connection caps, header timeouts and an accept loop that survives EMFILE |
//! | [`secret`] | always | secrets in configuration that never print |
//! | [`shutdown`] | always | SIGTERM/SIGINT as a future, and the drain signal shared by a process |
//! | [`status`] | always | typed errors to `tonic::Status` with google.rpc details |
//! | [`tls`] | `tls` | mutual TLS between services, SPIFFE identities, certificates re-read on change |
//! | [`rate`] | `rate` | per-caller rate limits (GCRA) keyed by the end caller, and their gRPC layer |
//! | [`refuse`] | `server` | answering a gRPC call without its service, the body drained (every refusing layer's) |
//! | [`pagination`] | always | AIP-158 page sizes and tamper-checked page tokens |
//! | [`time`] | always | microsecond timestamps and their protobuf form |
//!
//! Layers depend downwards only: `server` uses `client`, `db`, `http`, `auth` and `rate`; the
//! refusing layers (`auth`'s, `rate`'s, `server`'s shedding and faults) answer through `refuse`;
//! `client` and `http` use `observe`; `declare` uses `server`; nothing else uses `server`.

// Every dependency is used (test builds excepted: they see the dev-dependencies too).
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

#[cfg(feature = "args")]
pub mod args;
#[cfg(feature = "auth")]
pub mod auth;
#[cfg(feature = "client")]
pub mod client;
pub mod conn;
#[cfg(feature = "db")]
pub mod db;
#[cfg(feature = "server")]
pub mod declare;
#[cfg(feature = "http")]
pub mod http;
pub mod metadata;
pub mod observe;
pub mod pagination;
#[cfg(feature = "rate")]
pub mod rate;
#[cfg(feature = "server")]
pub mod refuse;
pub mod secret;
#[cfg(feature = "server")]
pub mod server;
pub mod shutdown;
pub mod status;
pub mod time;
#[cfg(feature = "tls")]
pub mod tls;

pub use tonic;
/// For [`tune_service!`], which stacks its layers with tower's `ServiceBuilder` in the crates that
/// call it.
#[cfg(feature = "server")]
#[doc(hidden)]
pub use tower;

/// Applies the kit's per-service settings to a generated tonic server (`FooServiceServer::new(..)`):
/// gzip accepted and offered and the message size limits of a [`server::config::ServerConfig`],
/// then its refusing layers, outermost first: the service's [`auth::rules::Rules`] checked against
/// callers' tokens when the config names a JWKS ([`auth::rules::AuthenticateLayer`]), per-caller
/// rate limits ([`rate::layer::RateLimitLayer`]), load shedding beyond its concurrency limit
/// ([`server::shed::ShedLayer`]), and its opt-in fault injection ([`server::faults::FaultLayer`],
/// inside the limit, like handler time). Evaluates to `Result<_, server::StartError>`. Two more
/// arguments, `cheap = &[..], exempt = &[..]`, name batch reads to shed under the cheap limit
/// ([`server::shed::Shed::cheap`]) and methods never to shed nor rate limit, because they settle
/// or undo work already done ([`server::shed::Shed::exempt`], [`rate::layer::RateLimited::exempt`]).
///
/// Generated servers share no trait for these settings, hence a macro.
#[cfg(feature = "server")]
#[macro_export]
macro_rules! tune_service {
    ($server:expr, $config:expr, $rules:expr) => {
        $crate::tune_service!($server, $config, $rules, cheap = &[], exempt = &[])
    };
    ($server:expr, $config:expr, $rules:expr, cheap = $cheap:expr, exempt = $exempt:expr) => {
        $config
            .auth
            .verifier()
            .map_err($crate::server::StartError::from)
            .map(|verifier| {
                $crate::tower::ServiceBuilder::new()
                    .layer($crate::auth::rules::AuthenticateLayer::new(
                        verifier, $rules,
                    ))
                    .layer(
                        $crate::rate::layer::RateLimitLayer::new($crate::rate::CallerLimits::new(
                            $config.rate,
                        ))
                        .exempt($exempt),
                    )
                    .layer(
                        $crate::server::shed::ShedLayer::new($config.max_concurrent_calls)
                            .cheap($cheap)
                            .exempt($exempt),
                    )
                    .layer($crate::server::faults::FaultLayer::new(
                        $config.faults.clone(),
                    ))
                    .service(
                        $server
                            .accept_compressed($crate::tonic::codec::CompressionEncoding::Gzip)
                            .send_compressed($crate::tonic::codec::CompressionEncoding::Gzip)
                            .max_decoding_message_size($config.max_message_bytes)
                            .max_encoding_message_size($config.max_message_bytes),
                    )
            })
    };
}
