//! The summary of a run: throughput, latency quantiles, outcomes, a small text histogram and the
//! slowest sampled traces; as text for people or as one JSON document for scripts.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::record::Record;

/// The quantiles every summary gives.
const QUANTILES: [(&str, f64); 4] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)];

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// How long a run counted calls (`window`, its `--duration`) and how long its counted calls took
/// to end (`elapsed`, at least the window): the two clocks its per-second figures are over.
#[derive(Debug, Clone, Copy)]
pub struct Counted {
    /// From the start of counting to the end of the last counted call.
    pub elapsed: Duration,
    /// How long calls were counted.
    pub window: Duration,
}

impl Counted {
    /// Counted calls per second of `elapsed`, so a tool or a server that fell behind shows a lower
    /// rate.
    pub fn rate(self, record: &Record) -> f64 {
        record.calls() as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Successful calls per second of the window, counting those that ended inside it. Not over
    /// `elapsed`: a closed loop's last calls, sent just before the window closes, may be refusals
    /// a shedding server holds for seconds (`kit/src/server/shed.rs`), and counting successes over
    /// the time until those end charged the hold to the server's goodput (a fifth of it with 512
    /// callers and an 8 s window).
    pub fn goodput(self, record: &Record) -> f64 {
        record.successful_in_window as f64 / self.window.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// The run as one JSON document.
pub fn json(title: &str, record: &Record, counted: Counted) -> Value {
    let calls = record.calls();
    let mut latency = serde_json::Map::new();
    for (name, q) in QUANTILES {
        latency.insert(format!("{name}_ms"), json!(ms(record.quantile(q))));
    }
    latency.insert("max_ms".into(), json!(ms(record.max())));
    let mut successful = serde_json::Map::new();
    for (name, q) in QUANTILES {
        successful.insert(
            format!("{name}_ms"),
            json!(ms(record.successful_quantile(q))),
        );
    }
    json!({
        "run": title,
        "seconds": counted.elapsed.as_secs_f64(),
        "calls": calls,
        "rate": counted.rate(record),
        "errors": record.errors(),
        "goodput": counted.goodput(record),
        "latency": latency,
        "latency_successful": successful,
        "outcomes": record.outcomes,
        "slowest_traces": record.slowest_traces.iter()
            .map(|(latency, trace)| json!({"trace_id": trace, "latency_ms": ms(*latency)}))
            .collect::<Vec<_>>(),
    })
}

/// The run as text.
pub fn text(title: &str, record: &Record, counted: Counted) -> String {
    let calls = record.calls();
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    let _ = writeln!(
        out,
        "  calls      {calls} in {:.1} s: {:.1}/s, {} failed",
        counted.elapsed.as_secs_f64(),
        counted.rate(record),
        record.errors()
    );
    if record.errors() > 0 {
        let _ = writeln!(
            out,
            "  goodput    {:.1}/s: {} successful calls ended in the {:.1} s counted",
            counted.goodput(record),
            record.successful_in_window,
            counted.window.as_secs_f64()
        );
    }
    let quantiles: Vec<String> = QUANTILES
        .iter()
        .map(|(name, q)| format!("{name} {:.2} ms", ms(record.quantile(*q))))
        .collect();
    let _ = writeln!(
        out,
        "  latency    {}, max {:.2} ms",
        quantiles.join(", "),
        ms(record.max())
    );
    if record.errors() > 0 && !record.successful.is_empty() {
        let successful: Vec<String> = QUANTILES
            .iter()
            .map(|(name, q)| format!("{name} {:.2} ms", ms(record.successful_quantile(*q))))
            .collect();
        let _ = writeln!(out, "  successful {}", successful.join(", "));
    }
    let outcomes: Vec<String> = record
        .outcomes
        .iter()
        .map(|(outcome, count)| format!("{outcome} {count}"))
        .collect();
    let _ = writeln!(out, "  outcomes   {}", outcomes.join(", "));
    if calls > 0 {
        let _ = writeln!(out, "  histogram");
        out.push_str(&histogram(record));
    }
    if !record.slowest_traces.is_empty() {
        let _ = writeln!(out, "  slowest sampled traces");
        for (latency, trace) in &record.slowest_traces {
            let _ = writeln!(out, "    {trace}  {:.2} ms", ms(*latency));
        }
    }
    out
}

/// Bars of the calls per latency band, bands doubling from the fastest call to the slowest.
fn histogram(record: &Record) -> String {
    let calls = record.calls().max(1);
    let mut out = String::new();
    let mut upper = record.latencies.min().max(1);
    let mut lower = 0;
    while lower < record.latencies.max() {
        upper = upper.saturating_mul(2);
        let count = record
            .latencies
            .count_between(lower, upper.saturating_sub(1));
        let width = (count * 40).div_ceil(calls);
        let _ = writeln!(
            out,
            "    < {:>9.2} ms {:>9} {}",
            upper as f64 / 1000.0,
            count,
            "#".repeat(usize::try_from(width).unwrap_or(40))
        );
        lower = upper;
    }
    out
}
