//! What `orderly bench` calls: each scenario prepares what its calls need (users to read, users to
//! order for) and then makes one kind of call, or a weighted mix of them.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use orderly::catalog::v1::{CatalogServiceClient, GetProductRequest, ListProductsRequest};
use orderly::common::v1::Address;
use orderly::orders::v1::{
    CancelOrderRequest, CreateOrderRequest, ListOrdersRequest, OrderLine, OrderServiceClient,
    OrderStatus, WatchOrderRequest,
};
use orderly::users::v1::{CreateUserRequest, GetUserRequest, UserServiceClient};
use orderly_kit::status::code_name;
use tokio::sync::Mutex;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use super::load::{Caller, Outcome};
use super::rest::Pool;

/// The outcome of a gRPC call, with the delay a refusal asked for (RetryInfo).
fn outcome<T>(result: &Result<T, Status>) -> Outcome {
    match result {
        Ok(_) => Outcome::of("OK"),
        Err(status) => Outcome {
            label: Cow::Borrowed(code_name(status.code())),
            retry_after: (status.code() == Code::ResourceExhausted)
                .then(|| status.get_details_retry_info())
                .flatten()
                .and_then(|info| info.retry_delay),
        },
    }
}

/// The `authorization` value every call of this run carries, set once at start.
static AUTHORIZATION: std::sync::OnceLock<tonic::metadata::AsciiMetadataValue> =
    std::sync::OnceLock::new();

/// Makes every call of this run carry `token` as its bearer token.
pub fn carry_token(token: &str) -> anyhow::Result<()> {
    let value = format!("Bearer {}", token.trim())
        .parse()
        .map_err(|_| anyhow::anyhow!("--token is not a valid header value"))?;
    let _ = AUTHORIZATION.set(value);
    Ok(())
}

/// The bearer token of this run, as an `authorization` header value, if one was given.
pub fn authorization() -> Option<&'static str> {
    AUTHORIZATION.get().and_then(|value| value.to_str().ok())
}

/// `message` as a request with a deadline, the run's bearer token, and, when sampled, a trace
/// context.
fn request<M>(message: M, timeout: Duration, traceparent: Option<String>) -> Request<M> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    if let Some(value) = AUTHORIZATION.get() {
        request
            .metadata_mut()
            .insert("authorization", value.clone());
    }
    if let Some(value) = traceparent.and_then(|v| v.parse().ok()) {
        request.metadata_mut().insert("traceparent", value);
    }
    request
}

/// How long the check of a new connection may take.
const CHECK_WITHIN: Duration = Duration::from_secs(5);

/// `count` separate connections to the service `service` at `url`: over mutual TLS as `identity`
/// when given, the first checked with a health check.
pub async fn connect(
    url: &str,
    count: usize,
    identity: Option<&orderly_kit::tls::Identity>,
    service: &str,
) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::new();
    for _ in 0..count.max(1) {
        let endpoint = Endpoint::from_shared(url.to_owned())?.tcp_nodelay(true);
        let connected = match identity {
            Some(identity) => {
                let connector =
                    orderly_kit::tls::client::Connector::new(identity.clone(), service)?;
                endpoint.connect_with_connector(connector).await
            }
            None => endpoint.connect().await,
        };
        channels
            .push(connected.map_err(|error| anyhow::anyhow!("cannot connect to {url}: {error}"))?);
    }
    // One call says what connecting alone does not: a suite that speaks TLS to a plaintext
    // caller, a certificate it refuses, a REST port.
    if let Some(first) = channels.first() {
        orderly::client::check(first.clone(), url, CHECK_WITHIN)
            .await
            .map_err(|error| {
                anyhow::anyhow!(
                    "{error}\n(orderly bench calls over mutual TLS with the certificates under \
                     --data-dir's tls/ when there are some, or --tls-dir's; --plaintext without)"
                )
            })?;
    }
    Ok(channels)
}

/// Creates `count` users for a run labelled `run`; returns their ids.
pub async fn create_users(
    client: &mut UserServiceClient<Channel>,
    run: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for i in 0..count.max(1) {
        let mut request = Request::new(CreateUserRequest {
            name: format!("Bench {i}"),
            email: format!("bench-{run}-{i}@example.com"),
        });
        if let Some(value) = AUTHORIZATION.get() {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        let user = client
            .create_user(request)
            .await?
            .into_inner()
            .user
            .ok_or_else(|| anyhow::anyhow!("CreateUser answered without a user"))?;
        ids.push(user.id);
    }
    Ok(ids)
}

/// One order of one book of the demo catalog (`orderly up` starts with it), for `user_id`, under
/// `key`: priced by the catalog.
pub fn order(user_id: &str, key: String) -> CreateOrderRequest {
    CreateOrderRequest {
        user_id: user_id.to_owned(),
        items: vec![OrderLine {
            sku: "BOOK-1".into(),
            quantity: 1,
        }],
        expected_total: None,
        shipping_address: Some(Address {
            recipient: "Bench".into(),
            line1: "1 Load Way".into(),
            line2: String::new(),
            city: "Oslo".into(),
            postal_code: "0150".into(),
            country_code: "NO".into(),
        }),
        idempotency_key: key,
    }
}

/// GetUser over a fixed set of users.
#[derive(Debug, Clone)]
pub struct GetUser {
    /// Clients, one per connection.
    pub clients: Arc<[UserServiceClient<Channel>]>,
    /// The users read, in turn.
    pub ids: Arc<[String]>,
    /// Each call's deadline.
    pub timeout: Duration,
}

impl Caller for GetUser {
    fn call(&self, n: u64, traceparent: Option<String>) -> impl Future<Output = Outcome> + Send {
        let i = usize::try_from(n).unwrap_or_default();
        let mut client = self.clients[i % self.clients.len()].clone();
        let id = self.ids[i % self.ids.len()].clone();
        let request = request(GetUserRequest { id }, self.timeout, traceparent);
        async move { outcome(&client.get_user(request).await) }
    }
}

/// CreateOrder, each under a fresh idempotency key.
#[derive(Debug, Clone)]
pub struct CreateOrder {
    /// Clients, one per connection.
    pub clients: Arc<[OrderServiceClient<Channel>]>,
    /// The users who order, in turn.
    pub users: Arc<[String]>,
    /// Makes this run's keys unique.
    pub run: Arc<str>,
    /// Each call's deadline.
    pub timeout: Duration,
}

impl Caller for CreateOrder {
    fn call(&self, n: u64, traceparent: Option<String>) -> impl Future<Output = Outcome> + Send {
        let i = usize::try_from(n).unwrap_or_default();
        let mut client = self.clients[i % self.clients.len()].clone();
        let message = order(
            &self.users[i % self.users.len()],
            format!("{}-{n}", self.run),
        );
        let request = request(message, self.timeout, traceparent);
        async move { outcome(&client.create_order(request).await) }
    }
}

/// GET /v1/users/{id} through the gateway, over HTTP/1.1 keep-alive connections.
#[derive(Debug, Clone)]
pub struct RestGetUser {
    /// The gateway's connections.
    pub pool: Pool,
    /// The users read, in turn.
    pub ids: Arc<[String]>,
}

impl Caller for RestGetUser {
    fn call(&self, n: u64, traceparent: Option<String>) -> impl Future<Output = Outcome> + Send {
        let i = usize::try_from(n).unwrap_or_default();
        let path = format!("/v1/users/{}", self.ids[i % self.ids.len()]);
        let pool = self.pool.clone();
        async move { rest_get(&pool, &path, traceparent).await }
    }
}

/// The outcome of `GET path` through `pool`: the HTTP status, or `CONNECTION_ERROR`.
async fn rest_get(pool: &Pool, path: &str, traceparent: Option<String>) -> Outcome {
    match pool.get(path, traceparent).await {
        Ok(status) => Outcome {
            label: Cow::Owned(status.to_string()),
            retry_after: None,
        },
        Err(_) => Outcome::of("CONNECTION_ERROR"),
    }
}

/// GET of one fixed path through the gateway, over HTTP/1.1 keep-alive connections.
#[derive(Debug, Clone)]
pub struct RestGet {
    /// The gateway's connections.
    pub pool: Pool,
    /// The path and query, e.g. `/v1/orders?user_id=...&page_size=400`.
    pub path: Arc<str>,
}

impl Caller for RestGet {
    fn call(&self, _: u64, traceparent: Option<String>) -> impl Future<Output = Outcome> + Send {
        let (pool, path) = (self.pool.clone(), self.path.clone());
        async move { rest_get(&pool, &path, traceparent).await }
    }
}

/// The storefront's actions, in the order of `--weights`.
pub const ACTIONS: [&str; 6] = [
    "create-user",
    "get-user",
    "browse",
    "list-orders",
    "place-order",
    "cancel-order",
];

/// What a shopper searches the catalog for when browsing (the demo catalog's words).
const SEARCHES: [&str; 6] = ["", "book", "coffee", "pen", "mug", "usb"];

/// A shop's clients at once: each call is one action drawn by weight. Browsing lists a page of the
/// catalog for a search; placing an order first reads the product it buys (one browsing found, or
/// the demo catalog's first book) and orders it at that price, then watches it until it settles;
/// cancelling takes a confirmed order placed earlier in the run.
#[derive(Debug, Clone)]
pub struct Storefront {
    /// Users clients, one per connection.
    pub users: Arc<[UserServiceClient<Channel>]>,
    /// Orders clients, one per connection.
    pub orders: Arc<[OrderServiceClient<Channel>]>,
    /// Catalog clients, one per connection.
    pub catalog: Arc<[CatalogServiceClient<Channel>]>,
    /// SKUs browsing found in stock.
    pub products: Arc<Mutex<Vec<String>>>,
    /// Users that exist (grows as the run creates more).
    pub known_users: Arc<Mutex<Vec<String>>>,
    /// Confirmed orders not cancelled yet.
    pub confirmed: Arc<Mutex<Vec<String>>>,
    /// Weights of [`ACTIONS`].
    pub weights: [u32; ACTIONS.len()],
    /// Makes this run's emails and keys unique.
    pub run: Arc<str>,
    /// Each call's deadline.
    pub timeout: Duration,
}

impl Storefront {
    fn pick(&self) -> &'static str {
        let total: u32 = self.weights.iter().sum();
        let mut draw = fastrand::u32(0..total.max(1));
        for (action, weight) in ACTIONS.iter().zip(self.weights) {
            if draw < weight {
                return action;
            }
            draw -= weight;
        }
        ACTIONS[1]
    }

    async fn some_user(&self) -> String {
        let users = self.known_users.lock().await;
        users
            .get(fastrand::usize(0..users.len().max(1)))
            .cloned()
            .unwrap_or_default()
    }

    async fn act(&self, action: &'static str, n: u64, trace: Option<String>) -> Outcome {
        // With no confirmed order to cancel yet, the shopper browses instead.
        let to_cancel = if action == "cancel-order" {
            self.confirmed.lock().await.pop()
        } else {
            None
        };
        let action = if action == "cancel-order" && to_cancel.is_none() {
            "get-user"
        } else {
            action
        };
        let i = usize::try_from(n).unwrap_or_default();
        let mut users = self.users[i % self.users.len()].clone();
        let mut orders = self.orders[i % self.orders.len()].clone();
        let mut catalog = self.catalog[i % self.catalog.len()].clone();
        let timeout = self.timeout;
        let result: Result<(), Status> = match action {
            "create-user" => {
                let message = CreateUserRequest {
                    name: "Shopper".into(),
                    email: format!("shopper-{}-{n}@example.com", self.run),
                };
                match users.create_user(request(message, timeout, trace)).await {
                    Ok(reply) => {
                        if let Some(user) = reply.into_inner().user {
                            self.known_users.lock().await.push(user.id);
                        }
                        Ok(())
                    }
                    Err(status) => Err(status),
                }
            }
            "list-orders" => {
                let message = ListOrdersRequest {
                    user_id: self.some_user().await,
                    page_size: 10,
                    page_token: String::new(),
                };
                orders
                    .list_orders(request(message, timeout, trace))
                    .await
                    .map(drop)
            }
            "browse" => {
                let message = ListProductsRequest {
                    page_size: 20,
                    page_token: String::new(),
                    query: SEARCHES[fastrand::usize(..SEARCHES.len())].to_owned(),
                };
                match catalog
                    .list_products(request(message, timeout, trace))
                    .await
                {
                    Ok(page) => {
                        let mut known = self.products.lock().await;
                        for product in page.into_inner().products {
                            if product.stock_on_hand > 0 && !known.contains(&product.sku) {
                                known.push(product.sku);
                            }
                        }
                        Ok(())
                    }
                    Err(status) => Err(status),
                }
            }
            "place-order" => {
                let sku = {
                    let known = self.products.lock().await;
                    known
                        .get(fastrand::usize(..known.len().max(1)))
                        .cloned()
                        .unwrap_or_else(|| "BOOK-1".to_owned())
                };
                let key = format!("{}-{n}", self.run);
                match self
                    .priced_order(&mut catalog, &self.some_user().await, &sku, key, timeout)
                    .await
                {
                    Ok(message) => {
                        self.place(&mut orders, request(message, timeout, trace))
                            .await
                    }
                    Err(status) => Err(status),
                }
            }
            "cancel-order" => {
                let message = CancelOrderRequest {
                    id: to_cancel.unwrap_or_default(),
                    reason: "changed my mind".into(),
                };
                orders
                    .cancel_order(request(message, timeout, trace))
                    .await
                    .map(drop)
            }
            _ => {
                let message = GetUserRequest {
                    id: self.some_user().await,
                };
                users
                    .get_user(request(message, timeout, trace))
                    .await
                    .map(drop)
            }
        };
        let outcome = outcome(&result);
        Outcome {
            label: Cow::Owned(format!("{action}:{}", outcome.label)),
            ..outcome
        }
    }

    /// An order of one `sku` for `user_id` under `key`, at the price the catalog shows for it now
    /// (as a shop's page would): read first, then sent as the expected total.
    async fn priced_order(
        &self,
        catalog: &mut CatalogServiceClient<Channel>,
        user_id: &str,
        sku: &str,
        key: String,
        timeout: Duration,
    ) -> Result<CreateOrderRequest, Status> {
        let message = GetProductRequest {
            sku: sku.to_owned(),
        };
        let product = catalog
            .get_product(request(message, timeout, None))
            .await?
            .into_inner()
            .product;
        let mut order = order(user_id, key);
        order.items[0].sku = sku.to_owned();
        order.expected_total = product.and_then(|p| p.price);
        Ok(order)
    }

    /// Places an order and follows it until it settles; a confirmed one may be cancelled later.
    async fn place(
        &self,
        orders: &mut OrderServiceClient<Channel>,
        request: Request<CreateOrderRequest>,
    ) -> Result<(), Status> {
        let mut placed = orders
            .create_order(request)
            .await?
            .into_inner()
            .order
            .unwrap_or_default();
        if placed.status() == OrderStatus::Pending {
            let watch = WatchOrderRequest {
                id: placed.id.clone(),
            };
            let mut stream = orders.watch_order(watch).await?.into_inner();
            while let Some(update) = stream.message().await? {
                if let Some(order) = update.order {
                    placed = order;
                }
            }
        }
        if placed.status() == OrderStatus::Confirmed {
            self.confirmed.lock().await.push(placed.id);
        }
        Ok(())
    }
}

impl Caller for Storefront {
    fn call(&self, n: u64, traceparent: Option<String>) -> impl Future<Output = Outcome> + Send {
        let action = self.pick();
        let this = self.clone();
        async move { this.act(action, n, traceparent).await }
    }
}
