//! Per-caller rate limits on a gRPC service ([`crate::rate`]): a call over its caller's limit is
//! refused before the service sees it with RESOURCE_EXHAUSTED, reason `RATE_LIMITED`, and a
//! RetryInfo of the time until the caller may call again. The caller is the token's subject
//! when [`crate::auth::rules::Authenticate`] (outside this layer) verified one, otherwise the
//! peer address; so one caller's burst never spends another's allowance.

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
}

impl<S> RateLimited<S> {
    /// `inner`, its callers held to `limits`.
    pub fn new(inner: S, limits: Option<CallerLimits>) -> Self {
        Self { inner, limits }
    }
}

impl<S: NamedService> NamedService for RateLimited<S> {
    const NAME: &'static str = S::NAME;
}

/// Who `request` counts against: its verified caller, else its peer address.
fn key<B>(request: &http::Request<B>) -> Option<CallerKey> {
    if let Some(caller) = request.extensions().get::<Caller>() {
        return Some(CallerKey::Subject(caller.subject.clone()));
    }
    let peer = crate::tls::server::Peer::of(request)?.remote_addr?;
    Some(CallerKey::Peer(peer.ip()))
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
    type Future = crate::server::refuse::Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let Some(limits) = &self.limits else {
            return Box::pin(self.inner.call(request));
        };
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
        crate::server::refuse::refused(request, status)
    }
}
