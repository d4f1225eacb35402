//! Opt-in fault injection: added latency and failed calls, so that resilience can be exercised
//! against real servers in tests and demos. Everything is off by default.
//!
//! - `--latency` delays every call; `--fail-rate` fails that fraction of calls with UNAVAILABLE;
//!   `--fault-methods Charge,Refund` narrows both to the named methods.
//! - With `--fault-metadata`, a caller can ask for a fault on one call: `x-orderly-fault-delay: 300ms`
//!   delays it, `x-orderly-fault-code: 14` (or `unavailable`) fails it with that gRPC code.
//!
//! It wraps business services only (see `tune_service!`), so health checks and reflection are never
//! faulted. No tower layer injects faults, so this is a small service of our own; a faulted call
//! never reaches the service.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::{Code, Status};
use tower::Service;

use crate::metadata::{FAULT_CODE as CODE_HEADER, FAULT_DELAY as DELAY_HEADER};

/// Which faults to inject.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FaultConfig {
    /// Fraction of calls, 0 to 1, to fail with UNAVAILABLE before they reach the service.
    #[arg(long, env = "ORDERLY_FAIL_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub fail_rate: f64,

    /// Latency added to every call, e.g. `200ms`.
    #[arg(long, env = "ORDERLY_LATENCY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: Duration,

    /// Honour the per-call fault headers `x-orderly-fault-delay` and `x-orderly-fault-code`.
    #[arg(long, env = "ORDERLY_FAULT_METADATA", default_value_t = false)]
    pub fault_metadata: bool,

    /// Methods that `--fail-rate` and `--latency` apply to, by name (e.g. `Charge`); all when empty.
    #[arg(long, env = "ORDERLY_FAULT_METHODS", value_delimiter = ',')]
    pub fault_methods: Vec<String>,
}

impl FaultConfig {
    /// Whether any fault can be injected at all.
    pub fn is_active(&self) -> bool {
        self.fail_rate > 0.0 || !self.latency.is_zero() || self.fault_metadata
    }

    /// Whether `--fail-rate` and `--latency` apply to the call of `path` (`/package.Service/Method`).
    fn targets(&self, path: &str) -> bool {
        let method = path.rsplit('/').next().unwrap_or_default();
        self.fault_methods.is_empty() || self.fault_methods.iter().any(|m| m == method)
    }
}

fn parse_rate(value: &str) -> Result<f64, String> {
    let rate: f64 = value.parse().map_err(|e| format!("not a number: {e}"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err("a rate is between 0 and 1".into())
    }
}

/// A service with faults injected (see the module documentation).
#[derive(Debug, Clone)]
pub struct FaultService<S> {
    inner: S,
    config: FaultConfig,
}

impl<S> FaultService<S> {
    /// `inner` with `config`'s faults.
    pub fn new(inner: S, config: FaultConfig) -> Self {
        Self { inner, config }
    }
}

/// The layer of [`FaultService`]: injects the faults `config` asks for.
#[derive(Debug, Clone)]
pub struct FaultLayer(FaultConfig);

impl FaultLayer {
    /// The faults of `config`.
    pub fn new(config: FaultConfig) -> Self {
        Self(config)
    }
}

impl<S> tower::Layer<S> for FaultLayer {
    type Service = FaultService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FaultService::new(inner, self.0.clone())
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for FaultService<S> {
    const NAME: &'static str = S::NAME;
}

/// What to do to one call.
struct Fault {
    delay: Duration,
    fail: Option<Code>,
}

impl<S> FaultService<S> {
    fn fault_for<B>(&self, request: &http::Request<B>) -> Option<Fault> {
        if !self.config.is_active() {
            return None;
        }
        // Rate and latency apply to the targeted methods; metadata faults to any call.
        let targeted = self.config.targets(request.uri().path());
        let mut fault = Fault {
            delay: if targeted {
                self.config.latency
            } else {
                Duration::ZERO
            },
            fail: None,
        };
        if self.config.fault_metadata {
            let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
            if let Some(delay) =
                header(DELAY_HEADER).and_then(|v| humantime::parse_duration(v).ok())
            {
                fault.delay += delay;
            }
            fault.fail = header(CODE_HEADER).and_then(parse_code);
        }
        if fault.fail.is_none()
            && targeted
            && self.config.fail_rate > 0.0
            && fastrand::f64() < self.config.fail_rate
        {
            fault.fail = Some(Code::Unavailable);
        }
        Some(fault)
    }
}

fn parse_code(value: &str) -> Option<Code> {
    if let Ok(number) = value.parse::<i32>() {
        return Some(Code::from_i32(number)).filter(|code| *code != Code::Ok);
    }
    let wanted = value.replace(['_', '-'], "").to_ascii_lowercase();
    (1..=16)
        .map(Code::from_i32)
        .find(|code| format!("{code:?}").to_ascii_lowercase() == wanted)
}

impl<S, B> Service<http::Request<B>> for FaultService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let Some(fault) = self.fault_for(&request) else {
            return Box::pin(self.inner.call(request));
        };
        tracing::debug!(path = request.uri().path(), delay = ?fault.delay, fail = ?fault.fail, "injecting fault");
        // The ready service must be the one called; keep a fresh clone for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            if !fault.delay.is_zero() {
                tokio::time::sleep(fault.delay).await;
            }
            match fault.fail {
                Some(code) => Ok(crate::refuse::answer(
                    request,
                    Status::new(code, "injected fault"),
                )),
                None => inner.call(request).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_by_number_and_name() {
        assert_eq!(parse_code("14"), Some(Code::Unavailable));
        assert_eq!(parse_code("unavailable"), Some(Code::Unavailable));
        assert_eq!(
            parse_code("DEADLINE_EXCEEDED"),
            Some(Code::DeadlineExceeded)
        );
        assert_eq!(parse_code("0"), None);
        assert_eq!(parse_code("nonsense"), None);
    }

    #[test]
    fn methods_narrow_the_faults() {
        let all = FaultConfig::default();
        assert!(all.targets("/orderly.payments.v1.PaymentService/Charge"));
        let charges = FaultConfig {
            fault_methods: vec!["Charge".into()],
            ..FaultConfig::default()
        };
        assert!(charges.targets("/orderly.payments.v1.PaymentService/Charge"));
        assert!(!charges.targets("/orderly.payments.v1.PaymentService/Refund"));
    }

    #[test]
    fn rates_are_fractions() {
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert!(parse_rate("1.5").is_err());
        assert!(parse_rate("-0.1").is_err());
    }
}
