//! `--assert 'p99<50ms,errors<0.1%,rate>=1000'`: conditions on a run's summary, so that CI and
//! scripts can gate on it. Latencies take `us`, `ms` or `s`; `errors` is a share (`%`) or a count;
//! `rate` is calls per second; `goodput` successful calls per second of the counted window.

use super::record::Record;
use super::report::Counted;

/// A condition that could not be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read the assertion {0:?}: use e.g. p99<50ms, errors<0.1%, rate>=1000, goodput>=900"
)]
pub struct BadAssertion(String);

/// One condition: `metric op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    text: String,
    metric: Metric,
    op: Op,
    value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    /// A latency quantile, 0 to 1 (1 is the maximum), compared in milliseconds.
    Latency(f64),
    /// The share of failed calls, compared in percent.
    ErrorShare,
    /// The number of failed calls.
    ErrorCount,
    /// Calls per second.
    Rate,
    /// Successful calls that ended inside the counted window, per second of it.
    Goodput,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

/// Reads `text`, a comma-separated list of conditions.
pub fn parse(text: &str) -> Result<Vec<Assertion>, BadAssertion> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| one(t).ok_or_else(|| BadAssertion(t.to_owned())))
        .collect()
}

fn one(text: &str) -> Option<Assertion> {
    let at = text.find(['<', '>'])?;
    let (name, rest) = text.split_at(at);
    let (op, value) = match rest.as_bytes() {
        [b'<', b'=', ..] => (Op::LessOrEqual, &rest[2..]),
        [b'>', b'=', ..] => (Op::GreaterOrEqual, &rest[2..]),
        [b'<', ..] => (Op::Less, &rest[1..]),
        _ => (Op::Greater, &rest[1..]),
    };
    let (name, value) = (name.trim(), value.trim());
    let (metric, value) = match name {
        "rate" => (Metric::Rate, value.parse().ok()?),
        "goodput" => (Metric::Goodput, value.parse().ok()?),
        "errors" => match value.strip_suffix('%') {
            Some(share) => (Metric::ErrorShare, share.trim().parse().ok()?),
            None => (Metric::ErrorCount, value.parse().ok()?),
        },
        "max" => (Metric::Latency(1.0), millis(value)?),
        quantile => {
            let percent: f64 = quantile.strip_prefix('p')?.parse().ok()?;
            if !(0.0..=100.0).contains(&percent) {
                return None;
            }
            (Metric::Latency(percent / 100.0), millis(value)?)
        }
    };
    Some(Assertion {
        text: text.to_owned(),
        metric,
        op,
        value,
    })
}

/// A duration with its unit, in milliseconds.
fn millis(value: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    Some(number.trim().parse::<f64>().ok()? * scale)
}

impl Assertion {
    /// What the run measured for this condition, in its unit.
    pub fn measured(&self, record: &Record, counted: Counted) -> f64 {
        let calls = record.calls() as f64;
        match self.metric {
            Metric::Latency(q) if q >= 1.0 => record.max().as_secs_f64() * 1000.0,
            Metric::Latency(q) => record.quantile(q).as_secs_f64() * 1000.0,
            Metric::ErrorShare if calls == 0.0 => 0.0,
            Metric::ErrorShare => record.errors() as f64 / calls * 100.0,
            Metric::ErrorCount => record.errors() as f64,
            Metric::Rate => counted.rate(record),
            Metric::Goodput => counted.goodput(record),
        }
    }

    /// Whether the run meets this condition (see [`Assertion::measured`]).
    pub fn holds(&self, record: &Record, counted: Counted) -> bool {
        let measured = self.measured(record, counted);
        match self.op {
            Op::Less => measured < self.value,
            Op::LessOrEqual => measured <= self.value,
            Op::Greater => measured > self.value,
            Op::GreaterOrEqual => measured >= self.value,
        }
    }

    /// The condition as written.
    pub fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn conditions_are_read_and_judged() {
        let mut record = Record::default();
        for ms in 1..=100 {
            let outcome = if ms <= 99 { "OK" } else { "UNAVAILABLE" };
            // The last ten end after the counted second.
            record.add(Duration::from_millis(ms), outcome, None, ms <= 90);
        }
        let second = Counted {
            elapsed: Duration::from_secs(1),
            window: Duration::from_secs(1),
        };
        let holds = |text: &str| parse(text).expect("parses")[0].holds(&record, second);
        assert!(holds("p99<100ms"));
        assert!(!holds("p50<10ms"));
        assert!(holds("p99.9<=0.11s"));
        assert!(holds("max>=100000us"));
        assert!(holds("errors<=1%"));
        assert!(!holds("errors<0.5%"));
        assert!(holds("errors<2"));
        assert!(holds("rate>=100"));
        assert!(!holds("rate>100"));
        assert!(holds("goodput>=90"), "the successes inside the window");
        assert!(!holds("goodput>90"));
        assert_eq!(
            parse("p99<50ms, errors<0.1%,rate>=1000")
                .expect("parses")
                .len(),
            3
        );
        for bad in [
            "p99",
            "p99<50",
            "q99<5ms",
            "rate>=fast",
            "p101<5ms",
            "goodput>=1k",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
