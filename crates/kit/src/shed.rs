//! Load shedding: each service answers at most a configured number of calls at once; a call beyond
//! that is refused at once with RESOURCE_EXHAUSTED (and a RetryInfo hint) instead of waiting in a
//! queue, so the calls that are accepted keep their latency.
//!
//! tower's `GlobalConcurrencyLimit` (one semaphore for every connection) and `LoadShed` do the work;
//! this wrapper turns their `Overloaded` error into a gRPC response and keeps the wrapped service's
//! name for routing. It wraps business services only: health checks and reflection keep answering
//! under overload, so a busy replica is not mistaken for a dead one.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::server::NamedService;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::Service;
use tower::limit::ConcurrencyLimit;
use tower::load_shed::LoadShed;

/// How soon a shed caller may try again, sent as RetryInfo.
const RETRY_AFTER: Duration = Duration::from_millis(50);

/// A service that sheds the calls beyond its concurrency limit.
#[derive(Debug, Clone)]
pub struct Shed<S> {
    inner: LoadShed<ConcurrencyLimit<S>>,
}

impl<S: NamedService> Shed<S> {
    /// `inner`, answering at most `limit` calls at once across all connections.
    pub fn new(inner: S, limit: usize) -> Self {
        let semaphore = Arc::new(Semaphore::new(limit.max(1)));
        Self {
            inner: LoadShed::new(ConcurrencyLimit::with_semaphore(inner, semaphore)),
        }
    }
}

impl<S: NamedService> NamedService for Shed<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Shed<S>
where
    S: NamedService
        + Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // LoadShed is always ready: it decides per call.
        match self.inner.poll_ready(cx) {
            Poll::Ready(_) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let service = S::NAME;
        let future = self.inner.call(request);
        Box::pin(async move {
            match future.await {
                Ok(response) => Ok(response),
                Err(_overloaded) => {
                    metrics::counter!("orderly_server_shed_total", "rpc_service" => service)
                        .increment(1);
                    let status = Status::with_error_details(
                        Code::ResourceExhausted,
                        "server overloaded: too many calls in flight; retry shortly or elsewhere",
                        ErrorDetails::with_retry_info(Some(RETRY_AFTER)),
                    );
                    Ok(status.into_http())
                }
            }
        })
    }
}
