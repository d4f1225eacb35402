//! The two load models. **Closed loop**: N callers, each starting its next call when the last one
//! ends, so N calls are always in flight. **Open loop**: calls start on a fixed schedule whatever
//! the server does, and each latency is measured from the time the call *should* have started: a
//! server that stalls for a second shows a second of latency on every call scheduled in it, where a
//! closed loop (and ghz, wrk) would quietly send fewer calls and report the stall as one slow call
//! (coordinated omission).
//!
//! Calls in the warm-up run but are not counted. Each call has a timeout; one that passes it is
//! counted as `TIMEOUT`.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::sync::Mutex;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::record::Record;

/// How many shards the records of a run are spread over, so that calls finishing at once rarely
/// wait for each other.
const SHARDS: usize = 16;

/// How calls are started.
#[derive(Debug, Clone, Copy)]
pub enum Model {
    /// This many calls always in flight.
    Closed {
        /// Calls in flight.
        concurrency: usize,
    },
    /// This many calls started per second, on schedule.
    Open {
        /// Calls per second.
        rate: f64,
    },
}

/// A run's shape.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// How calls are started.
    pub model: Model,
    /// How long calls are counted.
    pub duration: Duration,
    /// How long calls run first without being counted.
    pub warmup: Duration,
    /// The longest a call may take.
    pub timeout: Duration,
    /// The share of calls, 0 to 1, that carry a sampled W3C trace context.
    pub trace_sample: f64,
    /// Closed loop: a caller refused with RetryInfo waits the delay before its next call, as a
    /// well-behaved client does (the open loop keeps its schedule regardless).
    pub honor_retry_info: bool,
}

/// How one call ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// A gRPC code name (`OK`), an HTTP status (`200`), `TIMEOUT`; in a mix, `action:CODE`.
    pub label: Cow<'static, str>,
    /// How long the server asked the caller to wait before trying again (gRPC RetryInfo).
    pub retry_after: Option<Duration>,
}

impl Outcome {
    /// An outcome with nothing to wait for.
    pub fn of(label: &'static str) -> Self {
        Self {
            label: Cow::Borrowed(label),
            retry_after: None,
        }
    }
}

/// One call of a scenario, as the load models drive it.
pub trait Caller: Clone + Send + Sync + 'static {
    /// Makes call number `n`, with `traceparent` (a W3C trace context) when it is sampled, and
    /// returns how it ended.
    fn call(&self, n: u64, traceparent: Option<String>) -> impl Future<Output = Outcome> + Send;
}

/// What a run saw so far, shared by the callers and the progress line.
#[derive(Debug)]
pub struct Tally {
    shards: Vec<Mutex<Record>>,
    started: AtomicU64,
    /// When the last counted call ended, in microseconds after the counting began.
    last_end: AtomicU64,
}

impl Tally {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Record::default())).collect(),
            started: AtomicU64::new(0),
            last_end: AtomicU64::new(0),
        }
    }

    /// How long the counted calls took from the start of counting to the end of the last one
    /// (at least `duration`): calls per second are counted over this, so a tool or a server that
    /// fell behind shows a lower rate. (Goodput is counted over the window alone: see
    /// [`super::report::Counted::goodput`].)
    pub fn elapsed(&self, duration: Duration) -> Duration {
        Duration::from_micros(self.last_end.load(Ordering::Relaxed)).max(duration)
    }

    /// Everything counted so far.
    pub fn snapshot(&self) -> Record {
        let mut all = Record::default();
        for shard in &self.shards {
            // A poisoned shard still holds what was counted before the panic.
            let shard = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            all.merge(&shard);
        }
        all
    }
}

/// A fresh W3C `traceparent` (sampled) and its trace id.
fn traceparent() -> (String, String) {
    let trace = format!("{:032x}", fastrand::u128(1..));
    let span = format!("{:016x}", fastrand::u64(1..));
    (format!("00-{trace}-{span}-01"), trace)
}

/// Makes call `n` (sampled at `plan.trace_sample`) and counts it in `tally` if it was due at or
/// after `counted_from`, its latency measured from `due`; returns the delay the server asked for.
async fn one<C: Caller>(
    caller: &C,
    n: u64,
    due: Instant,
    counted_from: Instant,
    plan: &Plan,
    tally: &Tally,
) -> Option<Duration> {
    let sampled = plan.trace_sample > 0.0 && fastrand::f64() < plan.trace_sample;
    let (header, trace) = if sampled {
        let (header, trace) = traceparent();
        (Some(header), Some(trace))
    } else {
        (None, None)
    };
    let outcome = match tokio::time::timeout(plan.timeout, caller.call(n, header)).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::of("TIMEOUT"),
    };
    let latency = due.elapsed();
    if due >= counted_from {
        let ended = counted_from.elapsed();
        let micros = u64::try_from(ended.as_micros()).unwrap_or(u64::MAX);
        tally.last_end.fetch_max(micros, Ordering::Relaxed);
        let shard = usize::try_from(n).unwrap_or_default() % SHARDS;
        tally.shards[shard]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .add(latency, &outcome.label, trace, ended <= plan.duration);
    }
    outcome.retry_after
}

/// Runs `caller` under `plan`, starting at `start`; `tally` fills as calls end. Returns when every
/// call started has ended.
pub async fn run<C: Caller>(caller: C, plan: Plan, start: Instant, tally: Arc<Tally>) {
    let counted_from = start + plan.warmup;
    let end = counted_from + plan.duration;
    match plan.model {
        Model::Closed { concurrency } => {
            let mut callers = JoinSet::new();
            for _ in 0..concurrency.max(1) {
                let (caller, tally) = (caller.clone(), tally.clone());
                callers.spawn(async move {
                    loop {
                        let due = Instant::now();
                        if due >= end {
                            return;
                        }
                        let n = tally.started.fetch_add(1, Ordering::Relaxed);
                        let wait = one(&caller, n, due, counted_from, &plan, &tally).await;
                        if let Some(wait) = wait.filter(|_| plan.honor_retry_info) {
                            tokio::time::sleep_until((Instant::now() + wait).min(end)).await;
                        }
                    }
                });
            }
            while callers.join_next().await.is_some() {}
        }
        Model::Open { rate } => {
            let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
            let mut calls = JoinSet::new();
            let mut n = 0u64;
            loop {
                let due = start + interval.mul_f64(n as f64);
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(due).await;
                let (caller, tally) = (caller.clone(), tally.clone());
                calls.spawn(async move {
                    one(&caller, n, due, counted_from, &plan, &tally).await;
                });
                n += 1;
                // Reap what ended, so a long run does not keep every finished task.
                while calls.try_join_next().is_some() {}
            }
            while calls.join_next().await.is_some() {}
        }
    }
}

/// A tally for a new run.
pub fn tally() -> Arc<Tally> {
    Arc::new(Tally::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call that succeeds after a fixed time.
    #[derive(Clone)]
    struct Takes(Duration);

    impl Caller for Takes {
        fn call(&self, _: u64, _: Option<String>) -> impl Future<Output = Outcome> + Send {
            let took = self.0;
            async move {
                tokio::time::sleep(took).await;
                Outcome::of("OK")
            }
        }
    }

    #[tokio::test]
    async fn goodput_counts_the_successes_that_ended_inside_the_window() {
        // One caller, calls of 120 ms, a 300 ms window: three calls start inside it, the third
        // ends 60 ms after it.
        let plan = Plan {
            model: Model::Closed { concurrency: 1 },
            duration: Duration::from_millis(300),
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(5),
            trace_sample: 0.0,
            honor_retry_info: false,
        };
        let tally = tally();
        run(
            Takes(Duration::from_millis(120)),
            plan,
            Instant::now(),
            tally.clone(),
        )
        .await;
        let record = tally.snapshot();
        assert_eq!(record.outcomes.get("OK"), Some(&3), "every call is counted");
        assert_eq!(record.successful_in_window, 2, "two ended in the window");
        let counted = super::super::report::Counted {
            elapsed: tally.elapsed(plan.duration),
            window: plan.duration,
        };
        assert!(counted.elapsed >= Duration::from_millis(360), "{counted:?}");
        let summary = super::super::report::json("t", &record, counted);
        let goodput = summary["goodput"].as_f64().expect("a goodput");
        assert!((goodput - 2.0 / 0.3).abs() < 0.01, "{goodput}");
    }
}
