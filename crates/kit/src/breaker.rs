//! A circuit breaker per downstream, from `tower-resilience-circuitbreaker`: it opens when the
//! failure rate over the last calls crosses a threshold, fails calls fast with UNAVAILABLE while
//! open, lets a few probe calls through after a cool-down (half-open), and closes when they succeed.
//!
//! gRPC statuses travel in trailers, which a layer over the channel cannot see, so the breaker
//! wraps each *typed* call: the call runs as the breaker's request, and its `Status` is classified
//! here. Only failures that say the downstream is unwell count: UNAVAILABLE, DEADLINE_EXCEEDED,
//! RESOURCE_EXHAUSTED, INTERNAL and UNKNOWN. A NOT_FOUND or INVALID_ARGUMENT is the caller's
//! problem, and a healthy answer.

use std::pin::Pin;
use std::time::Duration;

use tonic::{Code, Status};
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;
use tower_resilience_circuitbreaker::{CircuitBreakerError, CircuitBreakerLayer, CircuitState};

/// One attempt of a call, as the breaker runs it. A struct rather than a bare boxed future: a `dyn`
/// type as a tower request trips the compiler's higher-ranked lifetime checks.
pub struct Attempt(pub Pin<Box<dyn Future<Output = Result<(), Status>> + Send + 'static>>);

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Attempt")
    }
}

/// When a breaker opens and how it recovers.
#[derive(Debug, Clone)]
pub struct BreakerConfig {
    /// Failure rate, 0 to 1, over the window that opens the breaker.
    pub failure_rate: f64,
    /// How many recent calls the failure rate is computed over.
    pub window: usize,
    /// Fewest calls in the window before the rate is trusted.
    pub minimum_calls: usize,
    /// How long the breaker stays open before letting probe calls through.
    pub cool_down: Duration,
    /// How many probe calls are let through while half-open.
    pub probes: usize,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate: 0.5,
            window: 20,
            minimum_calls: 10,
            cool_down: Duration::from_secs(5),
            probes: 3,
        }
    }
}

/// Whether a status says the downstream is unwell (as opposed to the request being wrong).
pub fn is_failure(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Internal
            | Code::Unknown
    )
}

/// The circuit breaker of one downstream.
#[derive(Clone)]
pub struct Breaker {
    name: &'static str,
    service: BoxCloneSyncService<Attempt, (), CircuitBreakerError<Status>>,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker").field("name", &self.name).finish()
    }
}

impl Breaker {
    /// A closed breaker for the downstream `name`, reporting its state in the metrics
    /// `orderly_circuit_breaker_state` (0 closed, 1 open, 2 half-open),
    /// `orderly_circuit_breaker_transitions_total` and `orderly_circuit_breaker_rejected_total`.
    pub fn new(name: &'static str, config: &BreakerConfig) -> Self {
        metrics::gauge!("orderly_circuit_breaker_state", "downstream" => name)
            .set(CircuitState::Closed as u8 as f64);
        let layer = CircuitBreakerLayer::builder()
            .name(name)
            .failure_rate_threshold(config.failure_rate)
            .sliding_window_size(config.window)
            .minimum_number_of_calls(config.minimum_calls)
            .wait_duration_in_open(config.cool_down)
            .permitted_calls_in_half_open(config.probes)
            .failure_classifier(|result: &Result<(), Status>| matches!(result, Err(status) if is_failure(status)))
            .on_state_transition(move |from, to| {
                tracing::warn!(downstream = name, ?from, ?to, "circuit breaker changed state");
                metrics::gauge!("orderly_circuit_breaker_state", "downstream" => name).set(to as u8 as f64);
                let to = format!("{to:?}").to_lowercase();
                metrics::counter!("orderly_circuit_breaker_transitions_total", "downstream" => name, "to" => to)
                    .increment(1);
            })
            .on_call_rejected(move || {
                metrics::counter!("orderly_circuit_breaker_rejected_total", "downstream" => name).increment(1);
            })
            .build();
        let run = tower::service_fn(|attempt: Attempt| attempt.0);
        let service = match layer {
            Ok(layer) => BoxCloneSyncService::new(layer.layer_fn(run)),
            Err(error) => {
                // Only an invalid configuration gets here; run without a breaker rather than not at all.
                tracing::error!(downstream = name, %error, "invalid circuit breaker configuration; breaker disabled");
                BoxCloneSyncService::new(run.map_err(CircuitBreakerError::Inner))
            }
        };
        Self { name, service }
    }

    /// Runs `attempt` through the breaker: UNAVAILABLE at once while the breaker is open.
    pub fn run(
        &self,
        attempt: Attempt,
    ) -> impl Future<Output = Result<(), Status>> + Send + 'static {
        let name = self.name;
        let service = self.service.clone();
        async move {
            match service.oneshot(attempt).await {
                Ok(()) => Ok(()),
                Err(CircuitBreakerError::Inner(status)) => Err(status),
                Err(_open) => Err(open_status(name)),
            }
        }
    }
}

/// The status of a call refused by an open breaker. It carries the `x-orderly-breaker: open`
/// metadata so that retry logic can tell it apart and not retry.
fn open_status(name: &str) -> Status {
    let mut status =
        Status::unavailable(format!("circuit breaker for {name} is open: failing fast"));
    status.metadata_mut().insert(
        OPEN_MARK,
        tonic::metadata::MetadataValue::from_static("open"),
    );
    status
}

/// The metadata key on statuses from an open breaker.
pub const OPEN_MARK: &str = "x-orderly-breaker";

/// Whether `status` came from an open breaker rather than from the downstream.
pub fn is_open(status: &Status) -> bool {
    status.metadata().contains_key(OPEN_MARK)
}
