//! Where a downstream's replicas are, and which of them get calls.
//!
//! A downstream address is one URL (`http://users:50051`), a comma-separated list of URLs, or
//! `dns://host:port`, re-resolved every few seconds. One URL is used as it is. Several (or a DNS
//! name) are balanced by tonic's power-of-two-choices balancer, fed by one watcher per replica that
//! follows the replica's `grpc.health.v1` Watch stream: a replica is in rotation only while it
//! reports SERVING, and leaves it the moment it drains, dies, or stops answering.
//!
//! tonic balances over whatever endpoints it is given but does not check their health, and no
//! maintained crate feeds it from health checks, so this module does that one job.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc::Sender;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::endpoint::{ClientConfig, ClientError, endpoint};

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

    /// A channel to these endpoints: lazy for one, health-balanced for several.
    pub fn channel(&self, config: &ClientConfig) -> Result<Channel, ClientError> {
        match self {
            Self::Single(url) => Ok(endpoint(url, config)?.connect_lazy()),
            Self::List(urls) => {
                let endpoints = urls
                    .iter()
                    .map(|url| endpoint(url, config))
                    .collect::<Result<Vec<_>, _>>()?;
                let (channel, changes) = Channel::balance_channel::<String>(64);
                for (url, endpoint) in urls.iter().zip(endpoints) {
                    tokio::spawn(follow(url.clone(), endpoint, changes.clone()));
                }
                Ok(channel)
            }
            Self::Dns { host, port } => {
                let (channel, changes) = Channel::balance_channel::<String>(64);
                tokio::spawn(resolve(host.clone(), *port, config.clone(), changes));
                Ok(channel)
            }
        }
    }
}

/// Keeps one replica in rotation while its health says SERVING, until the balancer is gone.
async fn follow(key: String, endpoint: Endpoint, changes: Sender<Change<String, Endpoint>>) {
    let mut in_rotation = false;
    loop {
        let serving = watch_health(&endpoint, &key, &changes, &mut in_rotation).await;
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
    key: &str,
    changes: &Sender<Change<String, Endpoint>>,
    in_rotation: &mut bool,
) -> String {
    let channel = match endpoint.connect().await {
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
                        .send(Change::Insert(key.to_owned(), endpoint.clone()))
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
    changes: Sender<Change<String, Endpoint>>,
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
                            let task = tokio::spawn(follow(url.clone(), endpoint, changes.clone()));
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
