//! The protection of each call to a downstream, as a tower layer over its channel: the circuit
//! breaker of the called method, the client span (whose trace context is written into the
//! request's headers) and the call's duration metric. The method is the `GrpcMethod` that tonic's
//! generated clients put in every request's extensions, so no caller names it.
//!
//! A call may take several attempts: retries happen at the typed call, where the request can be
//! built again ([`crate::client::downstream`]). The breaker counts calls, not attempts, so every
//! attempt of one call carries the same [`CallScope`] in its extensions (a [`Scoped`] channel
//! puts it there): the first attempt takes the breaker's permit (or uses one taken before the
//! call) and opens the span, later attempts run under them, and the caller ends the scope once,
//! with the call's final result ([`CallScope::finish`]). A request without a scope passes through
//! unprotected.
//!
//! Metrics: `rpc_client_duration_seconds` (whole call, final status).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tonic::{GrpcMethod, Status};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::client::breaker::{Breaker, BreakerConfig, Outcome, Permit};
use crate::observe::rpc::RpcMethod;
use crate::observe::trace::{client_span, inject_context, record_status};

/// The breakers of one downstream, one per method, each made on the method's first call (with
/// the method's names and metric handles, see [`RpcMethod`]).
#[derive(Debug)]
pub struct Breakers {
    name: &'static str,
    config: BreakerConfig,
    by_method: Mutex<HashMap<&'static str, Entry>>,
}

/// A method's breaker, and its names once a call has named its service.
#[derive(Debug, Clone)]
struct Entry {
    breaker: Breaker,
    rpc: Arc<OnceLock<Arc<RpcMethod>>>,
}

impl Breakers {
    /// No breakers yet for the downstream `name`; each will open and recover as `config` says.
    pub fn new(name: &'static str, config: BreakerConfig) -> Self {
        Self {
            name,
            config,
            by_method: Mutex::default(),
        }
    }

    /// The breaker of `method` (e.g. a generated `*_service_methods` constant).
    pub fn get(&self, method: &'static str) -> Breaker {
        let mut by_method = self.lock();
        by_method
            .entry(method)
            .or_insert_with(|| Entry {
                breaker: Breaker::new(self.name, method, &self.config),
                rpc: Arc::default(),
            })
            .breaker
            .clone()
    }

    /// The breaker and the [`RpcMethod`] of a call's method.
    fn for_call(&self, method: &GrpcMethod<'_>) -> (Breaker, Arc<RpcMethod>) {
        let mut by_method = self.lock();
        let rpc = || RpcMethod::of(method.service(), method.method());
        if let Some(entry) = by_method.get(method.method()) {
            return (entry.breaker.clone(), entry.rpc.get_or_init(rpc).clone());
        }
        // `RpcMethod` keeps the names for the life of the process, once each.
        let rpc = rpc();
        let breaker = Breaker::new(self.name, rpc.method, &self.config);
        by_method.insert(
            rpc.method,
            Entry {
                breaker: breaker.clone(),
                rpc: Arc::new(OnceLock::from(rpc.clone())),
            },
        );
        (breaker, rpc)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<&'static str, Entry>> {
        self.by_method
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One call as its attempts share it: put in each attempt's request extensions by a [`Scoped`]
/// channel, begun by the first attempt through [`CallLayer`], ended by [`CallScope::finish`].
/// Clones share it.
#[derive(Debug, Clone)]
pub struct CallScope(Arc<Mutex<ScopeState>>);

#[derive(Debug)]
struct ScopeState {
    /// The time the call was given, for [`Outcome::of`].
    budget: Duration,
    /// A permit taken before the call started, used by its first attempt.
    admitted: Option<Permit>,
    /// Set by the first attempt.
    call: Option<Begun>,
    finished: bool,
}

/// What the first attempt of a call set up.
#[derive(Debug)]
struct Begun {
    rpc: Arc<RpcMethod>,
    breaker: Breaker,
    /// `None` when the breaker refused the call.
    permit: Option<Permit>,
    span: tracing::Span,
    started: Instant,
}

impl CallScope {
    /// A call given `budget` to run, under `admitted` if its permit was taken before it started.
    pub fn new(budget: Duration, admitted: Option<Permit>) -> Self {
        Self(Arc::new(Mutex::new(ScopeState {
            budget,
            admitted,
            call: None,
            finished: false,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, ScopeState> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The called service and method, once the first attempt has been made.
    pub fn names(&self) -> Option<(&'static str, &'static str)> {
        self.lock()
            .call
            .as_ref()
            .map(|c| (c.rpc.service, c.rpc.method))
    }

    /// Whether the called method's breaker is open and cooling down: another attempt now would
    /// be refused, so the call should stop with its last failure.
    pub fn is_cooling_down(&self) -> bool {
        self.lock()
            .call
            .as_ref()
            .is_some_and(|c| c.breaker.is_cooling_down())
    }

    /// Begins the call on its first attempt (taking the breaker's permit and opening the span),
    /// and gives the span every attempt runs in; the breaker's UNAVAILABLE when it refuses.
    fn begin(&self, breakers: &Breakers, method: &GrpcMethod<'_>) -> Result<tracing::Span, Status> {
        let mut state = self.lock();
        if let Some(call) = &state.call {
            return Ok(call.span.clone());
        }
        let (breaker, rpc) = breakers.for_call(method);
        let permit = match state.admitted.take() {
            Some(permit) => Ok(permit),
            None => breaker.try_acquire(),
        };
        let span = client_span(&rpc);
        let (permit, refused) = match permit {
            Ok(permit) => (Some(permit), None),
            Err(refused) => (None, Some(refused)),
        };
        state.call = Some(Begun {
            rpc,
            breaker,
            permit,
            span: span.clone(),
            started: Instant::now(),
        });
        refused.map_or(Ok(span), Err)
    }

    /// Ends the call with its final `result`: the breaker counts it (see [`Outcome::of`]), its span
    /// and `rpc_client_duration_seconds` record its status. Only the first finish counts.
    pub fn finish<T>(&self, result: &Result<T, Status>) {
        let mut state = self.lock();
        if std::mem::replace(&mut state.finished, true) {
            return;
        }
        let Some(call) = state.call.take() else {
            return;
        };
        if let Some(permit) = call.permit {
            permit.record(Outcome::of(result, state.budget, call.breaker.config()));
        }
        let code = match result {
            Ok(_) => 0,
            Err(status) => status.code() as i32,
        };
        record_status(&call.span, code, code != 0);
        let seconds = call.started.elapsed().as_secs_f64();
        call.rpc.client_duration(code).record(seconds);
        crate::observe::exemplars::offer(
            &call.span,
            crate::observe::exemplars::End::Client,
            (
                call.rpc.service,
                call.rpc.method,
                crate::observe::rpc::code_label(code),
            ),
            seconds,
        );
    }
}

/// A tower layer giving every call through a channel its breaker, span and metric (see the
/// module documentation).
#[derive(Debug, Clone)]
pub struct CallLayer {
    breakers: Arc<Breakers>,
}

impl CallLayer {
    /// Calls protected by `breakers`.
    pub fn new(breakers: Arc<Breakers>) -> Self {
        Self { breakers }
    }
}

impl<S> Layer<S> for CallLayer {
    type Service = Protected<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Protected {
            inner,
            breakers: self.breakers.clone(),
        }
    }
}

/// The service made by [`CallLayer`].
#[derive(Debug, Clone)]
pub struct Protected<S> {
    inner: S,
    breakers: Arc<Breakers>,
}

impl<S, B, R> Service<http::Request<B>> for Protected<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let extensions = request.extensions();
        let (Some(scope), Some(method)) = (
            extensions.get::<CallScope>().cloned(),
            extensions.get::<GrpcMethod<'static>>().cloned(),
        ) else {
            return Box::pin(self.inner.call(request));
        };
        match scope.begin(&self.breakers, &method) {
            Ok(span) => {
                inject_context(&span, request.headers_mut());
                Box::pin(self.inner.call(request).instrument(span))
            }
            Err(refused) => Box::pin(std::future::ready(Ok(refused.into_http()))),
        }
    }
}

/// A channel whose requests all belong to one call: it puts the call's [`CallScope`] in each
/// request's extensions, for the [`CallLayer`] below it.
#[derive(Debug, Clone)]
pub struct Scoped<S> {
    inner: S,
    scope: CallScope,
}

impl<S> Scoped<S> {
    /// `inner`, with every request marked as part of `scope`.
    pub fn new(inner: S, scope: CallScope) -> Self {
        Self { inner, scope }
    }
}

impl<S, B> Service<http::Request<B>> for Scoped<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        request.extensions_mut().insert(self.scope.clone());
        self.inner.call(request)
    }
}

/// The channel each attempt of a downstream call is made on.
pub type CallChannel = Scoped<Protected<crate::client::Transport>>;
