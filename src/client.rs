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
//! // users' gRPC port (not the REST one), over plaintext: `orderly up --insecure-plaintext`.
//! // A default `up` speaks mutual TLS: `Client::local_up("data")` (the `tls` feature).
//! let client = Client::builder("http://127.0.0.1:50051")
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
    /// TLS files (from [`ClientBuilder::tls_dir`]) could not be read.
    #[error("cannot read {path}: {reason}")]
    TlsFiles {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
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
    /// The endpoint did not answer as a gRPC server this client can talk to: nothing listens,
    /// or it speaks another protocol, or the TLS handshake failed ([`ConnectCause`] says which).
    #[error("cannot connect to {url}: {cause}: {detail}")]
    Connect {
        /// The endpoint.
        url: String,
        /// What went wrong, as far as the transport's errors tell.
        cause: ConnectCause,
        /// The transport's own errors, causes included.
        detail: String,
    },
}

/// Why connecting failed, read from the transport's errors: the usual wrong setups, each with
/// what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectCause {
    /// Nothing listens there, or it is unreachable, or it did not answer within the connect timeout.
    Unreachable,
    /// The server speaks TLS and the client did not (an `http://` URL against `orderly up`,
    /// whose services speak mutual TLS).
    TlsExpected,
    /// The client speaks TLS and the server did not (an `https://` URL against a plaintext
    /// server).
    NotTls,
    /// The server demands a client certificate and none (or one it does not trust) was shown.
    ClientCertificateRefused,
    /// The server's certificate does not chain to the CA given, or does not name the host.
    ServerCertificateRefused,
    /// The server speaks HTTP/1.1, not gRPC: a REST port (the gateway's, 8080 under `orderly up`).
    NotGrpc,
    /// Something else; the detail says what.
    Other,
}

impl std::fmt::Display for ConnectCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unreachable => "nothing answered (is the service running, on this port?)",
            Self::TlsExpected => {
                "the server hung up on plaintext HTTP/2, as a TLS server does (orderly up's \
                 services speak mutual TLS): use an https:// URL and .tls_dir(..) or .tls(..) \
                 (Client::local_up for a local `orderly up`)"
            }
            Self::NotTls => "the server does not speak TLS: use an http:// URL without .tls(..)",
            Self::ClientCertificateRefused => {
                "the server demands a client certificate of its CA: give .tls_dir(DIR, NAME) \
                 (`orderly certs --client NAME` writes one) or an identity in .tls(..)"
            }
            Self::ServerCertificateRefused => {
                "the server's certificate is not one the given CA vouches for under this host name"
            }
            Self::NotGrpc => {
                "the server speaks HTTP/1.1, not gRPC: is this the REST port (the gateway's)? \
                 Orderly's gRPC ports are users 50051, orders 50052, catalog 50055"
            }
            Self::Other => "the transport failed",
        })
    }
}

impl ConnectCause {
    /// The cause the transport's error text `detail` (the whole chain, lowercased or not) shows.
    pub fn of(detail: &str) -> Self {
        let detail = detail.to_ascii_lowercase();
        let has = |needles: &[&str]| needles.iter().any(|needle| detail.contains(needle));
        if has(&[
            "certificaterequired",
            "certificate required",
            "handshakefailure",
        ]) && !has(&["invalid peer certificate"])
        {
            Self::ClientCertificateRefused
        } else if has(&[
            "invalid peer certificate",
            "unknownissuer",
            "notvalidforname",
        ]) {
            Self::ServerCertificateRefused
        } else if has(&[
            "invalidcontenttype",
            "invalid content type",
            "corrupt message",
        ]) {
            Self::NotTls
        } else if has(&["http/1", "invalid http version"]) {
            Self::NotGrpc
        } else if has(&[
            "connection refused",
            "timed out",
            "no route to host",
            "network is unreachable",
            "dns error",
        ]) {
            Self::Unreachable
        } else {
            Self::Other
        }
    }
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

/// Where a client's bearer token comes from: fixed when the client was made, or asked of the
/// application on every call (a token it refreshes before it expires).
#[derive(Clone, Default)]
enum Token {
    #[default]
    None,
    Fixed(AsciiMetadataValue),
    Source(std::sync::Arc<dyn Fn() -> Option<String> + Send + Sync>),
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself: clients end up in logs.
        f.write_str(match self {
            Self::None => "None",
            Self::Fixed(_) => "Fixed(..)",
            Self::Source(_) => "Source(..)",
        })
    }
}

/// `Bearer <token>` as a header value.
fn bearer(token: &str) -> Option<AsciiMetadataValue> {
    MetadataValue::try_from(format!("Bearer {token}")).ok()
}

/// Puts the bearer token on every call that carries none of its own, and the client's default
/// deadline on every call that has none of its own (as `grpc-timeout`, so the server knows its
/// budget too).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    token: Token,
    metadata: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
    timeout: Option<Duration>,
}

impl Interceptor for Credentials {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        // A call's own `authorization` (acting as someone else once) wins.
        if !request.metadata().contains_key("authorization") {
            let value = match &self.token {
                Token::None => None,
                Token::Fixed(value) => Some(value.clone()),
                Token::Source(source) => match source() {
                    Some(token) => Some(bearer(&token).ok_or_else(|| {
                        Status::unauthenticated(
                            "the token source gave a token that is not a valid header value",
                        )
                    })?),
                    None => None,
                },
            };
            if let Some(value) = value {
                request.metadata_mut().insert("authorization", value);
            }
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
#[derive(Clone)]
pub struct ClientBuilder {
    url: String,
    orders_url: Option<String>,
    catalog_url: Option<String>,
    connect_timeout: Duration,
    timeout: Option<Duration>,
    token: Option<String>,
    token_source: Option<std::sync::Arc<dyn Fn() -> Option<String> + Send + Sync>>,
    metadata: Vec<(String, String)>,
    retry: RetryPolicy,
    #[cfg(feature = "tls")]
    tls: Option<tonic::transport::ClientTlsConfig>,
    #[cfg(feature = "tls")]
    tls_dir: Option<(std::path::PathBuf, String)>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("orders_url", &self.orders_url)
            .field("catalog_url", &self.catalog_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("token", &self.token.as_ref().map(|_| ".."))
            .field("token_source", &self.token_source.as_ref().map(|_| ".."))
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
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

    /// Sends `token` as `authorization: Bearer <token>` on every call that sets no
    /// `authorization` of its own. [`Client::with_token`] makes a client acting for someone else
    /// over the same connections.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Asks `source` for the token on every call (instead of a fixed [`bearer_token`]): for
    /// tokens the application refreshes before they expire (development tokens last an hour).
    /// It runs on the calling task, so it should return a token held in memory (an
    /// `Arc<RwLock<String>>` a refresher task updates), not fetch one; `None` sends no token.
    ///
    /// [`bearer_token`]: ClientBuilder::bearer_token
    pub fn token_source(
        mut self,
        source: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.token_source = Some(std::sync::Arc::new(source));
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

    /// Speaks mutual TLS with the files of `dir`: its CA (`ca.pem`) and the client certificate
    /// `<name>.pem` with its key `<name>.key`. `orderly up` writes `data/tls/client.pem` for
    /// programs outside the suite; `orderly certs --out DIR --client NAME` writes one of a given
    /// name. Read when connecting; a missing file fails `connect()`.
    #[cfg(feature = "tls")]
    pub fn tls_dir(mut self, dir: impl Into<std::path::PathBuf>, name: impl Into<String>) -> Self {
        self.tls_dir = Some((dir.into(), name.into()));
        self
    }

    /// The TLS configuration: [`ClientBuilder::tls`]'s, else one of [`ClientBuilder::tls_dir`]'s
    /// files.
    #[cfg(feature = "tls")]
    fn tls_config(&self) -> Result<Option<tonic::transport::ClientTlsConfig>, ClientError> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        if let Some(tls) = &self.tls {
            return Ok(Some(tls.clone()));
        }
        let Some((dir, name)) = &self.tls_dir else {
            return Ok(None);
        };
        let read = |file: String| {
            let path = dir.join(file);
            std::fs::read(&path).map_err(|error| ClientError::TlsFiles {
                path: path.display().to_string(),
                reason: error.to_string(),
            })
        };
        Ok(Some(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read("ca.pem".into())?))
                .identity(Identity::from_pem(
                    read(format!("{name}.pem"))?,
                    read(format!("{name}.key"))?,
                )),
        ))
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
        #[cfg(feature = "tls")]
        let tls = self.tls_config()?;
        #[cfg(not(feature = "tls"))]
        let tls: Option<()> = None;
        if tls.is_some() && url.starts_with("http://") {
            return Err(invalid(
                "TLS is configured but the URL is http://: use https:// to speak TLS",
            ));
        }
        if tls.is_none() && url.starts_with("https://") {
            return Err(invalid(if cfg!(feature = "tls") {
                "https:// needs a TLS configuration: .tls(..) or .tls_dir(..)"
            } else {
                "https:// needs the `tls` feature of orderly, and .tls(..) or .tls_dir(..)"
            }));
        }
        // No `Endpoint::timeout`: it would cap every call at the builder's deadline, a longer one
        // set on a request included. The default deadline travels as each call's `grpc-timeout`
        // instead (see `Credentials`), which the channel's own timer and the server both honour.
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|error| invalid(&causes(&error)))?
            .connect_timeout(self.connect_timeout);
        #[cfg(feature = "tls")]
        let endpoint = match tls {
            Some(tls) => endpoint
                .tls_config(tls)
                .map_err(|error| invalid(&causes(&error)))?,
            None => endpoint,
        };
        Ok(endpoint)
    }

    /// What every call carries.
    fn credentials(&self) -> Result<Credentials, ClientError> {
        let token = match (&self.token_source, &self.token) {
            (Some(source), _) => Token::Source(source.clone()),
            (None, Some(token)) => Token::Fixed(bearer(token).ok_or(ClientError::InvalidToken)?),
            (None, None) => Token::None,
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
            token,
            metadata,
            timeout: self.timeout,
        })
    }

    /// What every call of the client will carry, and how it retries.
    #[cfg(feature = "testing")]
    pub(crate) fn settings(&self) -> Result<(Credentials, RetryPolicy), ClientError> {
        Ok((self.credentials()?, self.retry))
    }

    /// Connects now, and checks each endpoint with a health check (answered by every Orderly
    /// server, to any caller): fails at once, with a [`ConnectCause`], if nothing answers or the
    /// setup is wrong (TLS against plaintext, no client certificate, a REST port).
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

    /// A channel to `url`, connected now and checked with a health check.
    async fn connect_to(&self, url: &str) -> Result<Channel, ClientError> {
        let failed = |detail: String| ClientError::Connect {
            url: url.to_owned(),
            cause: ConnectCause::of(&detail),
            detail,
        };
        let channel = self
            .endpoint(url)?
            .connect()
            .await
            .map_err(|error| failed(causes(&error)))?;
        check(channel.clone(), url, self.connect_timeout).await?;
        Ok(channel)
    }
}

/// Checks that `channel` reaches a gRPC server this client can talk to, with one health check
/// (answered by every Orderly server, to any caller that completes the handshake) within
/// `timeout`; fails with a [`ConnectCause`] naming a wrong setup. [`ClientBuilder::connect`] runs
/// it on each address; it is public for channels made otherwise (a load generator's). A TLS 1.3
/// server refuses a client certificate only after the client has finished its side of the
/// handshake, and a server of another protocol answers only once spoken to: one call shows what
/// connecting alone does not.
pub async fn check(channel: Channel, url: &str, timeout: Duration) -> Result<(), ClientError> {
    match tokio::time::timeout(timeout, probe(channel)).await {
        Err(_) => Err(ClientError::Connect {
            url: url.to_owned(),
            cause: ConnectCause::Unreachable,
            detail: format!("no answer to a health check within {timeout:?}"),
        }),
        Ok(Err(status)) if !answered(&status) => {
            let detail = status_causes(&status);
            let cause = match ConnectCause::of(&detail) {
                // A TLS server reads an HTTP/2 preface as a broken handshake and hangs up, or
                // answers with an alert that HTTP/2 reads as an oversized frame; an HTTP/1.1-only
                // server does the same. What each answers to HTTP/1.1 tells them apart.
                ConnectCause::Other if url.starts_with("http://") && hung_up(&detail) => {
                    sniff(url, timeout).await.unwrap_or(ConnectCause::Other)
                }
                cause => cause,
            };
            Err(ClientError::Connect {
                url: url.to_owned(),
                cause,
                detail,
            })
        }
        Ok(_) => Ok(()),
    }
}

/// `grpc.health.v1.HealthCheckRequest`, the one message the connection check sends.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`, the answer it reads (only to see that one came).
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// One health check over `channel` (for the server as a whole).
async fn probe(channel: Channel) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| Status::from_error(Box::new(error)))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
    let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
    grpc.unary(Request::new(HealthCheckRequest::default()), path, codec)
        .await
        .map(|_| ())
}

/// Whether `status` came from a gRPC server (any code it chose, UNIMPLEMENTED from a server
/// without health checks included), rather than from a transport that could not reach one.
fn answered(status: &Status) -> bool {
    std::error::Error::source(status).is_none()
        && !matches!(status.code(), tonic::Code::Unknown | tonic::Code::Internal)
}

/// What the server at `url` (`http://host:port`) answers to a plain HTTP/1.1 request:
/// [`ConnectCause::NotGrpc`] if it answers in HTTP/1, [`ConnectCause::TlsExpected`] if in TLS
/// (an alert) or not at all (it hung up on bytes that are not a TLS handshake).
async fn sniff(url: &str, timeout: Duration) -> Option<ConnectCause> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let uri: tonic::codegen::http::Uri = url.parse().ok()?;
    let authority = uri.authority()?.clone();
    let port = authority.port_u16().unwrap_or(80);
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        let request = format!("GET / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = [0u8; 5];
        let read = stream.read(&mut answer).await.unwrap_or(0);
        Some(answer[..read].to_vec())
    };
    let answer = tokio::time::timeout(timeout, exchange).await.ok()??;
    Some(if answer.starts_with(b"HTTP/") {
        ConnectCause::NotGrpc
    } else {
        ConnectCause::TlsExpected
    })
}

/// Whether the transport's errors say the server closed the connection, or sent bytes that are
/// not HTTP/2 at all.
fn hung_up(detail: &str) -> bool {
    let detail = detail.to_ascii_lowercase();
    [
        "broken pipe",
        "connection reset",
        "connection closed",
        "unexpected eof",
        "frame with invalid size",
    ]
    .iter()
    .any(|needle| detail.contains(needle))
}

/// A status's message and its causes on one line.
fn status_causes(status: &Status) -> String {
    chain(
        status.message().to_owned(),
        std::error::Error::source(status),
    )
}

/// An error and its causes on one line: tonic's transport error alone says "transport error".
fn causes(error: &dyn std::error::Error) -> String {
    chain(error.to_string(), error.source())
}

/// `text`, then each cause from `source` on, each once (tonic repeats "transport error").
fn chain(mut text: String, mut source: Option<&dyn std::error::Error>) -> String {
    let mut last = text.clone();
    while let Some(cause) = source {
        let shown = cause.to_string();
        if !last.ends_with(&shown) {
            text.push_str(": ");
            text.push_str(&shown);
        }
        last = shown;
        source = cause.source();
    }
    text
}

/// A connection to Orderly (a service, or several behind one address) and the typed clients
/// over it. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    main: Channel,
    orders: Option<Channel>,
    catalog: Option<Channel>,
    credentials: Credentials,
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
            token_source: None,
            metadata: Vec::new(),
            retry: RetryPolicy::default(),
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tls")]
            tls_dir: None,
        }
    }

    /// Settings for a client of a local `orderly up` whose data directory is `data_dir` (`"data"`
    /// when it was started from the same directory): users at `https://127.0.0.1:50051`, orders
    /// at 50052, the catalog at 50055, over mutual TLS with the CA and the outside programs'
    /// certificate `up` writes under `data_dir/tls` (`client.pem`). Add a token and connect:
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = orderly::client::Client::local_up("data").bearer_token("eyJ...").connect().await?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "tls")]
    pub fn local_up(data_dir: impl AsRef<std::path::Path>) -> ClientBuilder {
        Self::builder("https://127.0.0.1:50051")
            .orders_url("https://127.0.0.1:50052")
            .catalog_url("https://127.0.0.1:50055")
            .tls_dir(data_dir.as_ref().join("tls"), "client")
    }

    /// The same client (its connections, metadata, deadline and retries) acting as the holder of
    /// `token`: for a backend that calls on behalf of many users, without a connection each.
    pub fn with_token(&self, token: &str) -> Result<Self, ClientError> {
        let token = Token::Fixed(bearer(token).ok_or(ClientError::InvalidToken)?);
        Ok(Self {
            credentials: Credentials {
                token,
                ..self.credentials.clone()
            },
            ..self.clone()
        })
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
        Self {
            main,
            orders,
            catalog,
            credentials: credentials.clone(),
            retry,
        }
    }

    /// `channel` with this client's credentials.
    fn intercepted(&self, channel: &Channel) -> Transport {
        InterceptedService::new(channel.clone(), self.credentials.clone())
    }

    /// The UserService client.
    pub fn users(&self) -> UserServiceClient<Transport> {
        UserServiceClient::new(self.transport())
    }

    /// The OrderService client.
    pub fn orders(&self) -> OrderServiceClient<Transport> {
        OrderServiceClient::new(self.intercepted(self.orders.as_ref().unwrap_or(&self.main)))
    }

    /// The CatalogService client: browsing needs no token; changing products needs an admin's.
    pub fn catalog(&self) -> CatalogServiceClient<Transport> {
        CatalogServiceClient::new(self.intercepted(self.catalog.as_ref().unwrap_or(&self.main)))
    }

    /// The connection to the builder's address, with this client's token, metadata and default
    /// deadline on every call (and its TLS): build any generated client over it, e.g.
    /// `PaymentServiceClient::new(client.transport())`, and retry its calls with
    /// [`Client::retry`].
    pub fn transport(&self) -> Transport {
        self.intercepted(&self.main)
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
