//! Per-caller rate limits on a gRPC service ([`crate::rate`]): a call over its caller's limit is
//! refused before the service sees it with RESOURCE_EXHAUSTED, reason `RATE_LIMITED`, and a
//! RetryInfo of the time until the caller may call again.
//!
//! A call counts against its *end* caller, so one caller's burst never spends another's
//! allowance, and a service that passes calls on is never limited as one caller for all of its
//! users:
//! - the token's subject, when [`crate::auth::rules::Authenticate`] (outside this layer) verified
//!   one: services pass their caller's token on with the calls they make for it;
//! - from a caller that proved over mutual TLS to be an Orderly service, the anonymous client
//!   address it forwards ([`crate::metadata::CLIENT_ADDRESS`]), or, without one, no one: that is
//!   the service's own work (a recovery sweep);
//! - otherwise the peer address.
//!
//! Methods that settle or undo work already done (a reservation's commit, a refund) are never
//! limited ([`RateLimited::exempt`]), like the shedder's exemptions: refusing them would turn a
//! paid order into a refund, or leave stock held, to save a call that must be made anyway.

use std::convert::Infallible;
use std::task::{Context, Poll};

use tonic::server::NamedService;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::Service;

use crate::auth::Caller;
use crate::rate::{CallerKey, CallerLimits};

/// A service whose callers are rate limited; without limits every call passes.
#[derive(Debug, Clone)]
pub struct RateLimited<S> {
    inner: S,
    limits: Option<CallerLimits>,
    exempt: &'static [&'static str],
}

impl<S> RateLimited<S> {
    /// `inner`, its callers held to `limits`.
    pub fn new(inner: S, limits: Option<CallerLimits>) -> Self {
        Self {
            inner,
            limits,
            exempt: &[],
        }
    }

    /// The same, with calls to `methods` (by name) never limited.
    pub fn exempt(mut self, methods: &'static [&'static str]) -> Self {
        self.exempt = methods;
        self
    }
}

/// The layer of [`RateLimited`]: each end caller held to `limits` (none: every call passes), with
/// the service's methods that are never limited.
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    limits: Option<CallerLimits>,
    exempt: &'static [&'static str],
}

impl RateLimitLayer {
    /// Callers held to `limits`.
    pub fn new(limits: Option<CallerLimits>) -> Self {
        Self {
            limits,
            exempt: &[],
        }
    }

    /// The same, with calls to `methods` never limited.
    pub fn exempt(mut self, methods: &'static [&'static str]) -> Self {
        self.exempt = methods;
        self
    }
}

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimited::new(inner, self.limits.clone()).exempt(self.exempt)
    }
}

impl<S: NamedService> NamedService for RateLimited<S> {
    const NAME: &'static str = S::NAME;
}

/// Who `request` counts against (see the module documentation); `None` for no one.
fn key<B>(request: &http::Request<B>) -> Option<CallerKey> {
    if let Some(caller) = request.extensions().get::<Caller>() {
        return Some(CallerKey::Subject(caller.subject.clone()));
    }
    let peer = crate::tls::server::Peer::of(request)?;
    if peer.service.is_some() {
        return forwarded_client(request.headers()).map(CallerKey::Peer);
    }
    Some(CallerKey::Peer(peer.remote_addr?.ip()))
}

/// The anonymous client address a service forwarded, if it sent a well-formed one.
fn forwarded_client(headers: &http::HeaderMap) -> Option<std::net::IpAddr> {
    headers
        .get(crate::metadata::CLIENT_ADDRESS)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

impl<S, B> Service<http::Request<B>> for RateLimited<S>
where
    S: NamedService
        + Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = crate::refuse::ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let Some(limits) = &self.limits else {
            return Box::pin(self.inner.call(request));
        };
        let method = request.uri().path().rsplit('/').next().unwrap_or_default();
        if self.exempt.contains(&method) {
            return Box::pin(self.inner.call(request));
        }
        let Some(wait) = key(&request).and_then(|key| limits.check(&key).err()) else {
            return Box::pin(self.inner.call(request));
        };
        let rpc = crate::observe::trace::rpc_method(&mut request);
        metrics::counter!("orderly_server_rate_limited_total",
            "rpc_service" => S::NAME, "rpc_method" => rpc.method)
        .increment(1);
        let mut details = ErrorDetails::with_retry_info(Some(wait));
        details.set_error_info(
            orderly::error::Reason::RateLimited.as_str(),
            crate::auth::DOMAIN,
            [],
        );
        let status = Status::with_error_details(
            Code::ResourceExhausted,
            "too many calls from this caller; retry after the RetryInfo delay",
            details,
        );
        crate::refuse::refused(request, status)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};
    use std::sync::Arc;

    use super::*;
    use crate::tls::server::Peer;

    fn request(peer: Peer, forwarded: Option<&str>, caller: Option<&str>) -> http::Request<()> {
        let mut request = http::Request::new(());
        request.extensions_mut().insert(peer);
        if let Some(subject) = caller {
            request.extensions_mut().insert(Caller {
                subject: subject.into(),
                roles: vec![],
            });
        }
        if let Some(address) = forwarded {
            request.headers_mut().insert(
                crate::metadata::CLIENT_ADDRESS,
                address.parse().expect("header"),
            );
        }
        request
    }

    fn peer(service: Option<&str>) -> Peer {
        Peer {
            remote_addr: Some(SocketAddr::from(([10, 0, 0, 9], 4242))),
            tls: service.is_some(),
            service: service.map(Arc::from),
            outside: None,
        }
    }

    #[test]
    fn calls_count_against_their_end_caller_never_the_service_passing_them_on() {
        let client: IpAddr = "192.0.2.7".parse().expect("address");
        let orders = || peer(Some("orders"));
        // A user's call passed on by a service counts against the user.
        assert_eq!(
            key(&request(orders(), None, Some("alice"))),
            Some(CallerKey::Subject("alice".into()))
        );
        // An anonymous client's call passed on by the gateway counts against that client.
        assert_eq!(
            key(&request(peer(Some("gateway")), Some("192.0.2.7"), None)),
            Some(CallerKey::Peer(client))
        );
        // A service's own work counts against no one.
        assert_eq!(key(&request(orders(), None, None)), None);
        // Anyone else is their address; what they claim to forward is not believed.
        let stranger = request(peer(None), Some("192.0.2.7"), None);
        assert_eq!(
            key(&stranger),
            Some(CallerKey::Peer("10.0.0.9".parse().expect("address")))
        );
    }
}
