//! What a load run saw: latencies in an HDR histogram (microseconds, three significant digits, up to
//! an hour), calls counted by outcome, and the slowest calls that carried a sampled trace.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// The slowest sampled calls kept for the summary.
const SLOWEST_KEPT: usize = 5;

/// The outcomes and latencies of one share of a run (a worker's, or the whole run's once merged).
#[derive(Debug, Clone)]
pub struct Record {
    /// Latencies of every counted call, in microseconds.
    pub latencies: Histogram<u64>,
    /// Latencies of the successful calls only (a refusal is fast and would flatter the others).
    pub successful: Histogram<u64>,
    /// Calls by outcome: a gRPC code name (`OK`, `UNAVAILABLE`), an HTTP status, or `TIMEOUT`.
    pub outcomes: BTreeMap<String, u64>,
    /// The slowest calls that carried a sampled trace: (latency, trace id), slowest first.
    pub slowest_traces: Vec<(Duration, String)>,
    /// Successful calls that ended inside the counted window (not after it): the goodput's count.
    pub successful_in_window: u64,
}

impl Default for Record {
    fn default() -> Self {
        // An hour in microseconds; three significant digits.
        let histogram = || {
            Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .unwrap_or_else(|error| panic!("fixed histogram bounds: {error}"))
        };
        Self {
            latencies: histogram(),
            successful: histogram(),
            outcomes: BTreeMap::new(),
            slowest_traces: Vec::new(),
            successful_in_window: 0,
        }
    }
}

/// Whether an outcome is a success: gRPC OK, or an HTTP 2xx (after the action, in `action:CODE`).
pub fn is_success(outcome: &str) -> bool {
    let code = outcome.rsplit(':').next().unwrap_or(outcome);
    code == "OK" || code.len() == 3 && code.starts_with('2')
}

impl Record {
    /// Counts one call that took `latency` and ended as `outcome`, with its trace id if sampled,
    /// and whether it ended inside the counted window.
    pub fn add(
        &mut self,
        latency: Duration,
        outcome: &str,
        trace: Option<String>,
        in_window: bool,
    ) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latencies.saturating_record(micros);
        if is_success(outcome) {
            self.successful.saturating_record(micros);
            self.successful_in_window += u64::from(in_window);
        }
        match self.outcomes.get_mut(outcome) {
            Some(count) => *count += 1,
            None => {
                self.outcomes.insert(outcome.to_owned(), 1);
            }
        }
        if let Some(trace) = trace {
            self.keep_trace(latency, trace);
        }
    }

    fn keep_trace(&mut self, latency: Duration, trace: String) {
        self.slowest_traces.push((latency, trace));
        self.slowest_traces
            .sort_by_key(|(latency, _)| std::cmp::Reverse(*latency));
        self.slowest_traces.truncate(SLOWEST_KEPT);
    }

    /// Adds `other`'s calls to these.
    pub fn merge(&mut self, other: &Record) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latencies.add(&other.latencies);
        let _ = self.successful.add(&other.successful);
        for (outcome, count) in &other.outcomes {
            *self.outcomes.entry(outcome.clone()).or_default() += count;
        }
        for (latency, trace) in &other.slowest_traces {
            self.keep_trace(*latency, trace.clone());
        }
        self.successful_in_window += other.successful_in_window;
    }

    /// Every counted call.
    pub fn calls(&self) -> u64 {
        self.outcomes.values().sum()
    }

    /// Calls that did not succeed.
    pub fn errors(&self) -> u64 {
        self.outcomes
            .iter()
            .filter(|(outcome, _)| !is_success(outcome))
            .map(|(_, count)| count)
            .sum()
    }

    /// The latency at quantile `q` (0 to 1).
    pub fn quantile(&self, q: f64) -> Duration {
        Duration::from_micros(self.latencies.value_at_quantile(q))
    }

    /// The latency of the successful calls at quantile `q` (0 to 1).
    pub fn successful_quantile(&self, q: f64) -> Duration {
        Duration::from_micros(self.successful.value_at_quantile(q))
    }

    /// The longest latency.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.latencies.max())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_records_add_up_and_keep_the_slowest_traces() {
        let mut a = Record::default();
        let mut b = Record::default();
        for ms in 1..=90 {
            a.add(Duration::from_millis(ms), "OK", None, ms <= 80);
        }
        for ms in 91..=100 {
            b.add(
                Duration::from_millis(ms),
                "UNAVAILABLE",
                Some(format!("t{ms}")),
                true,
            );
        }
        a.merge(&b);
        assert_eq!(a.calls(), 100);
        assert_eq!(a.errors(), 10);
        assert_eq!(a.successful_in_window, 80, "failures are not goodput");
        let p50 = a.quantile(0.5).as_millis();
        assert!((49..=51).contains(&p50), "{p50}");
        assert_eq!(a.max().as_millis(), 100);
        let kept: Vec<_> = a.slowest_traces.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(kept, ["t100", "t99", "t98", "t97", "t96"]);
        assert!(is_success("204"));
        assert!(!is_success("429"));
    }
}
