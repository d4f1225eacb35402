//! A circuit breaker per downstream method: it opens when the failure rate of *calls* over a recent
//! time window crosses a threshold, refuses calls with UNAVAILABLE while open, lets a few probe
//! calls through once the cool-down has passed (half-open), closes when they all succeed and
//! reopens if one fails.
//!
//! What it counts, so that protection never amplifies a failure:
//! - **Calls, not attempts.** A caller takes a [`Permit`] once per call and records the call's
//!   final outcome once, after its retries: a failure that a retry absorbed is a success.
//! - **Only failures that say the downstream is unwell**: UNAVAILABLE, transport errors, and
//!   DEADLINE_EXCEEDED when the call had at least [`BreakerConfig::min_counted_deadline`] to run (a
//!   caller that allows 1 ms must not open the breaker for everyone). Every code that a request
//!   can cause (INVALID_ARGUMENT, NOT_FOUND, INTERNAL from bad data, RESOURCE_EXHAUSTED from a
//!   per-caller limit, ...) is a healthy answer.
//! - **Enough calls to mean something**: the rate is trusted only past
//!   [`BreakerConfig::minimum_calls`] in the window, so a 50% threshold is not crossed by the luck
//!   of the first few calls.
//!
//! Admission is separate from the call ([`Breaker::try_acquire`]), so that work which needs a
//! downstream (an order that will be charged) can take its permit *before* it stores anything,
//! and is refused up front rather than half done. After the cool-down the breaker turns half-open
//! by itself, with or without traffic, and the first calls after it are its probes.
//!
//! Each method of a downstream has its own breaker: a payments service whose charges fail while its
//! refunds work must keep refusing charges without blocking the refunds that undo them.
//!
//! Written by hand: `tower-resilience-circuitbreaker` 0.14 (the latest) keeps one record per call
//! in its time window and rescans them all on every call, which took 15% of the CPU at 11k
//! calls/s through the gateway; its count window never slides (it counts every call since the last
//! state change); and as a layer over the channel it sees attempts, not calls. This one counts
//! calls in ten buckets across the window: O(1) per call.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tonic::{Code, Status};

/// How many buckets the failure-rate window is cut into.
const BUCKETS: usize = 10;

/// When a breaker opens and how it recovers.
#[derive(Debug, Clone)]
pub struct BreakerConfig {
    /// Failure rate of calls, 0 to 1, over the window that opens the breaker.
    pub failure_rate: f64,
    /// How far back the failure rate looks.
    pub window: Duration,
    /// Fewest calls in the window before the rate is trusted.
    pub minimum_calls: usize,
    /// How long the breaker stays open before letting probe calls through.
    pub cool_down: Duration,
    /// How many probe calls a half-open breaker lets through; all must succeed to close it.
    pub probes: usize,
    /// A call that ran out of time counts as a failure only if it was given at least this long: a
    /// deadline too short for any healthy downstream is the caller's doing.
    pub min_counted_deadline: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate: 0.5,
            window: Duration::from_secs(10),
            // With fewer, a downstream failing 30% of calls crosses 50% by chance within the first
            // calls (binomial: P(X >= 10 of 20) is 3% at p = 0.3); at 50 it is about 0.05%.
            minimum_calls: 50,
            cool_down: Duration::from_secs(5),
            probes: 3,
            min_counted_deadline: Duration::from_millis(250),
        }
    }
}

/// Whether a status says the downstream is unwell (as opposed to the request being wrong):
/// UNAVAILABLE, DEADLINE_EXCEEDED, or an error made on this side of the wire (a refused or reset
/// connection, which carries its transport error as its source).
pub fn is_failure(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded => true,
        Code::Unknown | Code::Internal | Code::Cancelled => {
            std::error::Error::source(status).is_some()
        }
        _ => false,
    }
}

/// What a finished call says about the downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It answered: a result, or an error the request caused.
    Healthy,
    /// It failed in a way that says it is unwell.
    Failure,
    /// Nothing to learn (the call never reached the downstream): counted neither way.
    Ignored,
}

impl Outcome {
    /// The outcome of a call that ended with `result` after being given `budget` to run.
    pub fn of<T>(result: &Result<T, Status>, budget: Duration, config: &BreakerConfig) -> Self {
        match result {
            Ok(_) => Self::Healthy,
            Err(status) if is_open(status) => Self::Ignored,
            Err(status)
                if status.code() == Code::DeadlineExceeded
                    && budget < config.min_counted_deadline =>
            {
                Self::Ignored
            }
            Err(status) if is_failure(status) => Self::Failure,
            Err(_) => Self::Healthy,
        }
    }
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
    /// Counts openings, so a half-open timer set for one opening does nothing after another.
    openings: u64,
}

/// What a permit was admitted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// A normal call of a closed breaker.
    Call,
    /// One of the probes of a half-open breaker.
    Probe,
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

/// Leave to make one call through a breaker. Record the call's outcome with [`Permit::record`];
/// a permit dropped unrecorded (its caller gave up) counts neither way and gives a probe's slot
/// back.
#[derive(Debug)]
pub struct Permit {
    breaker: Breaker,
    admission: Admission,
    recorded: bool,
}

impl Permit {
    /// The breaker this permit is for.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Records what the call said about the downstream.
    pub fn record(mut self, outcome: Outcome) {
        self.recorded = true;
        self.breaker.record(self.admission, outcome);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.recorded {
            self.breaker.record(self.admission, Outcome::Ignored);
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
        metrics::counter!("orderly_circuit_breaker_rejected_total", "downstream" => name, "rpc_method" => method)
            .absolute(0);
        for to in ["closed", "open", "half_open"] {
            metrics::counter!("orderly_circuit_breaker_transitions_total", "downstream" => name, "rpc_method" => method, "to" => to)
                .absolute(0);
        }
        Self {
            name,
            method,
            config: config.clone(),
            inner: Arc::new(Mutex::new(Inner {
                state: State::Closed,
                window: Window::new(config.window),
                openings: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The breaker's settings.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Whether the breaker is open and still cooling down: a call now would be refused.
    pub fn is_cooling_down(&self) -> bool {
        matches!(self.lock().state, State::Open { since } if since.elapsed() < self.config.cool_down)
    }

    /// The downstream's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The method this breaker guards.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// Leave for one call, or UNAVAILABLE (marked as the breaker's, see [`is_open`]) while the
    /// breaker is open or its probes are all taken.
    pub fn try_acquire(&self) -> Result<Permit, Status> {
        match self.admit() {
            Some(admission) => Ok(Permit {
                breaker: self.clone(),
                admission,
                recorded: false,
            }),
            None => {
                metrics::counter!("orderly_circuit_breaker_rejected_total", "downstream" => self.name, "rpc_method" => self.method).increment(1);
                Err(open_status(self.name, self.method, self.config.cool_down))
            }
        }
    }

    fn admit(&self) -> Option<Admission> {
        let mut inner = self.lock();
        if let State::Open { since } = inner.state {
            if since.elapsed() < self.config.cool_down {
                return None;
            }
            self.half_open(&mut inner);
        }
        match &mut inner.state {
            State::Closed => Some(Admission::Call),
            State::HalfOpen {
                in_flight,
                succeeded,
            } if *in_flight + *succeeded < self.config.probes.max(1) => {
                *in_flight += 1;
                Some(Admission::Probe)
            }
            State::HalfOpen { .. } | State::Open { .. } => None,
        }
    }

    fn record(&self, admission: Admission, outcome: Outcome) {
        let mut inner = self.lock();
        let now = Instant::now();
        match (admission, inner.state) {
            (Admission::Call, State::Closed) if outcome != Outcome::Ignored => {
                inner.window.record(now, outcome == Outcome::Failure);
                let (calls, failures) = inner.window.totals(now);
                if calls >= self.config.minimum_calls as u64
                    && failures as f64 >= self.config.failure_rate * calls as f64
                {
                    self.open(&mut inner, now);
                }
            }
            (
                Admission::Probe,
                State::HalfOpen {
                    in_flight,
                    succeeded,
                },
            ) => match outcome {
                Outcome::Failure => self.open(&mut inner, now),
                Outcome::Healthy if succeeded + 1 >= self.config.probes.max(1) => {
                    inner.window.clear();
                    self.transition(&mut inner, State::Closed);
                }
                Outcome::Healthy => {
                    inner.state = State::HalfOpen {
                        in_flight: in_flight.saturating_sub(1),
                        succeeded: succeeded + 1,
                    }
                }
                // A probe that learned nothing gives its slot back.
                Outcome::Ignored => {
                    inner.state = State::HalfOpen {
                        in_flight: in_flight.saturating_sub(1),
                        succeeded,
                    }
                }
            },
            // A call admitted before the state changed says nothing about the new state.
            _ => {}
        }
    }

    /// Opens the breaker, and turns it half-open when the cool-down has passed even if no call
    /// comes to find out (so its state and gauge say what a call would meet).
    fn open(&self, inner: &mut Inner, now: Instant) {
        inner.openings += 1;
        self.transition(inner, State::Open { since: now });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let breaker = self.clone();
            let opening = inner.openings;
            runtime.spawn(async move {
                tokio::time::sleep(breaker.config.cool_down).await;
                let mut inner = breaker.lock();
                if inner.openings == opening && matches!(inner.state, State::Open { .. }) {
                    breaker.half_open(&mut inner);
                }
            });
        }
    }

    fn half_open(&self, inner: &mut Inner) {
        self.transition(
            inner,
            State::HalfOpen {
                in_flight: 0,
                succeeded: 0,
            },
        );
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

/// The status of a call refused by an open breaker: UNAVAILABLE with `RetryInfo` (the cool-down)
/// and the `x-orderly-breaker: open` metadata, so that retry logic can tell it apart and not retry.
fn open_status(name: &str, method: &str, cool_down: Duration) -> Status {
    let mut status = <Status as tonic_types::StatusExt>::with_error_details(
        Code::Unavailable,
        format!("circuit breaker for {name}.{method} is open: failing fast"),
        tonic_types::ErrorDetails::with_retry_info(Some(cool_down)),
    );
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
    use tonic_types::StatusExt;

    use super::*;

    const BUDGET: Duration = Duration::from_secs(1);

    // What the tests drive the breaker with: one call, admitted, run and recorded.
    impl Breaker {
        /// Whether the breaker is closed: calls go through without being probes.
        pub fn is_closed(&self) -> bool {
            self.lock().state == State::Closed
        }

        /// Runs `call` as one call through the breaker: refused at once while open; otherwise its
        /// result, counted. `budget` is the time the call was given.
        pub async fn run<T>(
            &self,
            budget: Duration,
            call: impl Future<Output = Result<T, Status>>,
        ) -> Result<T, Status> {
            let permit = self.try_acquire()?;
            let result = call.await;
            permit.record(Outcome::of(&result, budget, &self.config));
            result
        }
    }

    async fn attempt(result: Result<(), Status>) -> Result<(), Status> {
        result
    }

    fn config(minimum_calls: usize, probes: usize) -> BreakerConfig {
        BreakerConfig {
            failure_rate: 0.5,
            window: Duration::from_secs(10),
            minimum_calls,
            cool_down: Duration::from_millis(50),
            probes,
            min_counted_deadline: Duration::from_millis(250),
        }
    }

    #[tokio::test]
    async fn only_failures_of_the_downstream_count() {
        let breaker = Breaker::new("test", "Counting", &config(4, 1));
        // Errors a request causes, and deadlines too short for anyone, never open it.
        for _ in 0..20 {
            for status in [
                Status::internal("bad data"),
                Status::invalid_argument("bad"),
                Status::resource_exhausted("your limit"),
                Status::unknown("?"),
            ] {
                let _ = breaker.run(BUDGET, attempt(Err(status))).await;
            }
            let _ = breaker
                .run(
                    Duration::from_millis(1),
                    attempt(Err(Status::deadline_exceeded("too short"))),
                )
                .await;
        }
        assert!(breaker.is_closed());
        let breaker = Breaker::new("test", "Deadlines", &config(4, 1));
        for _ in 0..4 {
            let _ = breaker
                .run(BUDGET, attempt(Err(Status::deadline_exceeded("slow"))))
                .await;
        }
        assert!(
            breaker.is_cooling_down(),
            "deadlines with time to spare count"
        );
    }

    #[tokio::test]
    async fn half_open_admits_only_its_probes_and_turns_half_open_by_itself() {
        let breaker = Breaker::new("test", "Permits", &config(2, 2));
        for _ in 0..2 {
            let _ = breaker
                .run(BUDGET, attempt(Err(Status::unavailable("down"))))
                .await;
        }
        assert!(breaker.try_acquire().is_err(), "open");
        // No call comes; the breaker turns half-open on its own once the cool-down passed.
        tokio::time::timeout(Duration::from_secs(2), async {
            while !matches!(breaker.lock().state, State::HalfOpen { .. }) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("half-open without traffic");
        let first = breaker.try_acquire().expect("first probe");
        let second = breaker.try_acquire().expect("second probe");
        let refused = breaker.try_acquire().expect_err("probes taken");
        assert!(is_open(&refused));
        assert!(
            refused.get_details_retry_info().is_some(),
            "says when to retry"
        );
        // A probe given up frees its slot; successes close the breaker.
        drop(second);
        first.record(Outcome::Healthy);
        breaker
            .try_acquire()
            .expect("freed slot")
            .record(Outcome::Healthy);
        assert!(breaker.is_closed());
    }

    #[tokio::test]
    async fn opens_on_failures_fails_fast_and_closes_after_a_good_probe() {
        let config = BreakerConfig {
            cool_down: Duration::from_millis(100),
            ..config(4, 1)
        };
        let breaker = Breaker::new("test", "Method", &config);
        // Caller errors do not count against the downstream.
        for _ in 0..2 {
            let status = breaker
                .run(BUDGET, attempt(Err(Status::not_found("no"))))
                .await
                .expect_err("passes through");
            assert_eq!(status.code(), Code::NotFound);
        }
        assert!(!breaker.is_cooling_down());
        let mut failures = 0;
        while !breaker.is_cooling_down() {
            let status = breaker
                .run(BUDGET, attempt(Err(Status::unavailable("down"))))
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
            .run(BUDGET, attempt(Ok(())))
            .await
            .expect_err("refused while open");
        assert!(is_open(&refused) && refused.code() == Code::Unavailable);

        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!breaker.is_cooling_down());
        breaker
            .run(BUDGET, attempt(Ok(())))
            .await
            .expect("a probe goes through after the cool-down");
        breaker
            .run(BUDGET, attempt(Ok(())))
            .await
            .expect("closed again");
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
        let breaker = Breaker::new("test", "Probe", &config(2, 1));
        for _ in 0..2 {
            let _ = breaker
                .run(BUDGET, attempt(Err(Status::unavailable("down"))))
                .await;
        }
        assert!(breaker.is_cooling_down());
        tokio::time::sleep(Duration::from_millis(60)).await;
        // A probe whose caller gives up gives its slot back.
        let abandoned = breaker.run(BUDGET, std::future::pending::<Result<(), Status>>());
        assert!(
            tokio::time::timeout(Duration::from_millis(10), abandoned)
                .await
                .is_err()
        );
        let failed = breaker
            .run(BUDGET, attempt(Err(Status::unavailable("still down"))))
            .await
            .expect_err("the probe runs and fails");
        assert!(!is_open(&failed), "the probe reached the downstream");
        assert!(
            breaker.is_cooling_down(),
            "a failed probe reopens the breaker"
        );
    }
}
