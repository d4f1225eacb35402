//! Connecting to Orderly the way its services connect to each other: a [`Client`] built once (an
//! endpoint, a connect timeout, a default deadline for every call, a bearer token, TLS), whose
//! typed service clients share one connection, with retries for the calls that may be repeated
//! (reads, and writes that carry an idempotency key) and streams over paged lists.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use orderly::client::Client;
//! use orderly::users::v1::GetUserRequest;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder("http://127.0.0.1:50051") // users' gRPC port, not the REST one
//!     .timeout(Duration::from_secs(2))
//!     .bearer_token(std::env::var("ORDERLY_TOKEN")?)
//!     .connect()
//!     .await?;
//! let id = "0193a5b2-7c1e-7d30-9f41-2b8c6d0e4a17".to_owned();
//! // A read: retried on UNAVAILABLE (and whatever asks for a retry), with backoff.
//! let user = client
//!     .retry(|| async { client.users().get_user(GetUserRequest { id: id.clone() }).await })
//!     .await
//!     .map_err(orderly::error::Error::from)?;
//! println!("{:?}", user.into_inner().user);
//! # Ok(())
//! # }
//! ```
//!
//! Retries and deadlines are written here rather than taken from tower: a retried gRPC call must
//! be made again from its message (an HTTP body cannot be replayed), and the delay must honour the
//! server's `RetryInfo`, which tower's policies know nothing of.

use std::collections::VecDeque;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use futures_util::Stream;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::catalog::v1::{CatalogServiceClient, ListProductsRequest, Product};
use crate::error::StatusExt;
use crate::orders::v1::{ListOrdersRequest, Order, OrderServiceClient, WatchOrderRequest};
use crate::users::v1::{ListUsersRequest, User, UserServiceClient};

/// Why a [`Client`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not a URL a channel can use.
    #[error("{url:?} is not an endpoint: {reason}")]
    InvalidEndpoint {
        /// The endpoint given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The token cannot travel in a header (it has characters a header may not carry).
    #[error("the bearer token is not a valid header value")]
    InvalidToken,
    /// Metadata to send with every call that cannot travel as a header.
    #[error("metadata {0:?} is not a valid header name and value")]
    InvalidMetadata(String),
    /// Nothing answered at the endpoint (refused, unreachable, or not within the connect timeout).
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The endpoint.
        url: String,
        /// Why, with the causes the transport gave.
        reason: String,
    },
}

/// How calls made through [`Client::retry`] are retried: up to `max_attempts` in all, waiting a
/// random time up to `initial_backoff × 2^retry` (capped at `max_backoff`: "full jitter"), or
/// longer if the server's `RetryInfo` asks, and only while the status [is retryable]
/// (UNAVAILABLE, or one that carries a retry delay).
///
/// [is retryable]: crate::error::StatusExt::is_retryable
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The most calls made, the first included (1: no retries).
    pub max_attempts: u32,
    /// The cap of the first retry's wait.
    pub initial_backoff: Duration,
    /// The most any one wait may be.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Ten attempts, waits capped at 20 ms doubling to 1 s: a service failing three calls in ten
    /// still answers each one (0.3¹⁰ ≈ 6·10⁻⁶ of them fail), within about 3 s at worst.
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// No retries: every call is made once.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The cap of the wait before retry `retry` (0 for the first): `initial_backoff × 2^retry`,
    /// at most `max_backoff`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// A random wait in `[0, ceiling(retry)]` ("full jitter"), so that callers who failed together
    /// do not retry together.
    pub fn jittered(&self, retry: u32) -> Duration {
        self.ceiling(retry).mul_f64(random_fraction())
    }

    /// How long to wait before retry number `retry` (0 for the first) after `status`: the
    /// jittered wait, or longer if the server's `RetryInfo` asks.
    pub fn delay(&self, retry: u32, status: &Status) -> Duration {
        let jittered = self.jittered(retry);
        match status.retry_after() {
            Some(asked) => asked.max(jittered),
            None => jittered,
        }
    }
}

/// A number in [0, 1), from the process's random hasher keys.
fn random_fraction() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Puts the bearer token on every call, and the client's default deadline on every call that has
/// none of its own (as `grpc-timeout`, so the server knows its budget too).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    authorization: Option<AsciiMetadataValue>,
    metadata: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
    timeout: Option<Duration>,
}

impl Interceptor for Credentials {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        for (key, value) in &self.metadata {
            request.metadata_mut().insert(key.clone(), value.clone());
        }
        if let Some(timeout) = self.timeout
            && !request.metadata().contains_key("grpc-timeout")
        {
            request.set_timeout(timeout);
        }
        Ok(request)
    }
}

/// The channel every service client of a [`Client`] uses: one connection, with its credentials.
pub type Transport = InterceptedService<Channel, Credentials>;

/// Settings of a [`Client`], from [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    orders_url: Option<String>,
    catalog_url: Option<String>,
    connect_timeout: Duration,
    timeout: Option<Duration>,
    token: Option<String>,
    metadata: Vec<(String, String)>,
    retry: RetryPolicy,
    #[cfg(feature = "tls")]
    tls: Option<tonic::transport::ClientTlsConfig>,
}

impl ClientBuilder {
    /// Calls OrderService at `url` instead of the builder's address (under `orderly up` each
    /// service has a port of its own: users 50051, orders 50052).
    pub fn orders_url(mut self, url: impl Into<String>) -> Self {
        self.orders_url = Some(url.into());
        self
    }

    /// Calls CatalogService at `url` instead of the builder's address (under `orderly up`: port
    /// 50055).
    pub fn catalog_url(mut self, url: impl Into<String>) -> Self {
        self.catalog_url = Some(url.into());
        self
    }

    /// How long connecting may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The deadline of every call that sets none itself (default 10 s); a call's own deadline
    /// (`Request::set_timeout`), shorter or longer, wins. Past it the call fails with a status
    /// whose [`StatusExt::is_deadline`] is true.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends `token` as `authorization: Bearer <token>` on every call.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Sends `key: value` (ASCII metadata) on every call, e.g. a tenant or a client version.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// How [`Client::retry`] retries (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Speaks TLS with `config` (an `https://` endpoint): the CA to trust and, for a service that
    /// demands one, the client's certificate.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: tonic::transport::ClientTlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// The endpoint of `url` with the builder's settings.
    fn endpoint(&self, url: &str) -> Result<Endpoint, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidEndpoint {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                "it must start with http:// or https:// (e.g. http://127.0.0.1:50051)",
            ));
        }
        // No `Endpoint::timeout`: it would cap every call at the builder's deadline, a longer one
        // set on a request included. The default deadline travels as each call's `grpc-timeout`
        // instead (see `Credentials`), which the channel's own timer and the server both honour.
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|error| invalid(&causes(&error)))?
            .connect_timeout(self.connect_timeout);
        #[cfg(feature = "tls")]
        let endpoint = match &self.tls {
            Some(tls) => endpoint
                .tls_config(tls.clone())
                .map_err(|error| invalid(&causes(&error)))?,
            None => endpoint,
        };
        Ok(endpoint)
    }

    /// What every call carries.
    fn credentials(&self) -> Result<Credentials, ClientError> {
        let authorization = match &self.token {
            Some(token) => Some(
                MetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| ClientError::InvalidToken)?,
            ),
            None => None,
        };
        let metadata = self
            .metadata
            .iter()
            .map(|(key, value)| {
                let invalid = || ClientError::InvalidMetadata(key.clone());
                Ok((
                    AsciiMetadataKey::from_bytes(key.as_bytes()).map_err(|_| invalid())?,
                    AsciiMetadataValue::try_from(value.as_str()).map_err(|_| invalid())?,
                ))
            })
            .collect::<Result<_, ClientError>>()?;
        Ok(Credentials {
            authorization,
            metadata,
            timeout: self.timeout,
        })
    }

    /// What every call of the client will carry, and how it retries.
    #[cfg(feature = "testing")]
    pub(crate) fn settings(&self) -> Result<(Credentials, RetryPolicy), ClientError> {
        Ok((self.credentials()?, self.retry))
    }

    /// Connects now: fails at once if nothing answers at an endpoint.
    pub async fn connect(self) -> Result<Client, ClientError> {
        let credentials = self.credentials()?;
        let main = self.connect_to(&self.url).await?;
        let orders = match &self.orders_url {
            Some(url) => Some(self.connect_to(url).await?),
            None => None,
        };
        let catalog = match &self.catalog_url {
            Some(url) => Some(self.connect_to(url).await?),
            None => None,
        };
        Ok(Client::with_channels(
            &credentials,
            self.retry,
            main,
            orders,
            catalog,
        ))
    }

    /// Connects at the first call (and again after the connection is lost).
    pub fn connect_lazy(self) -> Result<Client, ClientError> {
        let credentials = self.credentials()?;
        let lazy = |url: &String| Ok::<_, ClientError>(self.endpoint(url)?.connect_lazy());
        let main = lazy(&self.url)?;
        let orders = self.orders_url.as_ref().map(lazy).transpose()?;
        let catalog = self.catalog_url.as_ref().map(lazy).transpose()?;
        Ok(Client::with_channels(
            &credentials,
            self.retry,
            main,
            orders,
            catalog,
        ))
    }

    /// A channel to `url`, connected now.
    async fn connect_to(&self, url: &str) -> Result<Channel, ClientError> {
        self.endpoint(url)?
            .connect()
            .await
            .map_err(|error| ClientError::Connect {
                url: url.to_owned(),
                reason: causes(&error),
            })
    }
}

/// An error and its causes on one line: tonic's transport error alone says "transport error".
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A connection to Orderly (a service, or several behind one address) and the typed clients
/// over it. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    transport: Transport,
    orders: Option<Transport>,
    catalog: Option<Transport>,
    retry: RetryPolicy,
}

impl Client {
    /// Settings for a client of the service at `url` (`http://host:port`, or `https://` with the
    /// `tls` feature): connect timeout 5 s, call deadline 10 s, no token, default retries.
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            orders_url: None,
            catalog_url: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Some(Duration::from_secs(10)),
            token: None,
            metadata: Vec::new(),
            retry: RetryPolicy::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// A client over `channel` (any tonic channel: an in-memory one in tests, say), with
    /// `credentials` on every call and `retry` for [`Client::retry`].
    pub fn over(channel: Channel, credentials: Credentials, retry: RetryPolicy) -> Self {
        Self::with_channels(&credentials, retry, channel, None, None)
    }

    /// A client over `main`, and over `orders` and `catalog` for those services where they have
    /// addresses of their own.
    fn with_channels(
        credentials: &Credentials,
        retry: RetryPolicy,
        main: Channel,
        orders: Option<Channel>,
        catalog: Option<Channel>,
    ) -> Self {
        let over = |channel| InterceptedService::new(channel, credentials.clone());
        Self {
            transport: over(main),
            orders: orders.map(over),
            catalog: catalog.map(over),
            retry,
        }
    }

    /// The UserService client.
    pub fn users(&self) -> UserServiceClient<Transport> {
        UserServiceClient::new(self.transport.clone())
    }

    /// The OrderService client.
    pub fn orders(&self) -> OrderServiceClient<Transport> {
        OrderServiceClient::new(self.orders.as_ref().unwrap_or(&self.transport).clone())
    }

    /// The CatalogService client: browsing needs no token; changing products needs an admin's.
    pub fn catalog(&self) -> CatalogServiceClient<Transport> {
        CatalogServiceClient::new(self.catalog.as_ref().unwrap_or(&self.transport).clone())
    }

    /// The connection to the builder's address, with this client's token, metadata and default
    /// deadline on every call (and its TLS): build any generated client over it, e.g.
    /// `PaymentServiceClient::new(client.transport())`, and retry its calls with
    /// [`Client::retry`].
    pub fn transport(&self) -> Transport {
        self.transport.clone()
    }

    /// Makes `call` until it succeeds, fails for good, or the policy's attempts are spent (see
    /// [`RetryPolicy`]); write the call as an `async` block, `|| async { client.users().get_user(
    /// request.clone()).await }`, so that each attempt makes its own service client. Use it for reads and for writes that are safe to repeat: CreateOrder with
    /// its idempotency key, CancelOrder; not for CreateUser, which would make two users.
    pub async fn retry<T, F, Fut>(&self, mut call: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut retry = 0;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(status) if status.is_retryable() && retry + 1 < self.retry.max_attempts => {
                    tokio::time::sleep(self.retry.delay(retry, &status)).await;
                    retry += 1;
                }
                Err(status) => return Err(status),
            }
        }
    }

    /// Every user, page after page (each page read with [`Client::retry`]); `page_size` 0 for
    /// the server's default. Ends after the last page, or with the first error.
    pub fn list_users(&self, page_size: i32) -> impl Stream<Item = Result<User, Status>> + '_ {
        self.pages(move |client, token| async move {
            let request = ListUsersRequest {
                page_size,
                page_token: token,
            };
            let page = client
                .retry(|| async { client.users().list_users(request.clone()).await })
                .await?
                .into_inner();
            Ok((page.users, page.next_page_token))
        })
    }

    /// Every order of `user_id`, newest first, page after page, as [`Client::list_users`].
    pub fn list_orders(
        &self,
        user_id: impl Into<String>,
        page_size: i32,
    ) -> impl Stream<Item = Result<Order, Status>> + '_ {
        let user_id = user_id.into();
        self.pages(move |client, token| {
            let request = ListOrdersRequest {
                user_id: user_id.clone(),
                page_size,
                page_token: token,
            };
            async move {
                let page = client
                    .retry(|| async { client.orders().list_orders(request.clone()).await })
                    .await?
                    .into_inner();
                Ok((page.orders, page.next_page_token))
            }
        })
    }

    /// Every product whose SKU, name or description contains `query` ("" for all), in SKU order,
    /// page after page, as [`Client::list_users`].
    pub fn list_products(
        &self,
        query: impl Into<String>,
        page_size: i32,
    ) -> impl Stream<Item = Result<Product, Status>> + '_ {
        let query = query.into();
        self.pages(move |client, token| {
            let request = ListProductsRequest {
                query: query.clone(),
                page_size,
                page_token: token,
            };
            async move {
                let page = client
                    .retry(|| async { client.catalog().list_products(request.clone()).await })
                    .await?
                    .into_inner();
                Ok((page.products, page.next_page_token))
            }
        })
    }

    /// The items of the pages `page` reads, given the previous page's token ("" for the first),
    /// until a page comes without a token.
    fn pages<'a, T, P, Fut>(&'a self, page: P) -> impl Stream<Item = Result<T, Status>> + 'a
    where
        T: 'a,
        P: FnMut(&'a Client, String) -> Fut + 'a,
        Fut: Future<Output = Result<(Vec<T>, String), Status>> + 'a,
    {
        // The reader, the items not yet handed out, and the token of the next page (None after
        // the last, or after an error).
        let start = (page, VecDeque::new(), Some(String::new()));
        futures_util::stream::unfold(start, move |(mut page, mut items, mut next)| async move {
            loop {
                if let Some(item) = items.pop_front() {
                    return Some((Ok(item), (page, items, next)));
                }
                let token = next.take()?;
                match page(self, token).await {
                    Ok((found, token)) => {
                        items.extend(found);
                        next = (!token.is_empty()).then_some(token);
                    }
                    Err(status) => return Some((Err(status), (page, items, None))),
                }
            }
        })
    }

    /// Follows the order `id` until it is settled (CONFIRMED, FAILED or CANCELLED, see
    /// [`crate::orders::v1::OrderStatus::is_settled`]) and returns it as it stands then.
    pub async fn watch_until_settled(&self, id: impl Into<String>) -> Result<Order, Status> {
        let request = WatchOrderRequest { id: id.into() };
        let mut stream = self.orders().watch_order(request).await?.into_inner();
        let mut last = None;
        while let Some(update) = stream.message().await? {
            if let Some(order) = update.order {
                let settled = order.status().is_settled();
                last = Some(order);
                if settled {
                    break;
                }
            }
        }
        last.filter(|order| order.status().is_settled())
            .ok_or_else(|| Status::unavailable("the watch ended before the order settled"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            max_attempts: 10,
        };
        let ceilings: Vec<u128> = (0..6).map(|n| policy.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn waits_are_jittered_below_the_ceiling_unless_the_server_asks_for_more() {
        let policy = RetryPolicy::default();
        let waits: Vec<Duration> = (0..100).map(|_| policy.jittered(3)).collect();
        assert!(waits.iter().all(|d| *d <= policy.ceiling(3)));
        assert!(
            waits.windows(2).any(|w| w[0] != w[1]),
            "jittered, not constant"
        );
        let mut details = tonic_types::ErrorDetails::new();
        details.set_retry_info(Some(Duration::from_secs(5)));
        let asked = <Status as tonic_types::StatusExt>::with_error_details(
            tonic::Code::Unavailable,
            "later",
            details,
        );
        assert_eq!(policy.delay(0, &asked), Duration::from_secs(5));
    }
}
