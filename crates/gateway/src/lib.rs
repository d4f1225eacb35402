//! The REST/JSON gateway in front of Orderly's gRPC services: `/v1/users`, `/v1/orders` and
//! `/v1/products` in the proto3 JSON mapping, errors as RFC 9457 problem+json, and the OpenAPI 3.1 document of it all at
//! `/openapi.json`, generated from the same route definitions that are served.
//!
//! | module | what it holds |
//! |---|---|
//! | [`api`] | mounting routes and documenting them from one definition |
//! | [`users`], [`orders`], [`products`] | the handlers |
//! | [`json`] | the JSON bodies and their conversions to and from the gRPC messages |
//! | [`body`] | request bodies read in full within a deadline, and JSON bodies whose every failure is a problem |
//! | [`callers`] | bearer tokens verified and per-caller rate limits, before any route |
//! | [`problem`] | problem+json, and the gRPC-to-HTTP status mapping |
//! | [`state`] | the downstream services every handler calls through the kit |
//! | `declared` | what the application's builder starts (feature `declared`) |
//!
//! Every service call goes through the kit's `Downstream`: pooled channels, a deadline, retries
//! for what is safe to repeat, a circuit breaker, client spans carrying the caller's `traceparent`
//! on, and client metrics. Every route has its own server span and RED metrics (`kit::web`).

// Every dependency is used (test builds excepted: they see the dev-dependencies too).
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod api;
pub mod body;
pub mod callers;
#[cfg(feature = "declared")]
pub mod declared;
pub mod json;
pub mod orders;
pub mod problem;
pub mod products;
pub mod schema;
pub mod state;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::BoxError;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use orderly_kit::client::ClientError;
use orderly_kit::client::downstream::DownstreamConfig;
use orderly_kit::conn::ConnectionLimits;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use utoipa::OpenApi as _;

use crate::api::Api;
use crate::problem::Problem;
use crate::state::Gateway;

/// Where the gateway finds the services, and how it treats requests.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// UserService: one URL, a comma-separated list, or `dns://host:port`.
    pub users_url: String,
    /// OrderService, likewise.
    pub orders_url: String,
    /// CatalogService, likewise.
    pub catalog_url: String,
    /// How long a request may take, service calls and retries included.
    pub request_timeout: Duration,
    /// The largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// The most requests handled at once; beyond it requests are refused at once with 429.
    pub max_concurrent_requests: usize,
    /// Retries, retry budget and circuit breakers of the service calls.
    pub calls: DownstreamConfig,
    /// The connection cap and header timeout of the REST port.
    pub connections: ConnectionLimits,
    /// How long requests in flight may take to finish once the gateway is told to stop.
    pub grace_period: Duration,
    /// Token verification and per-caller rate limits (none by default).
    pub callers: callers::Callers,
}

/// The gateway's short name among the services: its spans and its certificate name it so.
pub const SERVICE_NAME: &str = "gateway";

/// How long a REST request may take unless configured otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest REST request body accepted unless configured otherwise, in bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

impl GatewayConfig {
    /// The defaults, for services at `users_url` and `orders_url` (and the catalog at its default
    /// address, `http://127.0.0.1:50055`: set [`GatewayConfig::catalog_url`]).
    pub fn new(users_url: impl Into<String>, orders_url: impl Into<String>) -> Self {
        Self {
            users_url: users_url.into(),
            orders_url: orders_url.into(),
            catalog_url: "http://127.0.0.1:50055".into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_concurrent_requests: 1024,
            calls: DownstreamConfig::default(),
            connections: ConnectionLimits::default(),
            grace_period: Duration::from_secs(10),
            callers: callers::Callers::default(),
        }
    }
}

/// Why the gateway could not run.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A service address is not usable.
    #[error("bad service address: {0}")]
    Client(#[from] ClientError),
    /// The listener failed.
    #[error("gateway server: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Orderly",
        description = "REST/JSON over Orderly's gRPC services. Bodies follow the proto3 JSON mapping; errors are RFC 9457 problem+json.",
    ),
    tags(
        (name = "users", description = "Accounts: sign-up and profiles (orderly.users.v1.UserService)"),
        (name = "orders", description = "Orders and their progress (orderly.orders.v1.OrderService)"),
        (name = "products", description = "The catalog: products, prices, stock (orderly.catalog.v1.CatalogService)"),
        (name = "meta", description = "About this API"),
    )
)]
struct Document;

/// The serialized OpenAPI document, shared by the route that serves it.
#[derive(Debug, Clone)]
struct OpenApiJson(Arc<[u8]>);

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
async fn openapi_json(
    Extension(OpenApiJson(document)): Extension<OpenApiJson>,
) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.to_vec(),
    )
}

/// The methods the OpenAPI document gives each path, for the `Allow` of a 405.
#[derive(Debug)]
struct Allowed(Vec<(Vec<String>, String)>);

impl Allowed {
    /// Each path template of `document`, by segment, with its methods (`GET` with `HEAD`).
    fn of(document: &utoipa::openapi::OpenApi) -> Self {
        let paths = document.paths.paths.iter().map(|(path, item)| {
            let methods: Vec<&str> = [
                ("GET", item.get.is_some()),
                ("HEAD", item.get.is_some() || item.head.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ]
            .into_iter()
            .filter_map(|(method, present)| present.then_some(method))
            .collect();
            let segments = path.split('/').map(str::to_owned).collect();
            (segments, methods.join(","))
        });
        Self(paths.collect())
    }

    /// The methods of the documented path `path` matches, if one does.
    fn methods(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split('/').collect();
        // The most literal template that fits: `{id}:cancel` before `{id}`.
        let literal = |template: &[String]| -> usize {
            template
                .iter()
                .map(|t| {
                    t.split_once('}')
                        .map_or(t.len(), |(_, suffix)| suffix.len())
                })
                .sum()
        };
        self.0
            .iter()
            .filter(|(template, _)| {
                template.len() == segments.len()
                    && template
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| segment_matches(t, s))
            })
            .max_by_key(|(template, _)| literal(template))
            .map(|(_, methods)| methods.clone())
    }
}

/// 405 for `method` on `path`, with the document's methods for the path as `Allow` (axum's own
/// lists every method of the mounted route, and a custom method such as `POST .../{id}:cancel`
/// shares the route of `GET .../{id}`: the document knows better).
fn not_allowed(allowed: &Allowed, method: &Method, path: &str) -> Response {
    let mut response = Problem::method_not_allowed(method.as_str(), path).into_response();
    if let Some(value) = allowed
        .methods(path)
        .and_then(|methods| header::HeaderValue::from_str(&methods).ok())
    {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// A middleware refusing, with 405, a method the document does not give the requested path, before
/// the route mounted there runs: `GET /v1/orders/{id}:cancel` reaches the handler of
/// `GET /v1/orders/{id}` in axum, but only `POST` is documented for it.
async fn documented_method(
    State(allowed): State<Arc<Allowed>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let documented = allowed
        .methods(path)
        .is_none_or(|methods| methods.split(',').any(|m| m == request.method().as_str()));
    if documented {
        next.run(request).await
    } else {
        not_allowed(&allowed, request.method(), path)
    }
}

/// Whether a path segment fits a template segment: `{id}` fits any non-empty segment,
/// `{id}:cancel` one ending in `:cancel`, anything else only itself.
fn segment_matches(template: &str, segment: &str) -> bool {
    match template
        .strip_prefix('{')
        .and_then(|rest| rest.split_once('}'))
    {
        Some((_, suffix)) => {
            segment.len() > suffix.len()
                && segment.ends_with(suffix)
                && (!suffix.is_empty() || !segment.is_empty())
        }
        None => template == segment,
    }
}

/// Every route, mounted and documented.
fn api() -> Api<Arc<Gateway>> {
    Api::new(Document::openapi())
        .route::<users::__path_create_user, _, _>(users::create_user)
        .route::<users::__path_get_user, _, _>(users::get_user)
        .route::<users::__path_update_user, _, _>(users::update_user)
        .route::<users::__path_delete_user, _, _>(users::delete_user)
        .route::<users::__path_list_users, _, _>(users::list_users)
        .route::<orders::__path_create_order, _, _>(orders::create_order)
        .route::<orders::__path_get_order, _, _>(orders::get_order)
        .route::<orders::__path_list_orders, _, _>(orders::list_orders)
        .route::<orders::__path_cancel_order, _, _>(orders::cancel_order)
        .document::<orders::__path_watch_order_doc>()
        .route::<products::__path_list_products, _, _>(products::list_products)
        .route::<products::__path_get_product, _, _>(products::get_product)
        .route::<products::__path_create_product, _, _>(products::create_product)
        .route::<products::__path_update_product, _, _>(products::update_product)
        .route::<products::__path_adjust_stock, _, _>(products::adjust_stock)
        .route::<__path_openapi_json, _, _>(openapi_json)
}

/// The OpenAPI document of every route, as served: with the services' rules laid over it
/// ([`schema`]).
pub fn openapi() -> serde_json::Value {
    served(&finished().1)
}

/// `document` as JSON, with the services' rules laid over it.
fn served(document: &utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut served = serde_json::to_value(document).unwrap_or_default();
    schema::constrain(&mut served);
    served
}

/// Every route, and the document of them with the bearer scheme declared.
fn finished() -> (Router<Arc<Gateway>>, utoipa::openapi::OpenApi) {
    let (routes, mut document) = api().finish();
    declare_bearer(&mut document);
    (routes, document)
}

/// Whether a `/v1` route may be called without a token: sign-up (`POST /v1/users`), which the
/// users service keeps open unless told to close it, and browsing the catalog (`GET
/// /v1/products...`). The document says so, and the gateway answers a tokenless call to any other
/// route with 401 before looking at its input.
pub fn anonymous_allowed(method: &Method, path: &str) -> bool {
    (method == Method::POST && path == "/v1/users")
        || (method == Method::GET && (path == "/v1/products" || path.starts_with("/v1/products/")))
}

/// Declares the bearer-token scheme (a JWT in `Authorization: Bearer ...`) and which operations
/// take it: every `/v1` operation, optionally for sign-up (`POST /v1/users`), which is open unless
/// the users service closes it. Whether a token is *required* is the services' rules
/// (`crates/<service>/src/access.rs`); a token that is sent is always checked.
fn declare_bearer(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{
        HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };
    use utoipa::openapi::{PathItem, ResponseBuilder};
    document
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    for (path, item) in document.paths.paths.iter_mut() {
        if !path.starts_with("/v1/") {
            continue;
        }
        let PathItem {
            get,
            put,
            post,
            delete,
            patch,
            ..
        } = item;
        for (operation, optional) in [
            (get, anonymous_allowed(&Method::GET, path)),
            (put, anonymous_allowed(&Method::PUT, path)),
            (post, anonymous_allowed(&Method::POST, path)),
            (delete, anonymous_allowed(&Method::DELETE, path)),
            (patch, anonymous_allowed(&Method::PATCH, path)),
        ] {
            let Some(operation) = operation else { continue };
            let bearer = SecurityRequirement::new("bearer", Vec::<String>::new());
            operation.security = Some(if optional {
                vec![SecurityRequirement::default(), bearer]
            } else {
                vec![bearer]
            });
            let responses = &mut operation.responses.responses;
            responses.entry("401".into()).or_insert_with(|| {
                ResponseBuilder::new()
                    .description(
                        "No bearer token, or one that is expired or invalid (problem+json)",
                    )
                    .into()
            });
            responses.entry("403".into()).or_insert_with(|| {
                ResponseBuilder::new()
                    .description("The token's user may not do this (problem+json)")
                    .into()
            });
        }
    }
}

/// The gateway's routes over `gateway`, each behind the caller checks of `callers`, with bodies
/// read in full as `arrival` says before anything else (so a slow one holds no permit) and at most
/// `max_concurrent` requests at once (the rest refused at once with 429: tower's concurrency limit
/// and load shedding); anything else is a problem+json 404 or 405.
pub fn router(
    gateway: Gateway,
    callers: callers::Callers,
    arrival: body::Arrival,
    max_concurrent: usize,
) -> Router {
    let (routes, document) = finished();
    let allowed = Arc::new(Allowed::of(&document));
    // Refusal counters exist at zero from the start, one series per route: dashboards and alerts
    // then read 0, not "no data".
    metrics::counter!("orderly_http_shed_total").absolute(0);
    metrics::counter!("orderly_http_body_timeout_total").absolute(0);
    for route in document.paths.paths.keys() {
        metrics::counter!("orderly_http_rate_limited_total", "http_route" => route.clone())
            .absolute(0);
    }
    let document = OpenApiJson(Arc::from(
        serde_json::to_vec(&served(&document)).unwrap_or_default(),
    ));
    let fallback_allowed = allowed.clone();
    routes
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::new(callers),
            callers::check,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            allowed,
            documented_method,
        ))
        .fallback(|uri: Uri| async move { Problem::no_route(uri.path()) })
        .method_not_allowed_fallback(move |method: Method, uri: Uri| async move {
            not_allowed(&fallback_allowed, &method, uri.path())
        })
        .layer(Extension(document))
        .layer(DefaultBodyLimit::max(arrival.max_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: BoxError| async {
                    metrics::counter!("orderly_http_shed_total").increment(1);
                    Problem::overloaded()
                }))
                .load_shed()
                .concurrency_limit(max_concurrent.max(1)),
        )
        // Outermost: a body arrives before its request counts against the concurrency limit.
        .layer(axum::middleware::from_fn_with_state(
            arrival,
            body::arrive_in_time,
        ))
        .with_state(Arc::new(gateway))
}

/// Serves the gateway on `listener` until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let gateway = Gateway::new(
        &config.users_url,
        &config.orders_url,
        &config.catalog_url,
        &config.calls,
        config.request_timeout,
    )?;
    let arrival = body::Arrival {
        max_bytes: config.max_body_bytes,
        timeout: config.connections.body_timeout,
    };
    let app = router(
        gateway,
        config.callers,
        arrival,
        config.max_concurrent_requests,
    );
    // Announced only once the router (and with it every counter it declares at zero) exists:
    // whoever waits for this line may scrape at once.
    let addr = listener.local_addr()?;
    tracing::info!(%addr, users = %config.users_url, orders = %config.orders_url, catalog = %config.catalog_url, "gateway listening");
    orderly_kit::http::serve(
        listener,
        app,
        config.connections,
        config.grace_period,
        shutdown,
    )
    .await;
    Ok(())
}
