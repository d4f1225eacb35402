//! Telemetry for a process: logs on stdout and, when configured, traces over OTLP.
//!
//! - **Logs**: one JSON object a line (`timestamp`, `level`, `target`, `message`, the event's
//!   fields, and `trace_id` / `span_id` when inside a traced span), or a readable format for
//!   development. The level comes from `RUST_LOG` (default `info`); it filters logs only, never
//!   the spans that are traced.
//! - **Traces**: `tracing` spans become OpenTelemetry spans. W3C `traceparent`/`tracestate` and
//!   `baggage` are the propagation formats. Export is OTLP over gRPC, configured by the standard
//!   variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`,
//!   `OTEL_TRACES_SAMPLER_ARG`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`). With no endpoint (or
//!   `OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER=none`) no spans are made at all: nothing
//!   would read them, and making them cost a third of a GetUser's CPU (`bench/getuser.sh`). Spans are exported in batches from a thread of their own, so a slow or
//!   absent collector never slows a call; [`Telemetry::shutdown`] flushes them.

use std::fmt::{self, Write as _};

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};

use crate::observe::services::{SplitExporter, TagEmitter};
use tracing::Metadata;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Registry;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "args", derive(clap::ValueEnum))]
pub enum LogFormat {
    /// One JSON object a line, for log pipelines.
    #[default]
    Json,
    /// Coloured, readable lines, for a terminal.
    Pretty,
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A global subscriber was already installed.
    #[error("logging is already initialised: {0}")]
    AlreadyInitialised(String),
    /// The OTLP exporter could not be built.
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The process's telemetry; call [`Telemetry::shutdown`] before exiting to flush spans.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes buffered spans and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "spans could not be flushed");
        }
    }
}

fn env_is(name: &str, value: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value))
}

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

/// Installs the process-wide subscriber: logs in `format`, and OpenTelemetry tracing unless
/// `OTEL_SDK_DISABLED=true`. `service_name` names the process's spans unless `OTEL_SERVICE_NAME`
/// does; when the process serves several `services` (short names, as their servers are named),
/// each one's spans report as `<service_name>-<service>` ([`crate::observe::services`]). Call once,
/// inside the Tokio runtime, at the start of `main`.
pub fn init(
    format: LogFormat,
    service_name: &str,
    services: &[&'static str],
) -> Result<Telemetry, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
    let provider = if env_is("OTEL_SDK_DISABLED", "true") || !exporting() {
        None
    } else {
        Some(provider(service_name, services)?)
    };
    // RUST_LOG filters the logs only: spans are traced by the sampler's decision, not the log
    // level, so quieting the logs never drops traces.
    // Only the layers in use: an absent (`None`) layer still answers "always" for every callsite,
    // which would make spans that no layer records.
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = Vec::new();
    if let Some(p) = &provider {
        layers.push(
            tracing_opentelemetry::layer()
                .with_tracer(p.tracer("orderly"))
                .with_filter(LevelFilter::INFO)
                .boxed(),
        );
    }
    let logs = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // JSON lines carry the event's own fields and the trace ids, never span fields: the layer
    // takes events only, so it formats nothing when a span starts (a cost on every call).
    layers.push(match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            .event_format(JsonLines)
            .with_filter(EventsOnly(logs()))
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            .with_filter(logs())
            .boxed(),
    });
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| TelemetryError::AlreadyInitialised(e.to_string()))?;
    Ok(Telemetry { provider })
}

/// The events its filter passes, and never a span, decided once per callsite and keeping the
/// filter's level hint (combining filters with `FilterExt::and` loses the hint, which turns every
/// `trace_span!` of every crate into a live check, and the registry then makes spans no layer
/// wants: h2's alone were a tenth of a GetUser's CPU).
struct EventsOnly(EnvFilter);

impl<S> Filter<S> for EventsOnly {
    fn enabled(&self, metadata: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        metadata.is_event() && Filter::<S>::enabled(&self.0, metadata, cx)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.is_event() {
            Filter::<S>::callsite_enabled(&self.0, metadata)
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Filter::<S>::max_level_hint(&self.0)
    }

    fn event_enabled(&self, event: &tracing::Event<'_>, cx: &Context<'_, S>) -> bool {
        Filter::<S>::event_enabled(&self.0, event, cx)
    }
}

/// Whether spans are exported: an OTLP endpoint is configured and the exporter is not `none`.
fn exporting() -> bool {
    (env_set("OTEL_EXPORTER_OTLP_ENDPOINT") || env_set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && !env_is("OTEL_TRACES_EXPORTER", "none")
}

/// A tracer provider exporting over OTLP, each of `services` under its own name.
fn provider(
    service_name: &str,
    services: &[&'static str],
) -> Result<SdkTracerProvider, TelemetryError> {
    let mut resource = Resource::builder();
    if !env_set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name(service_name.to_owned());
    }
    let otlp = || {
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
    };
    let builder = SdkTracerProvider::builder().with_resource(resource.build());
    let builder = if services.is_empty() {
        builder.with_batch_exporter(otlp()?)
    } else {
        let exporter = SplitExporter::new(otlp()?, services, otlp)?;
        builder.with_span_processor(TagEmitter::new(
            BatchSpanProcessor::builder(exporter).build(),
        ))
    };
    Ok(builder.build())
}

/// One JSON object a line, with the OpenTelemetry trace and span ids of the current span,
/// written straight into the line buffer: no map of values is built per event.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        write!(
            writer,
            "{{\"timestamp\":\"{}\",\"level\":\"{}\",\"target\":",
            humantime::format_rfc3339_micros(std::time::SystemTime::now()),
            metadata.level().as_str()
        )?;
        json_string(&mut writer, metadata.target())?;
        let mut fields = Fields {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        // Read before touching any span extensions, so no lock is held here.
        let context = tracing::Span::current().context();
        let span = context.span();
        let ids = span.span_context();
        if ids.is_valid() {
            write!(
                writer,
                ",\"trace_id\":\"{}\",\"span_id\":\"{}\"",
                ids.trace_id(),
                ids.span_id()
            )?;
        }
        writer.write_str("}\n")
    }
}

/// Writes `text` as a JSON string.
fn json_string(out: &mut dyn fmt::Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(text)?;
    out.write_char('"')
}

/// Escapes what is written through it for the inside of a JSON string.
struct Escaped<'a>(&'a mut dyn fmt::Write);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut plain = 0;
        for (at, c) in text.char_indices() {
            let escape = match c {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                c if c < ' ' => "",
                _ => continue,
            };
            self.0.write_str(&text[plain..at])?;
            if escape.is_empty() {
                write!(self.0, "\\u{:04x}", u32::from(c))?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = at + c.len_utf8();
        }
        self.0.write_str(&text[plain..])
    }
}

/// Writes an event's fields as `,"name":value` pairs.
struct Fields<'a, 'w> {
    out: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self
                .out
                .write_char(',')
                .and_then(|()| json_string(self.out, field.name()))
                .and_then(|()| self.out.write_char(':'))
                .and_then(|()| value(self.out));
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |out| json_string(out, value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| write!(out, "{value}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| write!(out, "{value}"));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.field(field, |out| write!(out, "{value}"));
        } else {
            self.field(field, |out| out.write_str("null"));
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| write!(out, "{value}"));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value}")?;
            out.write_char('"')
        });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_text_is_a_json_string() {
        let mut out = String::new();
        json_string(&mut out, "a \"quoted\" \\ line\nwith\ttabs and \u{1} and é").expect("write");
        let parsed: String = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(parsed, "a \"quoted\" \\ line\nwith\ttabs and \u{1} and é");
    }
}
