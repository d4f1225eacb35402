//! Load shedding: each service answers only as many calls at once as it can without queueing,
//! and refuses the rest at once with RESOURCE_EXHAUSTED (and a RetryInfo hint), so the calls it
//! accepts keep their latency.
//!
//! The limit is not a fixed number but follows measured latency: tower-acc's `Vegas` (after
//! Netflix's concurrency-limits and TCP Vegas) estimates the queue as `limit × (1 − rtt_noload /
//! rtt)` and lowers the limit when calls start to queue, raising it while they do not, up to the
//! configured ceiling (`--max-concurrent-calls`). A call that finds no permit free is refused at
//! once instead of waiting (what tower's `LoadShed` does, here with the refused call's body drained:
//! see [`crate::server::refuse`]), with a RetryInfo of about a second (0.5–1.5 s, jittered): refusing
//! is cheap but not free, and clients that come back sooner spend the CPU the accepted calls
//! need (`bench/overload.sh` at 320 CreateOrders in flight: with 250 ms, 1,200 refusals a second
//! and goodput 0.56–0.64 of the peak; with a second, a quarter of the refusals). Measured with `bench/overload.sh` against Gradient2 (the
//! same library's gradient of a long-run average RTT, which drifts up under sustained load): at
//! 160 CreateOrders in flight, accepted p50 29 ms against 214 ms.
//!
//! Expensive methods get a limit of their own, so that a burst of them cannot take the slots (or
//! the cores) of cheap calls: by AIP naming, `List*` and `BatchGet*` methods, whose cost grows
//! with the page.
//!
//! It wraps business services only: health checks and reflection keep answering under overload,
//! so a busy replica is not mistaken for a dead one.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::server::NamedService;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::Service;
use tower_acc::{ConcurrencyLimit, Vegas};

/// How soon a shed caller may try again, sent as RetryInfo: a delay drawn from this range, so
/// that callers shed together do not come back together.
const RETRY_AFTER_MS: std::ops::Range<u64> = 500..1500;

/// The limit cheap methods start at.
const CHEAP_START: usize = 64;
/// An expensive method's ceiling is at most this share of the configured one.
const EXPENSIVE_SHARE: usize = 8;

/// Which limit a method is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Cheap,
    Expensive,
}

impl Class {
    /// The class of the call to `path` (`/package.Service/Method`).
    fn of(path: &str) -> Self {
        let method = path.rsplit('/').next().unwrap_or_default();
        if method.starts_with("List") || method.starts_with("BatchGet") {
            Self::Expensive
        } else {
            Self::Cheap
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Cheap => "cheap",
            Self::Expensive => "expensive",
        }
    }
}

type Limited<S> = ConcurrencyLimit<S, Vegas>;

/// A service that sheds the calls beyond its adaptive concurrency limits.
#[derive(Debug, Clone)]
pub struct Shed<S> {
    cheap: Limited<S>,
    expensive: Limited<S>,
    /// Whether each limit had a permit for the next call at the last `poll_ready`.
    cheap_ready: bool,
    expensive_ready: bool,
}

/// An adaptive limit up to `ceiling`, starting at `start` (clamped to the ceiling).
fn adaptive(start: usize, ceiling: usize) -> Vegas {
    let ceiling = ceiling.max(1);
    Vegas::builder()
        .initial_limit(start.min(ceiling))
        .max_limit(ceiling)
        .build()
}

impl<S: NamedService + Clone> Shed<S> {
    /// `inner`, answering at most `ceiling` cheap calls at once across all connections (fewer
    /// while calls queue), and of expensive ones at most one per two cores (and an eighth of the
    /// ceiling): a page of a hundred large orders takes ~100 ms of CPU, so on two cores a second
    /// listing at once would leave cheap calls no core to run on (`bench/heavy_lists.sh`).
    pub fn new(inner: S, ceiling: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let expensive_ceiling = (ceiling / EXPENSIVE_SHARE)
            .min(cores / 2)
            .max(1)
            .min(ceiling.max(1));
        Self {
            cheap: ConcurrencyLimit::new(inner.clone(), adaptive(CHEAP_START, ceiling)),
            expensive: ConcurrencyLimit::new(inner, adaptive(expensive_ceiling, expensive_ceiling)),
            cheap_ready: false,
            expensive_ready: false,
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
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Always ready: each call is decided when it comes. Both limits are asked, since which
        // one a call needs is known only from the call; the unused one's permit goes back with
        // this clone.
        self.cheap_ready = self.cheap.poll_ready(cx).is_ready();
        self.expensive_ready = self.expensive.poll_ready(cx).is_ready();
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let class = Class::of(request.uri().path());
        let (limited, ready) = match class {
            Class::Cheap => (&mut self.cheap, &mut self.cheap_ready),
            Class::Expensive => (&mut self.expensive, &mut self.expensive_ready),
        };
        if std::mem::take(ready) {
            return Box::pin(limited.call(request));
        }
        metrics::counter!("orderly_server_shed_total", "rpc_service" => S::NAME, "class" => class.as_str())
            .increment(1);
        crate::server::refuse::drain(request);
        let status = Status::with_error_details(
            Code::ResourceExhausted,
            "server overloaded: too many calls in flight; retry shortly or elsewhere",
            ErrorDetails::with_retry_info(Some(Duration::from_millis(fastrand::u64(
                RETRY_AFTER_MS,
            )))),
        );
        Box::pin(std::future::ready(Ok(status.into_http())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_batch_reads_are_expensive() {
        assert_eq!(
            Class::of("/orderly.orders.v1.OrderService/ListOrders"),
            Class::Expensive
        );
        assert_eq!(
            Class::of("/orderly.users.v1.UserService/BatchGetUsers"),
            Class::Expensive
        );
        assert_eq!(
            Class::of("/orderly.users.v1.UserService/GetUser"),
            Class::Cheap
        );
        assert_eq!(
            Class::of("/orderly.orders.v1.OrderService/CreateOrder"),
            Class::Cheap
        );
    }
}
