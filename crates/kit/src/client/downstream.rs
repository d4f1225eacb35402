//! One downstream service as its callers see it: a shared channel (one replica or several, see
//! [`crate::client::balance`]) and a `call` that gives every attempt a deadline, retries what is safe to
//! retry with jittered exponential backoff inside a retry budget, and counts the call (once, after
//! its retries) in the circuit breaker of the downstream's method.
//!
//! - Breaker: a call takes a [`Permit`] before its first attempt, or is refused at once while the
//!   breaker is open. Work that must not start unless the call can be made takes the permit itself
//!   first ([`Downstream::admit`]) and hands it to [`Downstream::unary_with`].
//!
//! - Deadline: each call has one; an attempt is never started once it passed, and no backoff sleeps
//!   past it.
//! - Retries: UNAVAILABLE, transport failures, and RESOURCE_EXHAUSTED when the server sent
//!   RetryInfo; and only for calls marked [`Safety::Idempotent`] (reads, or writes that carry an
//!   idempotency key). A call refused by an open breaker is not retried.
//! - Budget: tower's `TpsBudget` lets retries add at most a fixed share of recent calls, in the
//!   spirit of gRPC's retry throttling, so a failing downstream never sees a retry storm.
//!
//! Metrics: `rpc_client_duration_seconds` (whole call, final status), `orderly_client_retries_total`,
//! `orderly_client_retry_budget_exhausted_total`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::service::interceptor::InterceptedService;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use tower::retry::budget::{Budget, TpsBudget};
use tracing::Instrument;

use crate::client::backoff::Backoff;
use crate::client::breaker::{Breaker, BreakerConfig, Outcome, Permit, is_open};
use crate::client::deadline::Deadline;
use crate::client::{ClientConfig, ClientError, channel};
use crate::observe::trace::{InjectContext, TracedChannel, client_span, record_status};

/// Whether a call may be sent again after a failure whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// Repeating it changes nothing more: a read, or a write with an idempotency key.
    Idempotent,
    /// Repeating it could do the work twice.
    NotIdempotent,
}

/// How a downstream's calls are protected.
#[derive(Debug, Clone)]
pub struct DownstreamConfig {
    /// Connecting and keepalive.
    pub client: ClientConfig,
    /// Spacing and number of attempts.
    pub backoff: Backoff,
    /// Share of recent calls that retries may add, 0 to 1.
    pub retry_ratio: f32,
    /// Retries allowed per second regardless of traffic, so quiet callers can still retry.
    pub min_retries_per_second: u32,
    /// How long a call counts as recent, for the budget.
    pub budget_window: Duration,
    /// When the breaker opens and recovers.
    pub breaker: BreakerConfig,
}

impl Default for DownstreamConfig {
    fn default() -> Self {
        Self {
            client: ClientConfig::default(),
            backoff: Backoff {
                base: Duration::from_millis(25),
                cap: Duration::from_secs(1),
                max_attempts: 3,
            },
            retry_ratio: 0.2,
            min_retries_per_second: 5,
            budget_window: Duration::from_secs(10),
            breaker: BreakerConfig::default(),
        }
    }
}

/// The command-line flags of a service's call protection (breakers and retries), shared by every
/// service that calls others; their defaults are [`DownstreamConfig::default`]'s.
#[cfg(feature = "args")]
#[derive(Debug, Clone, clap::Args)]
pub struct CallArgs {
    /// How long a downstream's circuit breaker stays open before it lets probe calls through.
    #[arg(long, env = "ORDERLY_BREAKER_COOL_DOWN", default_value_t = DownstreamConfig::default().breaker.cool_down.into())]
    pub breaker_cool_down: humantime::Duration,

    /// Fewest calls in a breaker's 10 s window before its failure rate can open it.
    #[arg(long, env = "ORDERLY_BREAKER_MINIMUM_CALLS", default_value_t = DownstreamConfig::default().breaker.minimum_calls)]
    pub breaker_minimum_calls: usize,

    /// Share of calls, 0 to 1, that must fail (after retries) within the window to open a breaker.
    #[arg(long, env = "ORDERLY_BREAKER_FAILURE_RATE", default_value_t = DownstreamConfig::default().breaker.failure_rate)]
    pub breaker_failure_rate: f64,

    /// Attempts per downstream call, the first included (retries only where safe).
    #[arg(long, env = "ORDERLY_RETRY_MAX_ATTEMPTS", default_value_t = DownstreamConfig::default().backoff.max_attempts)]
    pub retry_max_attempts: u32,
}

#[cfg(feature = "args")]
impl CallArgs {
    /// The protection these flags ask for.
    pub fn config(&self) -> DownstreamConfig {
        let mut config = DownstreamConfig::default();
        config.breaker.cool_down = self.breaker_cool_down.into();
        config.breaker.minimum_calls = self.breaker_minimum_calls;
        config.breaker.failure_rate = self.breaker_failure_rate;
        config.backoff.max_attempts = self.retry_max_attempts.max(1);
        config
    }
}

#[cfg(feature = "args")]
impl Default for CallArgs {
    fn default() -> Self {
        crate::args::defaults()
    }
}

/// One downstream service: its channel, breaker and retry budget.
#[derive(Clone)]
pub struct Downstream {
    name: &'static str,
    service: &'static str,
    channel: TracedChannel,
    breakers: Arc<Mutex<HashMap<&'static str, Breaker>>>,
    breaker_config: BreakerConfig,
    budget: Arc<TpsBudget>,
    backoff: Backoff,
}

impl std::fmt::Debug for Downstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downstream")
            .field("name", &self.name)
            .field("backoff", &self.backoff)
            .finish()
    }
}

/// Whether a failed attempt may be retried, given the call's safety.
pub fn is_retryable(status: &Status, safety: Safety) -> bool {
    if safety == Safety::NotIdempotent || is_open(status) {
        return false;
    }
    match status.code() {
        Code::Unavailable => true,
        Code::ResourceExhausted => status.get_details_retry_info().is_some(),
        // An error made on this side of the wire (a reset or refused connection) has a source;
        // statuses sent by a server do not.
        Code::Unknown | Code::Internal | Code::Cancelled => {
            std::error::Error::source(status).is_some()
        }
        _ => false,
    }
}

impl Downstream {
    /// The downstream `name` (as in breaker metrics and errors), whose gRPC service is `service`
    /// (e.g. `orderly.users.v1.UserService`), at `address` (one URL, a comma-separated list, or
    /// `dns://host:port`).
    pub fn new(
        name: &'static str,
        service: &'static str,
        address: &str,
        config: &DownstreamConfig,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            name,
            service,
            channel: InterceptedService::new(channel(address, &config.client)?, InjectContext),
            breakers: Arc::default(),
            breaker_config: config.breaker.clone(),
            budget: Arc::new(TpsBudget::new(
                config.budget_window,
                config.min_retries_per_second,
                config.retry_ratio,
            )),
            backoff: config.backoff,
        })
    }

    /// The breaker of `method`, made on its first call.
    fn breaker(&self, method: &'static str) -> Breaker {
        let mut breakers = self
            .breakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        breakers
            .entry(method)
            .or_insert_with(|| Breaker::new(self.name, method, &self.breaker_config))
            .clone()
    }

    /// Leave to call `method` once, taken before the work that needs the call starts; UNAVAILABLE
    /// (with RetryInfo) while its breaker is open or its probes are taken.
    pub fn admit(&self, method: &'static str) -> Result<Permit, Status> {
        self.breaker(method).try_acquire()
    }

    /// The downstream's name, as in metrics and errors.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Calls `method` through `attempt`, which makes one try on the channel it is given with the
    /// deadline it is given (stamp it with [`Deadline::bound`]).
    ///
    /// The returned future is boxed: it keeps the compiler's `Send` checks of callers' futures
    /// simple, at the cost of one allocation per call.
    pub fn call<'a, T, F, Fut>(
        &'a self,
        method: &'static str,
        deadline: Deadline,
        safety: Safety,
        attempt: F,
    ) -> Pin<Box<dyn Future<Output = Result<T, Status>> + Send + 'a>>
    where
        F: FnMut(TracedChannel, Deadline) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, Status>> + Send + 'static,
        T: Send + 'static,
    {
        let span = client_span(self.service, method);
        let permit = self.admit(method);
        Box::pin(
            self.call_inner(method, permit, deadline, safety, attempt, span.clone())
                .instrument(span),
        )
    }

    /// Calls the unary `method` with `message`: each attempt sends a copy of it, stamped with the
    /// time left before `deadline`, through `send`.
    pub fn unary<'a, M, T, F, Fut>(
        &'a self,
        method: &'static str,
        deadline: Deadline,
        safety: Safety,
        message: M,
        send: F,
    ) -> Pin<Box<dyn Future<Output = Result<T, Status>> + Send + 'a>>
    where
        M: Clone + Send + 'a,
        F: FnMut(TracedChannel, tonic::Request<M>) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, Status>> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.admit(method);
        self.unary_inner(method, permit, deadline, safety, message, send)
    }

    /// Like [`Downstream::unary`], under a permit taken earlier with [`Downstream::admit`].
    pub fn unary_with<'a, M, T, F, Fut>(
        &'a self,
        permit: Permit,
        deadline: Deadline,
        safety: Safety,
        message: M,
        send: F,
    ) -> Pin<Box<dyn Future<Output = Result<T, Status>> + Send + 'a>>
    where
        M: Clone + Send + 'a,
        F: FnMut(TracedChannel, tonic::Request<M>) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, Status>> + Send + 'static,
        T: Send + 'static,
    {
        let method = permit.breaker().method();
        self.unary_inner(method, Ok(permit), deadline, safety, message, send)
    }

    fn unary_inner<'a, M, T, F, Fut>(
        &'a self,
        method: &'static str,
        permit: Result<Permit, Status>,
        deadline: Deadline,
        safety: Safety,
        message: M,
        mut send: F,
    ) -> Pin<Box<dyn Future<Output = Result<T, Status>> + Send + 'a>>
    where
        M: Clone + Send + 'a,
        F: FnMut(TracedChannel, tonic::Request<M>) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, Status>> + Send + 'static,
        T: Send + 'static,
    {
        let span = client_span(self.service, method);
        let attempt = move |channel, deadline: Deadline| {
            // `call_inner` starts no attempt once the deadline passed, so there is time left to send.
            let mut request = tonic::Request::new(message.clone());
            request.set_timeout(deadline.remaining());
            send(channel, request)
        };
        Box::pin(
            self.call_inner(method, permit, deadline, safety, attempt, span.clone())
                .instrument(span),
        )
    }

    async fn call_inner<T, F, Fut>(
        &self,
        method: &'static str,
        permit: Result<Permit, Status>,
        deadline: Deadline,
        safety: Safety,
        mut attempt: F,
        span: tracing::Span,
    ) -> Result<T, Status>
    where
        F: FnMut(TracedChannel, Deadline) -> Fut + Send,
        Fut: Future<Output = Result<T, Status>> + Send + 'static,
        T: Send + 'static,
    {
        let started = Instant::now();
        let budget = deadline.remaining();
        let result = match permit {
            Ok(permit) => {
                let result = self
                    .attempts(method, permit.breaker(), deadline, safety, &mut attempt)
                    .await;
                let outcome = Outcome::of(&result, budget, permit.breaker().config());
                permit.record(outcome);
                result
            }
            Err(refused) => Err(refused),
        };
        let code = match &result {
            Ok(_) => 0,
            Err(status) => status.code() as i32,
        };
        record_status(&span, code, code != 0);
        metrics::histogram!(
            "rpc_client_duration_seconds",
            "rpc_system" => "grpc",
            "rpc_service" => self.service,
            "rpc_method" => method,
            "rpc_grpc_status_code" => code.to_string(),
        )
        .record(started.elapsed().as_secs_f64());
        result
    }

    /// The attempts of one admitted call, until one succeeds or no retry is allowed.
    async fn attempts<T, F, Fut>(
        &self,
        method: &'static str,
        breaker: &Breaker,
        deadline: Deadline,
        safety: Safety,
        attempt: &mut F,
    ) -> Result<T, Status>
    where
        F: FnMut(TracedChannel, Deadline) -> Fut + Send,
        Fut: Future<Output = Result<T, Status>> + Send + 'static,
        T: Send + 'static,
    {
        self.budget.deposit();
        let mut retry = 0;
        loop {
            if deadline.is_expired() {
                return Err(Status::deadline_exceeded(format!(
                    "deadline exceeded before calling {}.{method}",
                    self.name
                )));
            }
            let one = attempt(self.channel.clone(), deadline);
            let name = self.name;
            let call = async move {
                one.await.map_err(|status| {
                    // tonic's own timeout ends a call as CANCELLED; past the deadline, say so.
                    if status.code() == Code::Cancelled && deadline.is_expired() {
                        Status::deadline_exceeded(format!(
                            "deadline exceeded calling {name}.{method}"
                        ))
                    } else {
                        status
                    }
                })
            };
            let failure = match call.await {
                Ok(value) => return Ok(value),
                Err(status) => status,
            };
            if !is_retryable(&failure, safety) || retry + 1 >= self.backoff.max_attempts {
                return Err(failure);
            }
            let delay = self.backoff.delay(retry);
            // Other calls opened the breaker meanwhile: this one stops with them.
            if delay >= deadline.remaining() || breaker.is_cooling_down() {
                return Err(failure);
            }
            if !self.budget.withdraw() {
                metrics::counter!("orderly_client_retry_budget_exhausted_total", "rpc_service" => self.service).increment(1);
                return Err(failure);
            }
            metrics::counter!("orderly_client_retries_total", "rpc_service" => self.service, "rpc_method" => method)
                .increment(1);
            tracing::debug!(downstream = self.name, method, retry, ?delay, status = %failure, "retrying");
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }
}
