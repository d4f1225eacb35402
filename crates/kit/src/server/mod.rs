//! The gRPC server every Orderly service runs: its services plus `grpc.health.v1` and server
//! reflection (v1 and v1alpha, so grpcurl works without proto files), opt-in fault injection, and
//! a graceful shutdown.
//!
//! Shutdown goes in this order: health flips to NOT_SERVING (watch streams say so and end); after
//! the configured drain delay the listener closes and every connection is told to stop opening
//! streams (HTTP/2 GOAWAY), so new calls are refused while in-flight calls finish; whatever still
//! runs when the grace period ends is dropped.

pub mod admin;
pub mod config;
pub mod faults;
pub mod health;
pub mod malformed;
pub mod shed;

use std::convert::Infallible;

use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::Server;
use tower::Service;

use crate::observe::metrics::ServerMetricsLayer;
use crate::observe::trace::ServerTraceLayer;
use crate::shutdown::Shutdown;
use config::ServerConfig;
use health::{HealthState, Readiness};

/// The most calls one client connection may have in flight (hyper's default).
const MAX_STREAMS_PER_CONNECTION: u32 = 200;

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A descriptor set given for reflection does not decode.
    #[error("cannot build server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("gRPC transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The plaintext health address could not be bound.
    #[error("cannot listen for health checks on {addr}: {source}")]
    HealthListen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Why a service could not start, or stopped with an error: what every service's `serve` returns.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Database(#[from] crate::db::DbError),
    /// A downstream address is invalid.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    /// The server failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The keys that verify callers' tokens could not be read.
    #[error(transparent)]
    Auth(#[from] crate::auth::keys::KeysError),
    /// The service's TLS certificates could not be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A service it calls has no address.
    #[error("no address for {name}, which this service calls")]
    Peer {
        /// The service it calls.
        name: &'static str,
    },
    /// A step of the service's own start-up that touches its database (writing the data it
    /// starts with, say) failed.
    #[error("start-up step {step:?} failed: {source}")]
    Setup {
        /// What the service was doing.
        step: &'static str,
        /// The database's error.
        #[source]
        source: crate::db::QueryError,
    },
}

/// A gRPC server under construction: add services, a descriptor set and a readiness probe, then
/// [`GrpcServer::serve`].
pub struct GrpcServer {
    config: ServerConfig,
    routes: RoutesBuilder,
    names: Vec<String>,
    descriptor_sets: Vec<&'static [u8]>,
    probe: Option<Readiness>,
    identity: Option<crate::tls::Identity>,
    name: Option<&'static str>,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("config", &self.config)
            .field("services", &self.names)
            .finish()
    }
}

impl GrpcServer {
    /// An empty server with `config`.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            routes: RoutesBuilder::default(),
            names: Vec::new(),
            descriptor_sets: Vec::new(),
            probe: None,
            identity: None,
            name: None,
        }
    }

    /// Names the service by its short name (`users`): its spans then report as that service when
    /// several share a process (see [`crate::observe::services`]).
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    /// Adds a generated gRPC service; its health status is reported under its full name.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME.to_owned());
        self.routes.add_service(service);
        self
    }

    /// Serves an encoded `FileDescriptorSet` over reflection; the health service's and the google.rpc
    /// error details' are always served.
    pub fn reflect(mut self, descriptor_set: &'static [u8]) -> Self {
        self.descriptor_sets.push(descriptor_set);
        self
    }

    /// Health reports SERVING only while `probe` answers `Ok`; it is asked every health interval.
    /// Without a probe, the services are SERVING from the start until they drain.
    pub fn readiness(mut self, probe: Readiness) -> Self {
        self.probe = Some(probe);
        self
    }

    /// Serves mutual TLS as `identity` (see [`crate::tls`]): every client must present a
    /// certificate of the same CA; without, the server speaks plaintext.
    pub fn tls(mut self, identity: Option<crate::tls::Identity>) -> Self {
        self.identity = identity;
        self
    }

    /// Serves over a service's database: health follows it (see [`GrpcServer::readiness`]), and
    /// it is closed once the server has stopped.
    pub async fn serve_with_database(
        self,
        database: crate::db::Database,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let result = self
            .readiness(health::database(&database))
            .serve(listener, shutdown)
            .await;
        database.close().await;
        result
    }

    /// Serves on `listener` until `shutdown` resolves, then shuts down gracefully (see the module
    /// documentation). Returns once every connection is closed or the grace period is over.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let (health, health_service) =
            HealthState::new(self.names.clone(), &self.config.readiness).await;
        // Health alone, in plaintext, for probes that cannot present a certificate; it answers
        // until this server is done.
        let health_only = match self.config.health_listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::HealthListen { addr, source })?;
                let bound = listener.local_addr().map_or(addr, |a| a);
                tracing::info!(addr = %bound, "health listening");
                let incoming = tonic::transport::server::TcpIncoming::from(listener);
                Some(tokio::spawn(
                    Server::builder()
                        .add_service(health_service.clone())
                        .serve_with_incoming(incoming),
                ))
            }
            None => None,
        };
        let reflection = || {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                // google.rpc error details, so grpcurl can print BadRequest and ErrorInfo.
                .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET);
            for set in &self.descriptor_sets {
                builder = builder.register_encoded_file_descriptor_set(set);
            }
            // Advertise what this server serves, not every service its descriptor sets describe.
            let served = self.names.iter().map(String::as_str).chain([
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ]);
            for name in served {
                builder = builder.with_service_name(name);
            }
            builder
        };
        // grpcurl before 1.9 speaks only v1alpha; newer clients prefer v1.
        let reflection_v1alpha = reflection().build_v1alpha()?;
        let reflection_v1 = reflection().build_v1()?;

        for service in &self.names {
            declare_counters(service, &methods_of(&self.descriptor_sets, service));
        }
        let draining = Shutdown::new();
        match self.probe {
            Some(probe) => {
                // The first probe runs before any call is accepted, so health is right from the
                // first Check (and the process's `/readyz` waits for it).
                let ready = probed(probe().await, None);
                health.set_serving(ready).await;
                tokio::spawn(probe_health(
                    health.clone(),
                    probe,
                    ready,
                    self.config.health_interval,
                    draining.clone(),
                ));
            }
            None => health.set_serving(true).await,
        }

        let drain_delay = self.config.drain_delay;
        let signal = {
            let health = health.clone();
            let draining = draining.clone();
            async move {
                shutdown.await;
                tracing::info!(?drain_delay, "draining: health is NOT_SERVING");
                draining.trigger();
                health.drain().await;
                tokio::time::sleep(drain_delay).await;
                tracing::info!("closing the listener; in-flight calls may finish");
            }
        };

        // A caller that multiplexes many calls over one connection (the gateway, orders) cancels
        // them all at once when its own clients hang up. h2's default allows 20 such resets of
        // calls not yet started before it closes the connection as a rapid-reset attack, failing
        // every other call on it with "broken pipe"; allowing as many as a connection may have
        // streams keeps the protection without punishing a burst of cancels.
        let mut builder = Server::builder()
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
            .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
            .http2_max_header_list_size(crate::conn::MAX_HEADER_BYTES as u32)
            .http2_max_pending_accept_reset_streams(Some(MAX_STREAMS_PER_CONNECTION as usize));
        if !self.config.max_connection_age.is_zero() {
            builder = builder
                .max_connection_age(self.config.max_connection_age)
                .max_connection_age_grace(self.config.grace_period);
        }
        let router = builder
            .layer(ServerTraceLayer { service: self.name })
            .layer(ServerMetricsLayer)
            .layer(malformed::MalformedLayer)
            .add_routes(self.routes.routes())
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);

        tracing::info!(%addr, services = ?self.names, tls = self.identity.is_some(), "listening");
        // The incoming stream, not the builder, sets socket options on accepted connections
        // (TCP_NODELAY among them), enforces the connection cap and preface timeout, and shakes
        // hands over TLS.
        let limits = self.config.connection_limits();
        let protocol = match self.identity {
            Some(_) => crate::conn::Protocol::Tls,
            None => crate::conn::Protocol::Http2,
        };
        let (incoming, watch) = crate::conn::incoming(listener, limits, protocol);
        let incoming =
            crate::tls::server::accept(incoming, self.identity, limits.header_timeout, watch);
        // tonic takes a stream of results; accept errors are handled inside (they pause the loop).
        let incoming = tokio_stream::StreamExt::map(incoming, Ok::<_, std::io::Error>);
        let serve = router.serve_with_incoming_shutdown(incoming, signal);
        let grace = drain_delay + self.config.grace_period;
        tokio::select! {
            result = serve => result?,
            () = async { draining.wait().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(?grace, "grace period over: dropping the calls still running");
            }
        }
        if let Some(health_only) = health_only {
            health_only.abort();
        }
        tracing::info!(services = ?self.names, "server stopped");
        Ok(())
    }
}

/// The methods `service` (its full name) declares in `descriptor_sets`.
fn methods_of(descriptor_sets: &[&[u8]], service: &str) -> Vec<String> {
    descriptor_sets
        .iter()
        .filter_map(|set| crate::auth::rules::declared(set, service).ok())
        .flatten()
        .collect()
}

/// Exports the server's refusal counters of `service` at zero, one series per known label set, so
/// that dashboards and alerts read 0 rather than "no data" until the first refusal: shed calls by
/// class, rate-limited calls by method, and authentication refusals by reason.
fn declare_counters(service: &str, methods: &[String]) {
    for class in ["cheap", "expensive"] {
        metrics::counter!("orderly_server_shed_total", "rpc_service" => service.to_owned(), "class" => class)
            .absolute(0);
    }
    for method in methods {
        metrics::counter!("orderly_server_rate_limited_total",
            "rpc_service" => service.to_owned(), "rpc_method" => method.clone())
        .absolute(0);
    }
    for refusal in crate::auth::AuthError::ALL {
        metrics::counter!("orderly_server_auth_refused_total",
            "rpc_service" => service.to_owned(), "reason" => refusal.reason().as_str())
        .absolute(0);
    }
}

/// Keeps health in step with the readiness probe until the server drains.
async fn probe_health(
    health: HealthState,
    probe: Readiness,
    mut ready: bool,
    interval: std::time::Duration,
    draining: Shutdown,
) {
    let stop = draining.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(interval) => {}
        }
        ready = probed(probe().await, Some(ready));
        health.set_serving(ready).await;
    }
}

/// Whether a probe's outcome says ready; logged when that differs from `last` (the previous
/// outcome, `None` at start), with the cause when it takes the service out of rotation.
fn probed(outcome: Result<(), String>, last: Option<bool>) -> bool {
    let ready = outcome.is_ok();
    if last != Some(ready) {
        match &outcome {
            Ok(()) => tracing::info!(ready, "readiness changed"),
            Err(reason) => tracing::warn!(ready, %reason, "readiness changed"),
        }
    }
    ready
}
