//! Where a downstream's replicas are, and which of them get calls.
//!
//! A downstream address is one URL (`http://users:50051`), a comma-separated list of URLs, or
//! `dns://host:port`, re-resolved every few seconds. One URL is used as it is. Several (or a DNS
//! name) are balanced by tonic's power-of-two-choices balancer, fed by one watcher per replica that
//! follows the replica's `grpc.health.v1` Watch stream: a replica is in rotation only while it
//! reports SERVING, and leaves it the moment it drains, dies, or stops answering.
//!
//! tonic balances over whatever endpoints it is given but does not check their health, and no
//! maintained crate feeds it from health checks, so this module does that one job. It balances
//! with tower's power-of-two-choices over one tonic channel per replica (what tonic's own balancer
//! does), because tonic's cannot dial replicas through a connector, and mutual TLS needs one.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc::{Receiver, Sender};
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::discover::Change;

use super::endpoint::{ClientConfig, ClientError, endpoint};
use crate::tls::client::Connector;

/// The transport under every downstream client: one replica's channel, or a balancer over
/// several.
#[derive(Clone)]
pub enum Transport {
    /// One replica (or a load balancer in front of several).
    Single(Channel),
    /// Several, balanced here.
    Balanced(Balanced),
}

/// Several replicas balanced by pending calls (power of two choices), behind a buffer so it can
/// be cloned.
pub type Balanced = tower::buffer::Buffer<http::Request<Body>, BalancedFuture>;

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(channel) => f.debug_tuple("Single").field(channel).finish(),
            Self::Balanced(_) => f.write_str("Balanced"),
        }
    }
}

type BalancedFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Body>, tower::BoxError>> + Send>>;

impl tower::Service<http::Request<Body>> for Transport {
    type Response = http::Response<Body>;
    type Error = tower::BoxError;
    type Future = TransportFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Self::Single(channel) => channel.poll_ready(cx).map_err(Into::into),
            Self::Balanced(balanced) => balanced.poll_ready(cx),
        }
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self {
            Self::Single(channel) => TransportFuture::Single {
                inner: channel.call(request),
            },
            Self::Balanced(balanced) => TransportFuture::Balanced {
                inner: balanced.call(request),
            },
        }
    }
}

pub use response::TransportFuture;

/// The response future, in a module of its own: pin-project-lite's fields take no doc comments.
#[allow(missing_docs)]
mod response {
    use super::BalancedFuture;

    pin_project_lite::pin_project! {
        /// The response of a [`super::Transport`].
        #[project = TransportProjection]
        pub enum TransportFuture {
            Single { #[pin] inner: tonic::transport::channel::ResponseFuture },
            Balanced { #[pin] inner: tower::buffer::future::ResponseFuture<BalancedFuture> },
        }
    }

    pub(super) use TransportProjection as Projection;
}

impl Future for TransportFuture {
    type Output = Result<http::Response<Body>, tower::BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            response::Projection::Single { inner } => inner.poll(cx).map_err(Into::into),
            response::Projection::Balanced { inner } => inner.poll(cx),
        }
    }
}

/// How many calls may wait for the balancer's worker.
const BALANCER_BUFFER: usize = 1024;

/// How a replica is dialled: in plaintext, or over mutual TLS to the named service.
#[derive(Debug, Clone)]
struct Dialer(Option<Connector>);

impl Dialer {
    fn new(service: &str, config: &ClientConfig) -> Result<Self, ClientError> {
        let connector = config
            .tls
            .clone()
            .map(|identity| Connector::new(identity, service))
            .transpose()
            .map_err(|_| ClientError::BadServiceName(service.to_owned()))?;
        Ok(Self(connector))
    }

    /// A channel to `endpoint` that connects on first use.
    fn lazy(&self, endpoint: &Endpoint) -> Channel {
        match &self.0 {
            Some(connector) => endpoint.connect_with_connector_lazy(connector.clone()),
            None => endpoint.connect_lazy(),
        }
    }

    /// A channel to `endpoint`, connected now.
    async fn connect(&self, endpoint: &Endpoint) -> Result<Channel, tonic::transport::Error> {
        match &self.0 {
            Some(connector) => endpoint.connect_with_connector(connector.clone()).await,
            None => endpoint.connect().await,
        }
    }
}

/// A balancer fed by `changes`: replicas join and leave as their watchers say.
fn balanced(changes: Receiver<Change<String, Channel>>) -> Balanced {
    let discover = tower::load::PendingRequestsDiscover::new(
        Replicas(changes),
        tower::load::CompleteOnResponse::default(),
    );
    let balance = tower::balance::p2c::Balance::new(discover);
    let boxed = tower::util::BoxService::new(balance);
    let (buffer, worker) = tower::buffer::Buffer::pair(boxed, BALANCER_BUFFER);
    tokio::spawn(worker);
    buffer
}

/// The replica changes as tower's discovery. It never ends (a balancer whose discovery ended
/// fails every call), even when every watcher has stopped.
struct Replicas(Receiver<Change<String, Channel>>);

impl tokio_stream::Stream for Replicas {
    type Item = Result<Change<String, Channel>, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.0.poll_recv(cx) {
            Poll::Ready(Some(change)) => Poll::Ready(Some(Ok(change))),
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

/// How often a DNS name is resolved again, and how long a lost replica waits before it is checked again.
const REFRESH: Duration = Duration::from_secs(5);
const RECHECK: Duration = Duration::from_millis(500);

/// Where a downstream's replicas are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoints {
    /// One replica (or a load balancer in front of several).
    Single(String),
    /// A fixed list of replicas.
    List(Vec<String>),
    /// A DNS name whose addresses are the replicas, re-resolved periodically.
    Dns {
        /// The host name.
        host: String,
        /// The gRPC port.
        port: u16,
    },
}

impl Endpoints {
    /// Parses `http://a:1`, `http://a:1,http://b:2` or `dns://host:port`.
    pub fn parse(spec: &str) -> Result<Self, ClientError> {
        let bad = || ClientError::BadAddress(spec.to_owned());
        if let Some(rest) = spec.strip_prefix("dns://") {
            let (host, port) = rest
                .trim_end_matches('/')
                .rsplit_once(':')
                .ok_or_else(bad)?;
            let port = port.parse().map_err(|_| bad())?;
            return Ok(Self::Dns {
                host: host.to_owned(),
                port,
            });
        }
        let urls: Vec<String> = spec
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        match urls.len() {
            0 => Err(bad()),
            1 => Ok(Self::Single(urls.into_iter().next().unwrap_or_default())),
            _ => Ok(Self::List(urls)),
        }
    }

    /// A channel to these endpoints of the service `service`: lazy for one, health-balanced for
    /// several; over mutual TLS when `config` has an identity.
    pub fn channel(&self, service: &str, config: &ClientConfig) -> Result<Transport, ClientError> {
        let dialer = Dialer::new(service, config)?;
        match self {
            Self::Single(url) => Ok(Transport::Single(dialer.lazy(&endpoint(url, config)?))),
            Self::List(urls) => {
                let endpoints = urls
                    .iter()
                    .map(|url| endpoint(url, config))
                    .collect::<Result<Vec<_>, _>>()?;
                let (changes, receiver) = tokio::sync::mpsc::channel(64);
                for (url, endpoint) in urls.iter().zip(endpoints) {
                    let follower = follow(url.clone(), endpoint, dialer.clone(), changes.clone());
                    tokio::spawn(follower);
                }
                Ok(Transport::Balanced(balanced(receiver)))
            }
            Self::Dns { host, port } => {
                let (changes, receiver) = tokio::sync::mpsc::channel(64);
                let resolver = resolve(host.clone(), *port, config.clone(), dialer, changes);
                tokio::spawn(resolver);
                Ok(Transport::Balanced(balanced(receiver)))
            }
        }
    }
}

/// Keeps one replica in rotation while its health says SERVING, until the balancer is gone.
async fn follow(
    key: String,
    endpoint: Endpoint,
    dialer: Dialer,
    changes: Sender<Change<String, Channel>>,
) {
    let mut in_rotation = false;
    loop {
        let serving = watch_health(&endpoint, &dialer, &key, &changes, &mut in_rotation).await;
        if in_rotation {
            tracing::warn!(replica = %key, reason = %serving, "replica left rotation");
            if changes.send(Change::Remove(key.clone())).await.is_err() {
                return;
            }
            in_rotation = false;
        }
        if changes.is_closed() {
            return;
        }
        tokio::time::sleep(RECHECK).await;
    }
}

/// Follows the replica's health stream, adding it to or removing it from rotation; returns why the
/// stream ended.
async fn watch_health(
    endpoint: &Endpoint,
    dialer: &Dialer,
    key: &str,
    changes: &Sender<Change<String, Channel>>,
    in_rotation: &mut bool,
) -> String {
    let channel = match dialer.connect(endpoint).await {
        Ok(channel) => channel,
        Err(error) => return format!("cannot connect: {error}"),
    };
    let mut health = HealthClient::new(channel);
    let mut stream = match health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => return format!("health watch refused: {}", status.message()),
    };
    loop {
        match stream.message().await {
            Ok(Some(update)) => {
                let serving = update.status == ServingStatus::Serving as i32;
                if serving && !*in_rotation {
                    tracing::info!(replica = %key, "replica joined rotation");
                    if changes
                        .send(Change::Insert(key.to_owned(), dialer.lazy(endpoint)))
                        .await
                        .is_err()
                    {
                        return "balancer gone".into();
                    }
                    *in_rotation = true;
                } else if !serving && *in_rotation {
                    return "not serving".into();
                }
            }
            Ok(None) => return "health stream ended".into(),
            Err(status) => return format!("health stream failed: {}", status.message()),
        }
    }
}

/// Resolves `host:port` every few seconds and follows each address found.
async fn resolve(
    host: String,
    port: u16,
    config: ClientConfig,
    dialer: Dialer,
    changes: Sender<Change<String, Channel>>,
) {
    let mut followers: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    while !changes.is_closed() {
        match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(addrs) => {
                let urls: Vec<String> = addrs.map(|addr| format!("http://{addr}")).collect();
                followers.retain(|url, task| {
                    let keep = urls.contains(url);
                    if !keep {
                        task.abort();
                        let _ = changes.try_send(Change::Remove(url.clone()));
                    }
                    keep
                });
                for url in urls {
                    if followers.contains_key(&url) {
                        continue;
                    }
                    match endpoint(&url, &config) {
                        Ok(endpoint) => {
                            let follower =
                                follow(url.clone(), endpoint, dialer.clone(), changes.clone());
                            let task = tokio::spawn(follower);
                            followers.insert(url, task);
                        }
                        Err(error) => tracing::warn!(%url, %error, "skipping address"),
                    }
                }
            }
            Err(error) => tracing::warn!(%host, %error, "cannot resolve downstream"),
        }
        tokio::time::sleep(REFRESH).await;
    }
    followers.values().for_each(tokio::task::JoinHandle::abort);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(
            Endpoints::parse("http://a:1").ok(),
            Some(Endpoints::Single("http://a:1".into()))
        );
        assert_eq!(
            Endpoints::parse("http://a:1, http://b:2").ok(),
            Some(Endpoints::List(vec![
                "http://a:1".into(),
                "http://b:2".into()
            ]))
        );
        assert_eq!(
            Endpoints::parse("dns://users.internal:50051").ok(),
            Some(Endpoints::Dns {
                host: "users.internal".into(),
                port: 50051
            })
        );
        assert!(Endpoints::parse("").is_err());
        assert!(Endpoints::parse("dns://nohost").is_err());
    }
}
