//! A circuit breaker per downstream method: it opens when the failure rate over a recent time
//! window crosses a threshold, fails calls fast with UNAVAILABLE while open, lets a few probe calls
//! through after a cool-down (half-open), closes when they all succeed and reopens if one fails.
//!
//! gRPC statuses travel in trailers, which a layer over the channel cannot see, so the breaker
//! wraps each *typed* call and classifies its `Status`. Only failures that say the downstream is
//! unwell count: UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL and UNKNOWN. A
//! NOT_FOUND or INVALID_ARGUMENT is the caller's problem, and a healthy answer.
//!
//! Each method of a downstream has its own breaker: a payments service whose charges fail while its
//! refunds work must keep refusing charges without blocking the refunds that undo them.
//!
//! Written by hand: `tower-resilience-circuitbreaker` 0.14 (the latest) keeps one record per call
//! in its time window and rescans them all on every call, which took 15% of the CPU at 11k
//! calls/s through the gateway; its count window never slides (it counts every call since the last
//! state change). This one counts calls in ten buckets across the window: O(1) per call.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tonic::{Code, Status};

/// How many buckets the failure-rate window is cut into.
const BUCKETS: usize = 10;

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

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Calls go through and are counted.
    Closed,
    /// Calls are refused until the cool-down has passed.
    Open { since: Instant },
    /// Up to `probes` calls go through; all succeeding closes the breaker, one failing reopens it.
    HalfOpen { in_flight: usize, succeeded: usize },
}

impl State {
    /// The value of `orderly_circuit_breaker_state`, and the `to` label of a transition.
    fn gauge(self) -> (f64, &'static str) {
        match self {
            Self::Closed => (0.0, "closed"),
            Self::Open { .. } => (1.0, "open"),
            Self::HalfOpen { .. } => (2.0, "half_open"),
        }
    }
}

/// Calls and failures in one slice of the window; `epoch` says which slice it currently counts.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    epoch: u64,
    calls: u64,
    failures: u64,
}

/// Calls and failures over the last `BUCKETS` slices of time.
#[derive(Debug)]
struct Window {
    origin: Instant,
    slice: Duration,
    buckets: [Bucket; BUCKETS],
}

impl Window {
    fn new(length: Duration) -> Self {
        Self {
            origin: Instant::now(),
            slice: (length / BUCKETS as u32).max(Duration::from_millis(1)),
            buckets: [Bucket::default(); BUCKETS],
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(elapsed / self.slice.as_nanos()).unwrap_or(u64::MAX)
    }

    fn record(&mut self, now: Instant, failure: bool) {
        let epoch = self.epoch(now);
        let bucket = &mut self.buckets[(epoch % BUCKETS as u64) as usize];
        if bucket.epoch != epoch {
            *bucket = Bucket {
                epoch,
                ..Bucket::default()
            };
        }
        bucket.calls += 1;
        bucket.failures += u64::from(failure);
    }

    /// (calls, failures) in the window ending at `now`.
    fn totals(&self, now: Instant) -> (u64, u64) {
        let current = self.epoch(now);
        self.buckets
            .iter()
            .filter(|b| current.saturating_sub(b.epoch) < BUCKETS as u64)
            .fold((0, 0), |(calls, failures), b| {
                (calls + b.calls, failures + b.failures)
            })
    }

    fn clear(&mut self) {
        self.buckets = [Bucket::default(); BUCKETS];
    }
}

#[derive(Debug)]
struct Inner {
    state: State,
    window: Window,
}

/// Whether a call may go, and as what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// A normal call of a closed breaker.
    Call,
    /// One of the probes of a half-open breaker.
    Probe,
    /// Refused: the breaker is open, or its probes are taken.
    Refused,
}

/// The circuit breaker of one downstream method; clones share it.
#[derive(Clone)]
pub struct Breaker {
    name: &'static str,
    method: &'static str,
    config: BreakerConfig,
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.name)
            .field("method", &self.method)
            .field("state", &self.lock().state)
            .finish()
    }
}

/// Gives a probe's slot back if its call is dropped before it answers (its caller gave up).
struct ProbeSlot<'a> {
    breaker: &'a Breaker,
    armed: bool,
}

impl Drop for ProbeSlot<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut inner = self.breaker.lock();
            if let State::HalfOpen { in_flight, .. } = &mut inner.state {
                *in_flight = in_flight.saturating_sub(1);
            }
        }
    }
}

impl Breaker {
    /// A closed breaker for `method` of the downstream `name`, reporting its state in the metrics
    /// `orderly_circuit_breaker_state` (0 closed, 1 open, 2 half-open),
    /// `orderly_circuit_breaker_transitions_total` and `orderly_circuit_breaker_rejected_total`,
    /// labelled `downstream` and `rpc_method`.
    pub fn new(name: &'static str, method: &'static str, config: &BreakerConfig) -> Self {
        metrics::gauge!("orderly_circuit_breaker_state", "downstream" => name, "rpc_method" => method)
            .set(0.0);
        Self {
            name,
            method,
            config: config.clone(),
            inner: Arc::new(Mutex::new(Inner {
                state: State::Closed,
                window: Window::new(config.window),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the breaker is open and still cooling down: a call now would be refused, so work
    /// that needs this downstream can be refused before it starts.
    pub fn is_cooling_down(&self) -> bool {
        matches!(self.lock().state, State::Open { since } if since.elapsed() < self.config.cool_down)
    }

    /// The downstream's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs `call` through the breaker: UNAVAILABLE at once, without running it, while the breaker
    /// is open; otherwise its result, counted.
    pub async fn run<T>(&self, call: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
        let admission = self.admit();
        if admission == Admission::Refused {
            metrics::counter!("orderly_circuit_breaker_rejected_total", "downstream" => self.name, "rpc_method" => self.method).increment(1);
            return Err(open_status(self.name, self.method));
        }
        let mut slot = ProbeSlot {
            breaker: self,
            armed: admission == Admission::Probe,
        };
        let result = call.await;
        slot.armed = false;
        let failure = matches!(&result, Err(status) if is_failure(status));
        self.record(admission, failure);
        result
    }

    fn admit(&self) -> Admission {
        let mut inner = self.lock();
        if let State::Open { since } = inner.state {
            if since.elapsed() < self.config.cool_down {
                return Admission::Refused;
            }
            self.transition(
                &mut inner,
                State::HalfOpen {
                    in_flight: 0,
                    succeeded: 0,
                },
            );
        }
        match &mut inner.state {
            State::Closed => Admission::Call,
            State::HalfOpen {
                in_flight,
                succeeded,
            } if *in_flight + *succeeded < self.config.probes.max(1) => {
                *in_flight += 1;
                Admission::Probe
            }
            State::HalfOpen { .. } | State::Open { .. } => Admission::Refused,
        }
    }

    fn record(&self, admission: Admission, failure: bool) {
        let mut inner = self.lock();
        let now = Instant::now();
        match (admission, inner.state) {
            (Admission::Call, State::Closed) => {
                inner.window.record(now, failure);
                let (calls, failures) = inner.window.totals(now);
                if calls >= self.config.minimum_calls as u64
                    && failures as f64 >= self.config.failure_rate * calls as f64
                {
                    self.transition(&mut inner, State::Open { since: now });
                }
            }
            (
                Admission::Probe,
                State::HalfOpen {
                    in_flight,
                    succeeded,
                },
            ) => {
                if failure {
                    self.transition(&mut inner, State::Open { since: now });
                } else if succeeded + 1 >= self.config.probes.max(1) {
                    inner.window.clear();
                    self.transition(&mut inner, State::Closed);
                } else {
                    inner.state = State::HalfOpen {
                        in_flight: in_flight.saturating_sub(1),
                        succeeded: succeeded + 1,
                    };
                }
            }
            // A call admitted before the state changed says nothing about the new state.
            _ => {}
        }
    }

    fn transition(&self, inner: &mut Inner, to: State) {
        let from = inner.state.gauge().1;
        inner.state = to;
        let (value, label) = to.gauge();
        tracing::warn!(
            downstream = self.name,
            method = self.method,
            from,
            to = label,
            "circuit breaker changed state"
        );
        metrics::gauge!("orderly_circuit_breaker_state", "downstream" => self.name, "rpc_method" => self.method)
            .set(value);
        metrics::counter!("orderly_circuit_breaker_transitions_total", "downstream" => self.name, "rpc_method" => self.method, "to" => label)
            .increment(1);
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

    async fn attempt(result: Result<(), Status>) -> Result<(), Status> {
        result
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

    #[test]
    fn the_window_slides() {
        let mut window = Window::new(Duration::from_secs(10));
        let start = window.origin;
        for _ in 0..100 {
            window.record(start, false);
        }
        window.record(start + Duration::from_secs(5), true);
        assert_eq!(window.totals(start + Duration::from_secs(5)), (101, 1));
        // Ten seconds on, the early successes no longer dilute newer failures.
        window.record(start + Duration::from_secs(12), true);
        assert_eq!(window.totals(start + Duration::from_secs(12)), (2, 2));
        assert_eq!(window.totals(start + Duration::from_secs(30)), (0, 0));
    }

    #[tokio::test]
    async fn a_failed_probe_reopens_and_a_dropped_probe_frees_its_slot() {
        let config = BreakerConfig {
            failure_rate: 0.5,
            window: Duration::from_secs(10),
            minimum_calls: 2,
            cool_down: Duration::from_millis(50),
            probes: 1,
        };
        let breaker = Breaker::new("test", "Probe", &config);
        for _ in 0..2 {
            let _ = breaker.run(attempt(Err(Status::unavailable("down")))).await;
        }
        assert!(breaker.is_cooling_down());
        tokio::time::sleep(Duration::from_millis(60)).await;
        // A probe whose caller gives up gives its slot back.
        let abandoned = breaker.run(std::future::pending::<Result<(), Status>>());
        assert!(
            tokio::time::timeout(Duration::from_millis(10), abandoned)
                .await
                .is_err()
        );
        let failed = breaker
            .run(attempt(Err(Status::unavailable("still down"))))
            .await
            .expect_err("the probe runs and fails");
        assert!(!is_open(&failed), "the probe reached the downstream");
        assert!(
            breaker.is_cooling_down(),
            "a failed probe reopens the breaker"
        );
    }
}
