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

/// Every live server's serving flag, for the process's `/readyz`.
static SERVERS: Mutex<Vec<Weak<AtomicBool>>> = Mutex::new(Vec::new());

/// How many gRPC servers this process runs (see [`expect_servers`]).
static EXPECTED: AtomicUsize = AtomicUsize::new(0);

/// Declares how many gRPC servers this process is about to start, so that [`all_serving`] is
/// false until each of them has started and probed its database, not only the first to start.
pub fn expect_servers(count: usize) {
    EXPECTED.store(count, Ordering::Relaxed);
}

/// Whether every gRPC server of this process reports SERVING: false while fewer than the
/// [`expect_servers`] count are live (still starting, or stopped), true when none are expected.
pub fn all_serving() -> bool {
    let mut servers = SERVERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    servers.retain(|flag| flag.strong_count() > 0);
    let live: Vec<Arc<AtomicBool>> = servers.iter().filter_map(Weak::upgrade).collect();
    live.len() >= EXPECTED.load(Ordering::Relaxed)
        && live.iter().all(|flag| flag.load(Ordering::Relaxed))
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
    /// Health for the named services (plus the whole server, ""), all NOT_SERVING until set, and the
    /// gRPC service that reports it.
    pub async fn new(
        services: impl IntoIterator<Item = String>,
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
        SERVERS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::downgrade(&serving));
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

    // The only test in this binary that creates health states, so the process-wide registry is its own.
    #[tokio::test]
    async fn the_process_is_ready_once_every_expected_server_serves() {
        expect_servers(2);
        assert!(!all_serving(), "no server has started yet");
        let (first, _service) = HealthState::new(["a".to_owned()]).await;
        first.set_serving(true).await;
        assert!(!all_serving(), "one of the two servers has started");
        let (second, _service) = HealthState::new(["b".to_owned()]).await;
        assert!(!all_serving(), "the second has not probed its database");
        second.set_serving(true).await;
        assert!(all_serving(), "both serve");
        drop(second);
        assert!(!all_serving(), "a stopped server leaves the process short");
        expect_servers(0);
        assert!(all_serving(), "the one left serves");
    }
}
