//! Observability of the running suite (`orderly up` as a child process): one trace across every
//! hop, received by a real OTLP collector running in this test; logs that name the same trace;
//! metrics that count the calls on both ends; and a dead collector that costs the calls nothing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use orderly::orders::v1::{OrderServiceClient, OrderStatus};
use orderly::users::v1::{CreateUserRequest, GetUserRequest};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::common::{Orderly, PATIENCE, free_port, metric, order_request, scrape, up_args};

/// An OTLP trace collector that keeps every span it receives, and the `service.name` of the
/// resource each came under.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    services: Arc<Mutex<HashMap<Vec<u8>, String>>>,
    arrived: Arc<Notify>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.clone())
                .and_then(|v| v.value);
            let Some(AnyValue::StringValue(service)) = service else {
                return Err(Status::invalid_argument("a resource without service.name"));
            };
            let spans: Vec<Span> = resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|s| s.spans)
                .collect();
            let mut services = self.services.lock().expect("lock");
            for span in &spans {
                services.insert(span.span_id.clone(), service.clone());
            }
            self.spans.lock().expect("lock").extend(spans);
        }
        self.arrived.notify_waiters();
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    async fn start() -> (Self, SocketAddr) {
        let collector = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming),
        );
        (collector, addr)
    }

    /// The `service.name` that `span` was exported under.
    fn service_of(&self, span: &Span) -> String {
        self.services
            .lock()
            .expect("lock")
            .get(&span.span_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until the spans of `trace_id` include a span of every name and kind in `wanted`
    /// (each service's arrive in exports of their own); returns them.
    async fn trace(&self, trace_id: &[u8], wanted: &[(&str, SpanKind)]) -> Vec<Span> {
        let wait = async {
            loop {
                let arrived = self.arrived.notified();
                let spans: Vec<Span> = self
                    .spans
                    .lock()
                    .expect("lock")
                    .iter()
                    .filter(|s| s.trace_id == trace_id)
                    .cloned()
                    .collect();
                let arrived_all = wanted.iter().all(|(name, kind)| {
                    spans
                        .iter()
                        .any(|s| s.name == *name && s.kind == *kind as i32)
                });
                if arrived_all {
                    return spans;
                }
                arrived.await;
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .expect("every span of the trace arrives")
    }
}

fn attribute(span: &Span, key: &str) -> Option<AnyValue> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.clone())
        .and_then(|v| v.value)
}

fn find<'a>(spans: &'a [Span], name: &str, kind: SpanKind) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name && s.kind == kind as i32)
        .unwrap_or_else(|| panic!("no {kind:?} span {name}"))
}

async fn start_suite(data: &std::path::Path, otlp: &str, extra_env: &[(&str, &str)]) -> Orderly {
    let args = up_args(data.to_str().expect("utf-8 path"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
        ("OTEL_TRACES_SAMPLER", "always_on"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ];
    env.extend_from_slice(extra_env);
    Orderly::start_with_env(&args, &crate::common::EVERYTHING_UP_SERVES, &env).await
}

/// A request that continues the trace `trace_id` from the span `parent` (W3C traceparent).
fn traced<T>(message: T, trace_id: &str, parent: &str) -> Request<T> {
    let mut request = Request::new(message);
    let header = format!("00-{trace_id}-{parent}-01");
    request
        .metadata_mut()
        .insert("traceparent", header.parse().expect("ascii"));
    request
}

/// The bytes of a hex string, as OTLP carries trace and span ids.
fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn one_create_order_is_one_trace_through_every_service_and_its_logs() {
    let (collector, collector_addr) = Collector::start().await;
    let data = tempfile::tempdir().expect("data dir");
    let mut suite = start_suite(data.path(), &format!("http://{collector_addr}"), &[]).await;
    let mut users = suite.users().await;
    let user = users
        .create_user(CreateUserRequest {
            name: "Traced".into(),
            email: "traced@example.com".into(),
        })
        .await
        .expect("user")
        .into_inner()
        .user
        .expect("user")
        .id;
    let mut orders = OrderServiceClient::new(suite.channel_to("OrderService").await);

    // The client's own span: the root of the trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let placed = orders
        .create_order(traced(
            order_request(&user, "traced-1"),
            trace_id,
            client_span,
        ))
        .await
        .expect("order");
    assert_eq!(
        placed.into_inner().order.expect("order").status(),
        OrderStatus::Confirmed
    );

    let trace_bytes: Vec<u8> = unhex(trace_id);
    let names = [
        "orderly.orders.v1.OrderService/CreateOrder",
        "orderly.users.v1.UserService/GetUser",
        "orderly.payments.v1.PaymentService/Charge",
        "orderly.delivery.v1.DeliveryService/ScheduleDelivery",
    ];
    let mut wanted = vec![(names[0], SpanKind::Server)];
    for name in &names[1..] {
        wanted.extend([(*name, SpanKind::Client), (*name, SpanKind::Server)]);
    }
    let spans = collector.trace(&trace_bytes, &wanted).await;
    assert!(
        spans.iter().all(|s| s.trace_id == trace_bytes),
        "one trace id"
    );

    // The latency histograms link to this exported trace: an OpenMetrics scrape carries its id as
    // the exemplar of CreateOrder's bucket (and of the calls it made); a plain-text scrape has none.
    let openmetrics = orderly_kit::http::client::request(
        suite.admin,
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
        b"",
        PATIENCE,
    )
    .await
    .expect("scrape");
    assert_eq!(
        openmetrics.header("content-type"),
        Some(orderly_kit::observe::exemplars::OPENMETRICS)
    );
    assert!(openmetrics.body.ends_with("# EOF\n"));
    let exemplar = format!("# {{trace_id=\"{trace_id}\"}}");
    let linked: Vec<&str> = openmetrics
        .body
        .lines()
        .filter(|line| line.contains(&exemplar))
        .collect();
    assert!(
        linked.iter().any(
            |line| line.starts_with("rpc_server_duration_seconds_bucket{")
                && line.contains("rpc_method=\"CreateOrder\"")
        ),
        "{linked:#?}"
    );
    assert!(
        linked.iter().any(
            |line| line.starts_with("rpc_client_duration_seconds_bucket{")
                && line.contains("rpc_method=\"Charge\"")
        ),
        "{linked:#?}"
    );
    let (_, plain) = crate::common::http_get(suite.admin, "/metrics").await;
    assert!(
        !plain.contains("# {trace_id"),
        "plain text carries no exemplars"
    );

    let orders_server = find(&spans, names[0], SpanKind::Server);
    assert_eq!(
        hex(&orders_server.parent_span_id),
        client_span,
        "orders continues the client's trace"
    );
    assert_eq!(
        attribute(orders_server, "rpc.system"),
        Some(AnyValue::StringValue("grpc".into()))
    );
    assert_eq!(
        attribute(orders_server, "rpc.method"),
        Some(AnyValue::StringValue("CreateOrder".into()))
    );
    assert_eq!(
        attribute(orders_server, "rpc.grpc.status_code"),
        Some(AnyValue::IntValue(0))
    );
    // `orderly up` serves all four in one process; each reports as itself, its calls out included.
    assert_eq!(collector.service_of(orders_server), "orderly-orders");
    for (name, service) in
        names[1..]
            .iter()
            .zip(["orderly-users", "orderly-payments", "orderly-delivery"])
    {
        let client = find(&spans, name, SpanKind::Client);
        let server = find(&spans, name, SpanKind::Server);
        assert_eq!(collector.service_of(client), "orderly-orders", "{name}");
        assert_eq!(collector.service_of(server), service, "{name}");
        assert_eq!(
            client.parent_span_id, orders_server.span_id,
            "{name}: called from within CreateOrder"
        );
        assert_eq!(
            server.parent_span_id, client.span_id,
            "{name}: served as a child of the call"
        );
        assert_eq!(
            attribute(server, "rpc.grpc.status_code"),
            Some(AnyValue::IntValue(0)),
            "{name}"
        );
        assert_ne!(
            server.status.as_ref().map(|s| s.code),
            Some(StatusCode::Error as i32)
        );
    }

    // A failing call marks its span: the user lookup for an unknown user.
    let failing_trace = "0af7651916cd43dd8448eb211c80319c";
    let stranger = uuid::Uuid::now_v7().to_string();
    let refused = orders
        .create_order(traced(
            order_request(&stranger, "traced-2"),
            failing_trace,
            client_span,
        ))
        .await;
    assert_eq!(
        refused.expect_err("unknown user").code(),
        tonic::Code::FailedPrecondition
    );
    let failing_bytes: Vec<u8> = unhex(failing_trace);
    let spans = collector
        .trace(&failing_bytes, &[(names[1], SpanKind::Client)])
        .await;
    let lookup = find(&spans, names[1], SpanKind::Client);
    assert_eq!(
        lookup.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32),
        "the failed call is an error"
    );
    assert_eq!(
        attribute(lookup, "rpc.grpc.status_code"),
        Some(AnyValue::IntValue(5))
    );

    // The logs of the order name the trace the collector received.
    let logged = suite.log("order accepted").await;
    assert_eq!(logged["trace_id"], trace_id);
    assert!(logged["span_id"].as_str().is_some_and(|s| s.len() == 16));

    suite.signal(Signal::SIGTERM);
    assert!(suite.exit().await.success());
}

#[tokio::test]
async fn a_rest_request_continues_the_callers_trace_through_the_gateway() {
    let (collector, collector_addr) = Collector::start().await;
    let data = tempfile::tempdir().expect("data dir");
    let mut suite = start_suite(data.path(), &format!("http://{collector_addr}"), &[]).await;
    let trace_id = "5cf92f3577b34da6a3ce929d0e0e4736";
    let caller = "10f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{caller}-01");
    let body = br#"{"name": "Traced", "email": "rest-traced@example.com"}"#;
    let created = orderly_kit::http::client::request(
        suite.addrs["gateway"],
        "POST",
        "/v1/users",
        &[
            ("Content-Type", "application/json"),
            ("traceparent", &traceparent),
        ],
        body,
        PATIENCE,
    )
    .await
    .expect("gateway answers");
    assert_eq!(created.status, 201, "{}", created.body);

    let trace_bytes: Vec<u8> = unhex(trace_id);
    let call = "orderly.users.v1.UserService/CreateUser";
    let spans = collector
        .trace(
            &trace_bytes,
            &[
                ("POST /v1/users", SpanKind::Server),
                (call, SpanKind::Client),
                (call, SpanKind::Server),
            ],
        )
        .await;
    let route = find(&spans, "POST /v1/users", SpanKind::Server);
    assert_eq!(
        hex(&route.parent_span_id),
        caller,
        "the gateway continues the caller's trace"
    );
    assert_eq!(
        attribute(route, "http.route"),
        Some(AnyValue::StringValue("/v1/users".into()))
    );
    assert_eq!(
        attribute(route, "http.response.status_code"),
        Some(AnyValue::IntValue(201))
    );
    let client = find(&spans, call, SpanKind::Client);
    let server = find(&spans, call, SpanKind::Server);
    assert_eq!(
        client.parent_span_id, route.span_id,
        "called from within the route"
    );
    assert_eq!(collector.service_of(route), "orderly-gateway");
    assert_eq!(collector.service_of(client), "orderly-gateway");
    assert_eq!(collector.service_of(server), "orderly-users");
    assert_eq!(
        server.parent_span_id, client.span_id,
        "served as a child of the call"
    );

    suite.signal(Signal::SIGTERM);
    assert!(suite.exit().await.success());
}

#[tokio::test]
async fn metrics_count_every_call_on_both_ends() {
    let data = tempfile::tempdir().expect("data dir");
    let mut suite = start_suite(data.path(), "", &[("OTEL_SDK_DISABLED", "true")]).await;
    let mut users = suite.users().await;
    let user = users
        .create_user(CreateUserRequest {
            name: "Counted".into(),
            email: "counted@example.com".into(),
        })
        .await
        .expect("user")
        .into_inner()
        .user
        .expect("user")
        .id;
    let mut orders = OrderServiceClient::new(suite.channel_to("OrderService").await);
    let placed = 7;
    for i in 0..placed {
        orders
            .create_order(order_request(&user, &format!("counted-{i}")))
            .await
            .expect("order");
    }
    let not_found = users
        .get_user(GetUserRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await;
    assert_eq!(
        not_found.expect_err("unknown").code(),
        tonic::Code::NotFound
    );

    let seen = scrape(suite.admin).await;
    let server = |service: &str, method: &str, code: &str| {
        metric(
            &seen,
            "rpc_server_duration_seconds",
            &[
                ("rpc_service", service),
                ("rpc_method", method),
                ("rpc_grpc_status_code", code),
            ],
        )
    };
    let client = |service: &str, method: &str| {
        metric(
            &seen,
            "rpc_client_duration_seconds",
            &[
                ("rpc_service", service),
                ("rpc_method", method),
                ("rpc_grpc_status_code", "0"),
            ],
        )
    };
    let placed = f64::from(placed);
    assert_eq!(
        server("orderly.orders.v1.OrderService", "CreateOrder", "0"),
        placed
    );
    // What became of them: all confirmed, none compensated.
    let settled =
        |status: &str| metric(&seen, "orderly_orders_settled_total", &[("status", status)]);
    assert_eq!(settled("CONFIRMED"), placed);
    assert_eq!(settled("FAILED"), 0.0);
    assert_eq!(
        metric(&seen, "orderly_orders_compensations_total", &[]),
        0.0
    );
    assert_eq!(
        server("orderly.payments.v1.PaymentService", "Charge", "0"),
        placed
    );
    assert_eq!(
        server(
            "orderly.delivery.v1.DeliveryService",
            "ScheduleDelivery",
            "0"
        ),
        placed
    );
    assert_eq!(
        server("orderly.users.v1.UserService", "GetUser", "0"),
        placed,
        "orders' user checks"
    );
    assert_eq!(
        server("orderly.users.v1.UserService", "GetUser", "5"),
        1.0,
        "the unknown user"
    );
    assert_eq!(
        client("orderly.payments.v1.PaymentService", "Charge"),
        placed
    );
    assert_eq!(
        client("orderly.delivery.v1.DeliveryService", "ScheduleDelivery"),
        placed
    );
    assert_eq!(client("orderly.users.v1.UserService", "GetUser"), placed);
    assert_eq!(
        metric(
            &seen,
            "rpc_server_requests_in_flight",
            &[("rpc_service", "orderly.orders.v1.OrderService")]
        ),
        0.0
    );
    assert!(
        metric(
            &seen,
            "orderly_db_pool_connections",
            &[("database", "orders")]
        ) >= 1.0,
        "pool gauges"
    );
    assert_eq!(
        crate::common::http_get(suite.admin, "/healthz").await.0,
        200
    );
    assert_eq!(
        crate::common::http_get(suite.admin, "/readyz").await.0,
        200,
        "every server is SERVING"
    );
    assert_eq!(crate::common::http_get(suite.admin, "/nope").await.0, 404);

    suite.signal(Signal::SIGTERM);
    assert!(suite.exit().await.success());
}

#[tokio::test]
async fn a_dead_collector_costs_the_calls_nothing() {
    let data = tempfile::tempdir().expect("data dir");
    // Nothing listens on this port.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let mut suite = start_suite(data.path(), &nowhere, &[]).await;
    let mut users = suite.users().await;
    let id = users
        .create_user(CreateUserRequest {
            name: "Alone".into(),
            email: "alone@example.com".into(),
        })
        .await
        .expect("user")
        .into_inner()
        .user
        .expect("user")
        .id;
    let mut slowest = Duration::ZERO;
    for _ in 0..50 {
        let started = Instant::now();
        users
            .get_user(GetUserRequest { id: id.clone() })
            .await
            .expect("served without a collector");
        slowest = slowest.max(started.elapsed());
    }
    eprintln!("slowest of 50 calls with the collector down: {slowest:?}");
    // The exporter's connect timeout alone is seconds; calls never wait for it.
    assert!(slowest < Duration::from_millis(250), "{slowest:?}");
    suite.signal(Signal::SIGTERM);
    assert!(suite.exit().await.success());
}

#[tokio::test]
async fn every_counter_family_is_exported_at_zero_before_anything_happens() {
    let data = tempfile::tempdir().expect("data dir");
    let suite = start_suite(data.path(), "", &[("OTEL_SDK_DISABLED", "true")]).await;
    let scrape = scrape(suite.admin).await;
    let families = [
        ("orderly_client_retries_total", 10),
        ("orderly_client_retry_budget_exhausted_total", 4),
        ("orderly_circuit_breaker_rejected_total", 10),
        ("orderly_circuit_breaker_transitions_total", 30),
        ("orderly_connections_closed_total", 6),
        ("orderly_server_auth_refused_total", 4),
        ("orderly_server_rate_limited_total", 4),
        ("orderly_server_shed_total", 4),
        ("orderly_http_rate_limited_total", 1),
        ("orderly_http_shed_total", 1),
        ("orderly_orders_settled_total", 3),
        ("orderly_orders_compensations_total", 1),
        ("orderly_orders_recoveries_total", 3),
    ];
    for (family, at_least) in families {
        let series: Vec<_> = scrape
            .samples
            .iter()
            .filter(|sample| sample.metric == family)
            .collect();
        assert!(
            series.len() >= at_least,
            "{family}: {} series, expected at least {at_least}",
            series.len()
        );
        assert_eq!(metric(&scrape, family, &[]), 0.0, "{family} at zero");
    }
    // Each service's adaptive limit is there from the start too, at the limit it starts at.
    for service in [
        "orderly.users.v1.UserService",
        "orderly.orders.v1.OrderService",
        "orderly.catalog.v1.CatalogService",
    ] {
        let labels = [("rpc_service", service), ("class", "cheap")];
        assert_eq!(
            metric(&scrape, "orderly_server_concurrency_limit", &labels),
            64.0,
            "{service}"
        );
    }
    // A known label set, as a dashboard would select it.
    let retries = scrape.samples.iter().any(|s| {
        s.metric == "orderly_client_retries_total"
            && s.labels.get("rpc_service") == Some("orderly.payments.v1.PaymentService")
            && s.labels.get("rpc_method") == Some("Charge")
    });
    assert!(retries, "orders' retries of Charge are exported at zero");
}
