//! Load shedding: each service answers only as many calls at once as it can without queueing,
//! and refuses the rest with RESOURCE_EXHAUSTED (and a RetryInfo hint), decided at once and sent
//! after a hold, so the calls it accepts keep their latency.
//!
//! The limit is not a fixed number but follows measured latency: tower-acc's `Vegas` (after
//! Netflix's concurrency-limits and TCP Vegas) estimates the queue as `limit × (1 − rtt_noload /
//! rtt)` and lowers the limit when calls start to queue, raising it while they do not, up to the
//! configured ceiling (`--max-concurrent-calls`). Vegas rather than the same library's Gradient2,
//! whose long-run average latency drifts up under sustained load and lets the queue grow with it.
//! A call that finds no permit free is refused instead of waiting for one (what tower's
//! `LoadShed` does, here with the refused call's body drained: see [`crate::refuse`]), with a
//! RetryInfo of about a second (0.5–1.5 s, jittered): refusing is cheap but not free, and
//! clients that come back sooner spend the CPU the accepted calls need.
//!
//! The refusal is decided at once but sent only after [`HOLD`], longer while many refusals are
//! held (so that a service sends about [`HELD_PER_HOLD`] refusals per hold, however many callers
//! are refused), and never more than half of what the call's deadline leaves. A client that
//! honours RetryInfo loses nothing by it; one that sends again the moment it is refused (most load
//! generators, many real clients) is slowed to one refusal per hold instead of one per round trip: sent at once, those refusals came back as fast
//! as the cores could answer them, and the CPU spent refusing and re-sending was the CPU the
//! admitted calls needed (goodput at 512 in flight fell to an eighth of the peak). Held refusals
//! cost a timer each, not a queue: the calls admitted still find no one waiting ahead of them, so
//! they keep their latency. The README's performance section has the measurements behind each of
//! these choices.
//!
//! Expensive methods get a limit of their own, so that a burst of them cannot take the slots (or
//! the cores) of cheap calls: by AIP naming, `List*` and `BatchGet*` methods, whose cost grows
//! with the page.
//!
//! It wraps business services only: health checks and reflection keep answering under overload,
//! so a busy replica is not mistaken for a dead one. A service may exempt methods that finish or
//! undo work already done elsewhere ([`Shed::exempt`]: the catalog's commit and release of a
//! paid or failed order's stock): shedding those would turn a paid order into a refund, or leave
//! stock held, to save a call that must be made anyway.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tonic::server::NamedService;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::Service;
use tower_acc::{Algorithm, ConcurrencyLimit, Vegas};

/// How soon a shed caller may try again, sent as RetryInfo: a delay drawn from this range, so
/// that callers shed together do not come back together.
const RETRY_AFTER_MS: std::ops::Range<u64> = 500..1500;

/// How long a refusal is held before it is sent (see the module documentation): long enough that
/// clients re-sending at once make a few refusals per second each, short against the RetryInfo
/// delay a well-behaved client then waits anyway.
pub const HOLD: Duration = Duration::from_millis(250);

/// Refusals held at once beyond which each new one is held longer, in proportion: past this many,
/// the service sends about this many refusals per [`HOLD`] whatever the number of callers it
/// refuses (with 512 callers re-sending at once, a fixed hold still sent 2,000 a second).
pub const HELD_PER_HOLD: usize = 64;

/// The longest a refusal is held.
pub const MAX_HOLD: Duration = Duration::from_secs(2);

/// How long the refusal of `request` is held when `held` refusals (this one included) are:
/// [`HOLD`], times `held / HELD_PER_HOLD` beyond that many, at most [`MAX_HOLD`], and at most half
/// of what the caller's deadline leaves, so that the caller hears RESOURCE_EXHAUSTED (which it may
/// retry elsewhere) rather than running out of time.
fn hold<B>(request: &http::Request<B>, held: usize) -> Duration {
    let crowd = u32::try_from(held / HELD_PER_HOLD)
        .unwrap_or(u32::MAX)
        .max(1);
    let hold = HOLD.saturating_mul(crowd).min(MAX_HOLD);
    request
        .headers()
        .get(crate::client::deadline::GRPC_TIMEOUT)
        .and_then(|value| value.to_str().ok())
        .and_then(crate::client::deadline::parse_grpc_timeout)
        .map_or(hold, |timeout| hold.min(timeout / 2))
}

/// One refusal being held, counted in its service's [`Shed`] until it is sent or its call is
/// cancelled.
struct Held(Arc<AtomicUsize>);

impl Held {
    /// Counts one more held refusal; returns it and how many are held now.
    fn count(held: &Arc<AtomicUsize>) -> (Self, usize) {
        let now = held.fetch_add(1, Ordering::Relaxed) + 1;
        (Self(held.clone()), now)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Latency up to which a call is not taken as queueing: the adaptive limit sees every faster call
/// as this fast. Vegas compares each call's latency with the fastest ever seen; for a handler that
/// answers in 0.1 ms idle and a few ms when both cores are busy, that ratio reads every call as
/// queued and drives the limit down to a handful, so most calls were refused while the accepted
/// ones answered in single-digit milliseconds. With the floor, the limit follows queueing beyond
/// about this much delay; a higher floor admits more and lets the tail grow.
const TOLERATED_LATENCY: Duration = Duration::from_millis(5);

/// The queue, in calls, that the limit settles at: Vegas raises the limit while its estimate of
/// the calls waiting (`limit × (1 − rtt_noload / rtt)`) is below `QUEUE_LOW × log₁₀(limit)` and
/// lowers it above `QUEUE_HIGH × log₁₀(limit)` (log₁₀ taken as at least 1). Netflix's defaults, 3
/// and 6, suit limits in the hundreds; on two cores, 4 to 8 CreateOrders in flight already keep
/// both busy, and a standing queue of 3 to 6 more doubled their latency.
const QUEUE_LOW: usize = 2;
/// See [`QUEUE_LOW`].
const QUEUE_HIGH: usize = 4;

/// How far each completed call moves the limit towards Vegas's new estimate (exponential
/// smoothing; tower-acc's default, 1.0, moves it all the way). On two cores a call's latency swings
/// threefold at any load, so unsmoothed the limit followed single slow calls: with 512 callers
/// re-sending refused calls at once it swung between 5 and 40 (the
/// `orderly_server_concurrency_limit` gauge, sampled every 100 ms), and each dip refused callers
/// who then sat out a held refusal. At 0.2 (about the last five calls) it stayed within 13-37.
const SMOOTHING: f64 = 0.2;

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
    /// The class of the call to `path` (`/package.Service/Method`): lists and batch reads are
    /// expensive, unless the service names them in `cheap`.
    fn of(path: &str, cheap: &[&str]) -> Self {
        let method = path.rsplit('/').next().unwrap_or_default();
        if (method.starts_with("List") || method.starts_with("BatchGet"))
            && !cheap.contains(&method)
        {
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

type Limited<S> = ConcurrencyLimit<S, Tolerant>;

/// Vegas, fed latencies no lower than [`TOLERATED_LATENCY`], that forgets an overload once the
/// service has been idle for [`FORGET_AFTER`]: a limit below its start goes back to it.
///
/// Vegas alone never raises its limit while calls are few (`in flight × 2 < limit`: low latency is
/// no evidence then), and a burst at the lowered limit reads as queueing again, so after an
/// overload episode the limit stayed where the episode left it, and bursts the service admitted
/// whole before the episode were partly shed long after it (`bench/recovery.sh`; the README has
/// the figures). A second with nothing in flight is the evidence that the episode is over: no
/// queue stands through it. Shorter gaps change nothing, because they happen inside an overload
/// too (callers waiting out their RetryInfo): raising the limit in proportion to every idle
/// moment let each wave of them in at a higher limit, and cost the overload benchmark a third of
/// its goodput.
#[derive(Debug, Clone)]
struct Tolerant {
    vegas: Vegas,
    start: usize,
    ceiling: usize,
    /// When the last call in flight finished, if none has finished since.
    idle_since: Option<Instant>,
    /// Whose limit this is, for the `orderly_server_concurrency_limit` gauge.
    service: &'static str,
    class: Class,
}

/// Idle time after which an overload is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(1);

impl Algorithm for Tolerant {
    fn max_concurrency(&self) -> usize {
        self.vegas.max_concurrency()
    }

    fn update(&mut self, rtt: Duration, num_inflight: usize, is_error: bool, is_canceled: bool) {
        let before = self.vegas.max_concurrency();
        let now = Instant::now();
        if let Some(idle_since) = self.idle_since.take() {
            // The service was idle from then until this call started.
            self.forget(
                now.saturating_duration_since(idle_since)
                    .saturating_sub(rtt),
            );
        }
        self.vegas.update(
            rtt.max(TOLERATED_LATENCY),
            num_inflight,
            is_error,
            is_canceled,
        );
        if num_inflight == 0 {
            self.idle_since = Some(now);
        }
        let after = self.vegas.max_concurrency();
        if after != before {
            self.publish(after);
        }
    }
}

impl Tolerant {
    /// Sets the `orderly_server_concurrency_limit` gauge of this limit to `limit`: how many calls
    /// of its class the service admits at once now, the figure to read beside its shed counter.
    fn publish(&self, limit: usize) {
        metrics::gauge!("orderly_server_concurrency_limit", "rpc_service" => self.service, "class" => self.class.as_str())
            .set(limit as f64);
    }

    /// Puts a lowered limit back at its start after `idle` of at least [`FORGET_AFTER`].
    fn forget(&mut self, idle: Duration) {
        if idle >= FORGET_AFTER && self.vegas.max_concurrency() < self.start {
            self.vegas = vegas(self.start, self.ceiling);
        }
    }
}

/// A service that sheds the calls beyond its adaptive concurrency limits.
#[derive(Debug, Clone)]
pub struct Shed<S> {
    cheap: Limited<S>,
    expensive: Limited<S>,
    /// Whether each limit had a permit for the next call at the last `poll_ready`.
    cheap_ready: bool,
    expensive_ready: bool,
    /// Batch reads the service says are cheap (see [`Shed::cheap`]).
    cheap_methods: &'static [&'static str],
    /// Methods never shed (see [`Shed::exempt`]), and the service that answers them unlimited.
    exempt_methods: &'static [&'static str],
    unlimited: S,
    /// Refusals held now, across every clone (see [`hold`]).
    held: Arc<AtomicUsize>,
}

/// `log₁₀(limit)` rounded down, at least 1: the scale of Vegas's thresholds, as tower-acc's own.
fn log10(limit: usize) -> usize {
    ((limit as f64).log10() as usize).max(1)
}

/// An adaptive limit of `service`'s `class` of calls up to `ceiling`, starting (and recovering
/// to) `start`, clamped to the ceiling.
fn adaptive(service: &'static str, class: Class, start: usize, ceiling: usize) -> Tolerant {
    let ceiling = ceiling.max(1);
    let start = start.min(ceiling);
    let limit = Tolerant {
        vegas: vegas(start, ceiling),
        start,
        ceiling,
        idle_since: None,
        service,
        class,
    };
    limit.publish(start);
    limit
}

/// Vegas with the queue band of [`QUEUE_LOW`] and [`QUEUE_HIGH`], at `limit` up to `ceiling`.
fn vegas(limit: usize, ceiling: usize) -> Vegas {
    Vegas::builder()
        .alpha(|limit| QUEUE_LOW * log10(limit))
        .beta(|limit| QUEUE_HIGH * log10(limit))
        .initial_limit(limit.min(ceiling))
        .max_limit(ceiling)
        .smoothing(SMOOTHING)
        .build()
}

impl<S: NamedService + Clone> Shed<S> {
    /// `inner`, answering at most `ceiling` cheap calls at once across all connections (fewer
    /// while calls queue), and of expensive ones at most one per two cores (and an eighth of the
    /// ceiling): a page of a hundred large orders takes about 100 ms of CPU, so on two cores a
    /// second listing at once would leave cheap calls no core to run on.
    pub fn new(inner: S, ceiling: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let expensive_ceiling = (ceiling / EXPENSIVE_SHARE)
            .min(cores / 2)
            .max(1)
            .min(ceiling.max(1));
        Self {
            cheap: ConcurrencyLimit::new(
                inner.clone(),
                adaptive(S::NAME, Class::Cheap, CHEAP_START, ceiling),
            ),
            expensive: ConcurrencyLimit::new(
                inner.clone(),
                adaptive(
                    S::NAME,
                    Class::Expensive,
                    expensive_ceiling,
                    expensive_ceiling,
                ),
            ),
            cheap_ready: false,
            expensive_ready: false,
            cheap_methods: &[],
            exempt_methods: &[],
            unlimited: inner,
            held: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The same, with `methods` never shed: calls that finish or undo work other services already
    /// did on the caller's behalf (committing or releasing an order's stock), which the caller
    /// would otherwise retry until they pass, or compensate for.
    pub fn exempt(mut self, methods: &'static [&'static str]) -> Self {
        self.exempt_methods = methods;
        self
    }

    /// The same, with `methods` (names of lists or batch reads) under the cheap limit: batch reads
    /// bounded to a few small rows that other services make on every call of theirs (the catalog's
    /// BatchGetProducts, which prices each order), where one call per two cores would throttle
    /// those callers.
    pub fn cheap(mut self, methods: &'static [&'static str]) -> Self {
        self.cheap_methods = methods;
        self
    }
}

/// The layer of [`Shed`]: adaptive limits up to a ceiling, with the service's cheap and never-shed
/// methods.
#[derive(Debug, Clone, Copy)]
pub struct ShedLayer {
    ceiling: usize,
    cheap: &'static [&'static str],
    exempt: &'static [&'static str],
}

impl ShedLayer {
    /// Limits up to `ceiling` calls at once (see [`Shed::new`]).
    pub fn new(ceiling: usize) -> Self {
        Self {
            ceiling,
            cheap: &[],
            exempt: &[],
        }
    }

    /// The same, with `methods` never shed (see [`Shed::exempt`]).
    pub fn exempt(mut self, methods: &'static [&'static str]) -> Self {
        self.exempt = methods;
        self
    }

    /// The same, with `methods` under the cheap limit (see [`Shed::cheap`]).
    pub fn cheap(mut self, methods: &'static [&'static str]) -> Self {
        self.cheap = methods;
        self
    }
}

impl<S: NamedService + Clone> tower::Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed::new(inner, self.ceiling)
            .cheap(self.cheap)
            .exempt(self.exempt)
    }
}

impl<S: NamedService> NamedService for Shed<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Shed<S>
where
    S: NamedService
        + Clone
        + Send
        + 'static
        + Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = crate::refuse::ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Always ready: each call is decided when it comes. Both limits are asked, since which
        // one a call needs is known only from the call; the unused one's permit goes back with
        // this clone.
        self.cheap_ready = self.cheap.poll_ready(cx).is_ready();
        self.expensive_ready = self.expensive.poll_ready(cx).is_ready();
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().rsplit('/').next().unwrap_or_default();
        if self.exempt_methods.contains(&method) {
            let unlimited = self.unlimited.clone();
            return Box::pin(tower::ServiceExt::oneshot(unlimited, request));
        }
        let class = Class::of(request.uri().path(), self.cheap_methods);
        let (limited, ready) = match class {
            Class::Cheap => (&mut self.cheap, &mut self.cheap_ready),
            Class::Expensive => (&mut self.expensive, &mut self.expensive_ready),
        };
        if std::mem::take(ready) {
            return Box::pin(limited.call(request));
        }
        metrics::counter!("orderly_server_shed_total", "rpc_service" => S::NAME, "class" => class.as_str())
            .increment(1);
        let status = Status::with_error_details(
            Code::ResourceExhausted,
            "server overloaded: too many calls in flight; retry shortly or elsewhere",
            ErrorDetails::with_retry_info(Some(Duration::from_millis(fastrand::u64(
                RETRY_AFTER_MS,
            )))),
        );
        let (held, count) = Held::count(&self.held);
        let hold = hold(&request, count);
        crate::refuse::drain(request);
        Box::pin(async move {
            tokio::time::sleep(hold).await;
            drop(held);
            Ok(status.into_http())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_held_longer_in_a_crowd_and_never_past_half_the_deadline() {
        let with = |timeout: Option<&str>| {
            let mut request = http::Request::new(());
            if let Some(timeout) = timeout {
                request.headers_mut().insert(
                    crate::client::deadline::GRPC_TIMEOUT,
                    http::HeaderValue::from_str(timeout).expect("a header value"),
                );
            }
            (hold(&request, 1), hold(&request, HELD_PER_HOLD * 4))
        };
        assert_eq!(with(None), (HOLD, HOLD * 4), "longer while many are held");
        assert_eq!(with(Some("10S")), (HOLD, HOLD * 4));
        let short = Duration::from_millis(50);
        assert_eq!(
            with(Some("100m")),
            (short, short),
            "half the deadline at most"
        );
        assert_eq!(with(Some("garbage")), (HOLD, HOLD * 4));
        let mut crowd = http::Request::new(());
        crowd.headers_mut().insert(
            crate::client::deadline::GRPC_TIMEOUT,
            http::HeaderValue::from_static("1H"),
        );
        assert_eq!(
            hold(&crowd, usize::MAX),
            MAX_HOLD,
            "and never beyond the longest"
        );
    }

    #[test]
    fn a_standing_queue_brings_the_limit_down() {
        // Ten in flight, each taking twice the tolerated latency: Vegas reads half of them as
        // queued (five calls), more than the queue it allows at this limit.
        let mut limit = adaptive("test", Class::Cheap, 10, 100);
        limit.update(Duration::from_micros(100), 10, false, false); // the no-load baseline
        for _ in 0..3 {
            limit.update(TOLERATED_LATENCY * 2, 10, false, false);
        }
        assert!(limit.max_concurrency() < 10, "{}", limit.max_concurrency());
    }

    #[test]
    fn calls_within_the_tolerated_latency_raise_the_limit() {
        let mut limit = adaptive("test", Class::Cheap, 10, 100);
        limit.update(Duration::from_micros(100), 10, false, false);
        for _ in 0..3 {
            limit.update(TOLERATED_LATENCY / 2, 10, false, false);
        }
        assert!(limit.max_concurrency() > 10, "{}", limit.max_concurrency());
    }

    #[test]
    fn an_overload_is_forgotten_after_a_second_of_idleness() {
        let mut limit = adaptive("test", Class::Cheap, 64, 1024);
        limit.update(Duration::from_micros(100), 64, false, false);
        // An overload: every call queued behind many others (smoothed, each call moves the limit
        // a fifth of a step: some 160 calls halve it, 80 ms at this service's rate).
        for _ in 0..200 {
            let inflight = limit.max_concurrency();
            limit.update(TOLERATED_LATENCY * 10, inflight, false, false);
        }
        let lowered = limit.max_concurrency();
        assert!(lowered < 32, "{lowered}");
        // Idle moments shorter than a second, as between waves of callers under overload,
        // change nothing; a second of idleness restores the start.
        limit.forget(FORGET_AFTER / 2);
        assert_eq!(limit.max_concurrency(), lowered);
        limit.forget(FORGET_AFTER);
        assert_eq!(limit.max_concurrency(), 64);
        // A completion that leaves nothing in flight starts the idle clock.
        limit.update(TOLERATED_LATENCY, 0, false, false);
        assert!(limit.idle_since.is_some());
    }

    #[test]
    fn lists_and_batch_reads_are_expensive() {
        assert_eq!(
            Class::of("/orderly.orders.v1.OrderService/ListOrders", &[]),
            Class::Expensive
        );
        assert_eq!(
            Class::of("/orderly.users.v1.UserService/BatchGetUsers", &[]),
            Class::Expensive
        );
        assert_eq!(
            Class::of("/orderly.users.v1.UserService/GetUser", &[]),
            Class::Cheap
        );
        assert_eq!(
            Class::of("/orderly.orders.v1.OrderService/CreateOrder", &[]),
            Class::Cheap
        );
        let cheap = ["BatchGetProducts"];
        assert_eq!(
            Class::of(
                "/orderly.catalog.v1.CatalogService/BatchGetProducts",
                &cheap
            ),
            Class::Cheap
        );
        assert_eq!(
            Class::of("/orderly.catalog.v1.CatalogService/ListProducts", &cheap),
            Class::Expensive
        );
    }
}
