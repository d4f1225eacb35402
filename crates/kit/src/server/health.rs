//! `grpc.health.v1` for a server: one status for each of its services and for the server as a
//! whole (the empty service name), driven by a readiness probe and by draining.
//!
//! tonic-health's watch streams never end on their own, and a graceful shutdown waits for every open
//! stream, so a single client watching health would hold shutdown for the whole grace period.
//! [`DrainingHealth`] wraps tonic-health's service so that, once the server drains, each watch stream
//! sends NOT_SERVING and then ends.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse, health_check_response};
use tonic_health::server::{HealthReporter, HealthService};

/// Answers whether the service's dependencies (its database) work, for health checks: `Ok`, or
/// why not.
pub type Readiness =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// A service is ready while `database` answers a trivial query.
pub fn database(database: &crate::db::Database) -> Readiness {
    let database = database.clone();
    Arc::new(move || {
        let database = database.clone();
        Box::pin(async move { database.ping().await.map_err(|error| error.to_string()) })
    })
}

/// The gRPC servers a process runs, for its `/readyz`: how many it is starting, and the serving
/// flag of each that has started. Whoever starts the servers makes one, hands it to each server
/// (through [`crate::server::config::ServerConfig::readiness`]) and to the admin port; clones
/// share it.
#[derive(Debug, Clone, Default)]
pub struct Servers(Arc<ServersState>);

#[derive(Debug, Default)]
struct ServersState {
    expected: AtomicUsize,
    flags: Mutex<Vec<Weak<AtomicBool>>>,
}

impl Servers {
    /// The servers of a process that is about to start `count` gRPC servers: not ready until each
    /// of them has started and probed its database, not only the first to start.
    pub fn expecting(count: usize) -> Self {
        let servers = Self::default();
        servers.0.expected.store(count, Ordering::Relaxed);
        servers
    }

    /// Whether every gRPC server reports SERVING: false while fewer than expected are live (still
    /// starting, or stopped), true when none are expected.
    pub fn all_serving(&self) -> bool {
        let mut flags = self
            .0
            .flags
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        flags.retain(|flag| flag.strong_count() > 0);
        let live: Vec<Arc<AtomicBool>> = flags.iter().filter_map(Weak::upgrade).collect();
        live.len() >= self.0.expected.load(Ordering::Relaxed)
            && live.iter().all(|flag| flag.load(Ordering::Relaxed))
    }

    /// Counts one more server, serving while `serving` says so and live while it is held.
    fn register(&self, serving: &Arc<AtomicBool>) {
        self.0
            .flags
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::downgrade(serving));
    }
}

/// The health statuses of one server's services, and the switch that drains them.
#[derive(Clone)]
pub struct HealthState {
    reporter: HealthReporter,
    services: Arc<[String]>,
    draining: watch::Sender<bool>,
    serving: Arc<AtomicBool>,
}

impl std::fmt::Debug for HealthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthState")
            .field("services", &self.services)
            .field("draining", &*self.draining.borrow())
            .finish()
    }
}

impl HealthState {
    /// Health for the named services (plus the whole server, ""), all NOT_SERVING until set,
    /// counted among the process's `servers`, and the gRPC service that reports it.
    pub async fn new(
        services: impl IntoIterator<Item = String>,
        servers: &Servers,
    ) -> (Self, HealthServer<DrainingHealth>) {
        let reporter = HealthReporter::new();
        let mut names: Vec<String> = services.into_iter().collect();
        names.push(String::new());
        for name in &names {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        let (draining, draining_rx) = watch::channel(false);
        let service = DrainingHealth {
            inner: HealthService::from_health_reporter(reporter.clone()),
            draining: draining_rx,
        };
        let serving = Arc::new(AtomicBool::new(false));
        servers.register(&serving);
        let state = Self {
            reporter,
            services: names.into(),
            draining,
            serving,
        };
        (state, HealthServer::new(service))
    }

    /// Reports every service as SERVING or NOT_SERVING; ignored once draining, which is final.
    pub async fn set_serving(&self, serving: bool) {
        if self.is_draining() {
            return;
        }
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        // Watchers hear of changes only, as the health protocol says: tonic-health would send the
        // same status again on every probe.
        if self.serving.swap(serving, Ordering::Relaxed) == serving {
            return;
        }
        for name in self.services.iter() {
            self.reporter.set_service_status(name, status).await;
        }
    }

    /// Starts draining: every service reports NOT_SERVING from now on, and watch streams end after
    /// they have said so.
    pub async fn drain(&self) {
        // The flag goes first, so a watch stream that sees NOT_SERVING knows it is the last word.
        self.draining.send_replace(true);
        self.serving.store(false, Ordering::Relaxed);
        for name in self.services.iter() {
            self.reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
    }

    /// Whether [`HealthState::drain`] was called.
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }
}

/// tonic-health's service, with watch streams that end when the server drains.
#[derive(Debug)]
pub struct DrainingHealth {
    inner: HealthService,
    draining: watch::Receiver<bool>,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for DrainingHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let updates = self.inner.watch(request).await?.into_inner();
        let draining = self.draining.clone();
        let not_serving = health_check_response::ServingStatus::NotServing as i32;
        let stream = updates
            .take_while(move |update| {
                let last_word = *draining.borrow()
                    && matches!(update, Ok(response) if response.status == not_serving);
                !last_word
            })
            .chain(tokio_stream::once(Ok(HealthCheckResponse {
                status: not_serving,
            })));
        Ok(Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_process_is_ready_once_every_expected_server_serves() {
        let servers = Servers::expecting(2);
        assert!(!servers.all_serving(), "no server has started yet");
        let (first, _service) = HealthState::new(["a".to_owned()], &servers).await;
        first.set_serving(true).await;
        assert!(!servers.all_serving(), "one of the two servers has started");
        let (second, _service) = HealthState::new(["b".to_owned()], &servers).await;
        assert!(
            !servers.all_serving(),
            "the second has not probed its database"
        );
        second.set_serving(true).await;
        assert!(servers.all_serving(), "both serve");
        drop(second);
        assert!(
            !servers.all_serving(),
            "a stopped server leaves the process short"
        );
        // Another process's servers (another registry) are not counted.
        let elsewhere = Servers::expecting(1);
        assert!(!elsewhere.all_serving());
        assert!(Servers::expecting(0).all_serving(), "none expected: ready");
    }
}
