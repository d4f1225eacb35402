//! Several services in one process, each reporting its spans as itself.
//!
//! OpenTelemetry names the emitter of a span by its *resource* (`service.name`), one per tracer
//! provider, while `tracing` has one subscriber per process. `orderly up` runs every service in one
//! process, so without this its traces show one service. Here each server span puts its service
//! into the OpenTelemetry context it starts from ([`Emitter`], set by
//! [`crate::observe::trace::server_parent`]); every span under it inherits that context, a span
//! processor ([`TagEmitter`]) copies the service onto the span when it starts, and the exporter
//! ([`SplitExporter`]) sends each service's spans under a resource of its own, `<process>-<name>`
//! (`orderly-users`, ...). Spans outside any service's call keep the process's resource.
//!
//! Written by hand: neither the SDK nor `tracing-opentelemetry` has a per-span resource, and
//! several providers cannot share one `tracing` subscriber (their layers would fight over the same
//! span extensions).

use std::time::Duration;

use opentelemetry::{Context, Key, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

/// The short name of the service (`users`) whose call a span belongs to: a value of the
/// OpenTelemetry context, inherited by every span started under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emitter(pub &'static str);

/// The attribute that carries a span's [`Emitter`] from its start to the exporter, which removes it.
const EMITTER: &str = "orderly.emitter";

/// A span processor that tags every span started under an [`Emitter`] with it, then hands the
/// span to `inner` (the batch processor in front of a [`SplitExporter`]).
#[derive(Debug)]
pub struct TagEmitter<P> {
    inner: P,
}

impl<P> TagEmitter<P> {
    /// Tags spans, then passes them to `inner`.
    pub fn new(inner: P) -> Self {
        Self { inner }
    }
}

impl<P: SpanProcessor> SpanProcessor for TagEmitter<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        if let Some(Emitter(name)) = cx.get::<Emitter>() {
            opentelemetry::trace::Span::set_attribute(span, KeyValue::new(EMITTER, *name));
        }
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// An exporter that sends the spans tagged by [`TagEmitter`] through one exporter per service,
/// each under the process's resource renamed `<process>-<service>`, and all others through the
/// process's own.
#[derive(Debug)]
pub struct SplitExporter<E> {
    process: E,
    services: Vec<(&'static str, E)>,
}

impl<E: SpanExporter> SplitExporter<E> {
    /// Exports untagged spans through `process`, and each of `services`' spans through the
    /// exporter `make` builds for it.
    pub fn new<Err>(
        process: E,
        services: &[&'static str],
        mut make: impl FnMut() -> Result<E, Err>,
    ) -> Result<Self, Err> {
        let services = services
            .iter()
            .map(|name| Ok((*name, make()?)))
            .collect::<Result<_, Err>>()?;
        Ok(Self { process, services })
    }

    /// Which exporter takes `span`: the index of its service plus one, or 0 for the process's.
    /// Removes the tag, which is no concern of the collector's.
    fn route(&self, span: &mut SpanData) -> usize {
        let Some(at) = span
            .attributes
            .iter()
            .position(|kv| kv.key.as_str() == EMITTER)
        else {
            return 0;
        };
        let tag = span.attributes.swap_remove(at);
        let name = tag.value.as_str();
        self.services
            .iter()
            .position(|(service, _)| *service == name)
            .map_or(0, |index| index + 1)
    }

    fn exporters(&self) -> impl Iterator<Item = &E> {
        std::iter::once(&self.process).chain(self.services.iter().map(|(_, e)| e))
    }
}

impl<E: SpanExporter> SpanExporter for SplitExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut groups: Vec<Vec<SpanData>> =
            (0..=self.services.len()).map(|_| Vec::new()).collect();
        for mut span in batch {
            let index = self.route(&mut span);
            groups[index].push(span);
        }
        let mut result = Ok(());
        for (exporter, spans) in self.exporters().zip(groups) {
            if !spans.is_empty()
                && let Err(error) = exporter.export(spans).await
            {
                result = Err(error);
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.exporters()
            .map(|e| e.shutdown_with_timeout(timeout))
            .fold(Ok(()), Result::and)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.exporters()
            .map(SpanExporter::force_flush)
            .fold(Ok(()), Result::and)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.process.set_resource(resource);
        let process = resource
            .get(&Key::from_static_str("service.name"))
            .map_or_else(|| "orderly".to_owned(), |name| name.as_str().into_owned());
        for (name, exporter) in &mut self.services {
            let renamed = Resource::builder_empty()
                .with_attributes(
                    resource
                        .iter()
                        .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
                )
                .with_service_name(Value::from(format!("{process}-{name}")))
                .build();
            exporter.set_resource(&renamed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
    use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};

    use super::*;

    /// Keeps what it is given, with the service name of the resource it was last given.
    #[derive(Debug, Clone, Default)]
    struct Keep {
        service: Arc<Mutex<String>>,
        spans: Arc<Mutex<Vec<(String, SpanData)>>>,
    }

    impl SpanExporter for Keep {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            let service = self.service.lock().expect("lock").clone();
            let mut spans = self.spans.lock().expect("lock");
            spans.extend(batch.into_iter().map(|span| (service.clone(), span)));
            Ok(())
        }

        fn set_resource(&mut self, resource: &Resource) {
            let name = resource
                .get(&Key::from_static_str("service.name"))
                .map(|v| v.as_str().into_owned())
                .unwrap_or_default();
            // Each exporter gets a Keep of its own; they share the span list.
            *self.service.lock().expect("lock") = name;
        }
    }

    #[test]
    fn each_service_spans_are_exported_under_its_own_name_and_the_rest_under_the_process() {
        let spans: Arc<Mutex<Vec<(String, SpanData)>>> = Arc::default();
        let keep = || Keep {
            service: Arc::default(),
            spans: spans.clone(),
        };
        let exporter = SplitExporter::new(keep(), &["users", "orders"], || Ok::<_, ()>(keep()))
            .expect("built");
        let provider = SdkTracerProvider::builder()
            .with_resource(Resource::builder_empty().with_service_name("shop").build())
            .with_span_processor(TagEmitter::new(
                BatchSpanProcessor::builder(exporter).build(),
            ))
            .build();
        let tracer = provider.tracer("test");

        let users = Context::new().with_value(Emitter("users"));
        let parent = tracer.start_with_context("users call", &users);
        let under = users.with_span(parent);
        tracer.start_with_context("users query", &under);
        drop(under);
        tracer.start_with_context("orders call", &Context::new().with_value(Emitter("orders")));
        tracer.start_with_context("outside", &Context::new());
        tracer.start_with_context("unknown", &Context::new().with_value(Emitter("nobody")));
        provider.force_flush().expect("flushed");

        let mut seen: Vec<(String, String)> = spans
            .lock()
            .expect("lock")
            .iter()
            .map(|(service, span)| {
                assert!(
                    span.attributes.iter().all(|kv| kv.key.as_str() != EMITTER),
                    "the tag is removed before export"
                );
                (span.name.to_string(), service.clone())
            })
            .collect();
        seen.sort();
        let expected = [
            ("orders call", "shop-orders"),
            ("outside", "shop"),
            ("unknown", "shop"),
            ("users call", "shop-users"),
            ("users query", "shop-users"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        assert_eq!(seen, expected);
        provider.shutdown().expect("shut down");
    }
}
