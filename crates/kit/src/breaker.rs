//! A circuit breaker per downstream method, from `tower-resilience-circuitbreaker`: it opens when the
//! failure rate over the last calls crosses a threshold, fails calls fast with UNAVAILABLE while
//! open, lets a few probe calls through after a cool-down (half-open), and closes when they succeed.
//!
//! gRPC statuses travel in trailers, which a layer over the channel cannot see, so the breaker
//! wraps each *typed* call: the call runs as the breaker's request, and its `Status` is classified
//! here. Only failures that say the downstream is unwell count: UNAVAILABLE, DEADLINE_EXCEEDED,
//! RESOURCE_EXHAUSTED, INTERNAL and UNKNOWN. A NOT_FOUND or INVALID_ARGUMENT is the caller's
//! problem, and a healthy answer.
//!
//! Each method of a downstream has its own breaker: a payments service whose charges fail while its
//! refunds work must keep refusing charges without blocking the refunds that undo them.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::{Code, Status};
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;
use tower_resilience_circuitbreaker::{
    CircuitBreakerError, CircuitBreakerLayer, CircuitState, SlidingWindowType,
};

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
    /// How far back the failure rate looks.
    pub window: Duration,
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
            window: Duration::from_secs(10),
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
    method: &'static str,
    service: BoxCloneSyncService<Attempt, (), CircuitBreakerError<Status>>,
    /// When the breaker last opened, while it is open: lets callers refuse work up front.
    opened_at: Arc<Mutex<Option<Instant>>>,
    cool_down: Duration,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.name)
            .field("method", &self.method)
            .finish()
    }
}

impl Breaker {
    /// A closed breaker for `method` of the downstream `name`, reporting its state in the metrics
    /// `orderly_circuit_breaker_state` (0 closed, 1 open, 2 half-open),
    /// `orderly_circuit_breaker_transitions_total` and `orderly_circuit_breaker_rejected_total`,
    /// labelled `downstream` and `rpc_method`.
    pub fn new(name: &'static str, method: &'static str, config: &BreakerConfig) -> Self {
        metrics::gauge!("orderly_circuit_breaker_state", "downstream" => name, "rpc_method" => method)
            .set(CircuitState::Closed as u8 as f64);
        let opened_at: Arc<Mutex<Option<Instant>>> = Arc::default();
        let opened = opened_at.clone();
        let layer = CircuitBreakerLayer::builder()
            .name(name)
            .failure_rate_threshold(config.failure_rate)
            // Time-based: the crate's count-based window counts every call since the last state
            // change rather than the last N, so old successes would dilute new failures forever.
            .sliding_window_type(SlidingWindowType::TimeBased)
            .sliding_window_duration(config.window)
            .minimum_number_of_calls(config.minimum_calls)
            .wait_duration_in_open(config.cool_down)
            .permitted_calls_in_half_open(config.probes)
            .failure_classifier(|result: &Result<(), Status>| matches!(result, Err(status) if is_failure(status)))
            .on_state_transition(move |from, to| {
                tracing::warn!(downstream = name, method, ?from, ?to, "circuit breaker changed state");
                *opened.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
                    (to == CircuitState::Open).then(Instant::now);
                metrics::gauge!("orderly_circuit_breaker_state", "downstream" => name, "rpc_method" => method).set(to as u8 as f64);
                let to = format!("{to:?}").to_lowercase();
                metrics::counter!("orderly_circuit_breaker_transitions_total", "downstream" => name, "rpc_method" => method, "to" => to)
                    .increment(1);
            })
            .on_call_rejected(move || {
                metrics::counter!("orderly_circuit_breaker_rejected_total", "downstream" => name, "rpc_method" => method).increment(1);
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
        Self {
            name,
            method,
            service,
            opened_at,
            cool_down: config.cool_down,
        }
    }

    /// Whether the breaker is open and still cooling down: a call now would be refused, so work
    /// that needs this downstream can be refused before it starts.
    pub fn is_cooling_down(&self) -> bool {
        let opened = *self
            .opened_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        opened.is_some_and(|at| at.elapsed() < self.cool_down)
    }

    /// The downstream's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs `attempt` through the breaker: UNAVAILABLE at once while the breaker is open.
    pub fn run(
        &self,
        attempt: Attempt,
    ) -> impl Future<Output = Result<(), Status>> + Send + 'static {
        let name = self.name;
        let method = self.method;
        let service = self.service.clone();
        async move {
            match service.oneshot(attempt).await {
                Ok(()) => Ok(()),
                Err(CircuitBreakerError::Inner(status)) => Err(status),
                Err(_open) => Err(open_status(name, method)),
            }
        }
    }
}

/// The status of a call refused by an open breaker. It carries the `x-orderly-breaker: open`
/// metadata so that retry logic can tell it apart and not retry.
fn open_status(name: &str, method: &str) -> Status {
    let mut status = Status::unavailable(format!(
        "circuit breaker for {name}.{method} is open: failing fast"
    ));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(result: Result<(), Status>) -> Attempt {
        Attempt(Box::pin(async move { result }))
    }

    #[tokio::test]
    async fn opens_on_failures_fails_fast_and_closes_after_a_good_probe() {
        let config = BreakerConfig {
            failure_rate: 0.5,
            window: Duration::from_secs(10),
            minimum_calls: 4,
            cool_down: Duration::from_millis(100),
            probes: 1,
        };
        let breaker = Breaker::new("test", "Method", &config);
        // Caller errors do not count against the downstream.
        for _ in 0..2 {
            let status = breaker
                .run(attempt(Err(Status::not_found("no"))))
                .await
                .expect_err("passes through");
            assert_eq!(status.code(), Code::NotFound);
        }
        assert!(!breaker.is_cooling_down());
        let mut failures = 0;
        while !breaker.is_cooling_down() {
            let status = breaker
                .run(attempt(Err(Status::unavailable("down"))))
                .await
                .expect_err("fails");
            assert!(!is_open(&status), "reached the downstream");
            failures += 1;
            assert!(
                failures <= 4,
                "opens once failures reach half of at least four calls"
            );
        }
        let refused = breaker
            .run(attempt(Ok(())))
            .await
            .expect_err("refused while open");
        assert!(is_open(&refused) && refused.code() == Code::Unavailable);

        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!breaker.is_cooling_down());
        breaker
            .run(attempt(Ok(())))
            .await
            .expect("a probe goes through after the cool-down");
        breaker.run(attempt(Ok(()))).await.expect("closed again");
    }
}
