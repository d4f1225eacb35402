//! OpenMetrics exemplars for the call-duration histograms: for each bucket of each series, the
//! trace id of the last sampled call that fell in it, so that a dashboard can go from a slow bucket
//! to one of its calls in Jaeger.
//!
//! Written here because metrics-exporter-prometheus (0.18) keeps no exemplars and renders only the
//! Prometheus text format, which cannot carry them: the exposition it renders is turned into
//! OpenMetrics ([`openmetrics`]) when a scraper asks for that format (Prometheus does by default),
//! and the exemplars are added to the bucket lines. A plain-text scrape stays as it was.
//!
//! Only calls whose span is sampled offer one (no spans, no exemplars: telemetry off costs nothing
//! here); one exemplar is kept per bucket, bounded like the series themselves (at most
//! [`super::rpc::MAX_METHODS`] methods, 17 codes, 15 buckets, two ends).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{TraceContextExt as _, TraceId};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::metrics::DURATION_BUCKETS;

/// The `Content-Type` of an OpenMetrics exposition.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which end of a call a duration was measured at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum End {
    /// `rpc_server_duration_seconds`.
    Server,
    /// `rpc_client_duration_seconds`.
    Client,
}

impl End {
    fn metric(self) -> &'static str {
        match self {
            Self::Server => "rpc_server_duration_seconds_bucket",
            Self::Client => "rpc_client_duration_seconds_bucket",
        }
    }
}

/// One sampled call: its trace, its duration and when it ended (Unix seconds).
#[derive(Debug, Clone, Copy)]
struct Exemplar {
    trace_id: TraceId,
    seconds: f64,
    at: f64,
}

/// A bucket of a series: the end, `rpc_service`, `rpc_method`, `rpc_grpc_status_code`, and the
/// bucket's index in [`DURATION_BUCKETS`] (its length for `+Inf`).
type Key<'a> = (End, &'a str, &'a str, &'a str, usize);

fn kept() -> &'static Mutex<HashMap<Key<'static>, Exemplar>> {
    static KEPT: OnceLock<Mutex<HashMap<Key<'static>, Exemplar>>> = OnceLock::new();
    KEPT.get_or_init(Mutex::default)
}

/// Offers the duration `seconds` of a call of `service`/`method` that ended with the status
/// label `code`, measured at `end` inside `span`: kept as its bucket's exemplar if the span is
/// sampled.
pub fn offer(
    span: &tracing::Span,
    end: End,
    (service, method, code): (&'static str, &'static str, &'static str),
    seconds: f64,
) {
    if span.is_disabled() {
        return;
    }
    let context = span.context();
    let ids = context.span().span_context().clone();
    if !ids.is_valid() || !ids.is_sampled() {
        return;
    }
    let bucket = DURATION_BUCKETS
        .iter()
        .position(|le| seconds <= *le)
        .unwrap_or(DURATION_BUCKETS.len());
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64());
    let exemplar = Exemplar {
        trace_id: ids.trace_id(),
        seconds,
        at,
    };
    kept()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert((end, service, method, code, bucket), exemplar);
}

/// The Prometheus text exposition `text` (as metrics-exporter-prometheus renders it) in the
/// OpenMetrics format, with the kept exemplars on their bucket lines: counter families named
/// without their `_total` suffix, no blank lines, `# EOF` at the end.
pub fn openmetrics(text: &str) -> String {
    let kept = kept()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut out = String::with_capacity(text.len() + kept.len() * 64 + 8);
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(family) = line.strip_prefix("# TYPE ") {
            if let Some(name) = family.strip_suffix(" counter") {
                let bare = name.strip_suffix("_total").unwrap_or(name);
                let _ = writeln!(out, "# TYPE {bare} counter");
                continue;
            }
        } else if let Some(help) = line.strip_prefix("# HELP ") {
            // The family's HELP comes before its TYPE; rename it the same way.
            let (name, description) = help.split_once(' ').unwrap_or((help, ""));
            let counter = lines.peek().is_some_and(|next| {
                next.strip_prefix("# TYPE ")
                    .is_some_and(|t| t == format!("{name} counter"))
            });
            let name = if counter {
                name.strip_suffix("_total").unwrap_or(name)
            } else {
                name
            };
            let _ = writeln!(out, "# HELP {name} {description}");
            continue;
        }
        out.push_str(line);
        if let Some(exemplar) = exemplar_of(line, &kept) {
            let _ = write!(
                out,
                " # {{trace_id=\"{}\"}} {} {:.3}",
                exemplar.trace_id, exemplar.seconds, exemplar.at
            );
        }
        out.push('\n');
    }
    out.push_str("# EOF\n");
    out
}

/// The exemplar kept for the bucket sample `line`, if it is one of a duration histogram's.
fn exemplar_of<'a>(line: &'a str, kept: &HashMap<Key<'a>, Exemplar>) -> Option<Exemplar> {
    let end = [End::Server, End::Client].into_iter().find(|end| {
        line.starts_with(end.metric()) && line[end.metric().len()..].starts_with('{')
    })?;
    let labels = &line[end.metric().len() + 1..line.rfind('}')?];
    let value = |name: &str| {
        let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
        let rest = &labels[start..];
        Some(&rest[..rest.find('"')?])
    };
    let bucket = match value("le")? {
        "+Inf" => DURATION_BUCKETS.len(),
        le => {
            let le: f64 = le.parse().ok()?;
            DURATION_BUCKETS
                .iter()
                .position(|b| (b - le).abs() < 1e-12)?
        }
    };
    let (service, method, code) = (
        value("rpc_service")?,
        value("rpc_method")?,
        value("rpc_grpc_status_code")?,
    );
    kept.get(&(end, service, method, code, bucket)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_lose_their_suffix_in_the_family_and_the_exposition_ends_with_eof() {
        let text = "# HELP orderly_x_total Things.\n# TYPE orderly_x_total counter\norderly_x_total{a=\"b\"} 3\n\n# TYPE g gauge\ng 1\n";
        assert_eq!(
            openmetrics(text),
            "# HELP orderly_x Things.\n# TYPE orderly_x counter\norderly_x_total{a=\"b\"} 3\n# TYPE g gauge\ng 1\n# EOF\n"
        );
    }

    #[test]
    fn a_kept_exemplar_goes_on_its_bucket_line_only() {
        let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex");
        kept().lock().expect("lock").insert(
            (End::Server, "test.Svc", "Get", "0", 3),
            Exemplar {
                trace_id,
                seconds: 0.004,
                at: 1.5,
            },
        );
        let line = |le: &str| {
            format!(
                "rpc_server_duration_seconds_bucket{{rpc_system=\"grpc\",rpc_service=\"test.Svc\",rpc_method=\"Get\",rpc_grpc_status_code=\"0\",le=\"{le}\"}} 7"
            )
        };
        let text = format!("{}\n{}\n", line("0.005"), line("0.01"));
        let rendered = openmetrics(&text);
        let mut lines = rendered.lines();
        assert_eq!(
            lines.next(),
            Some(
                format!(
                    "{} # {{trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"}} 0.004 1.500",
                    line("0.005")
                )
                .as_str()
            )
        );
        assert_eq!(lines.next(), Some(line("0.01").as_str()));
    }
}
