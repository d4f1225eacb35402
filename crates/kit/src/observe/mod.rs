//! What a process tells its operators: JSON logs with trace ids and OTLP trace export
//! ([`telemetry`]), server and client spans with W3C trace context across calls ([`trace`]), and
//! Prometheus metrics with the server's RED metrics ([`metrics`]), both keyed by the call's method
//! parsed once ([`rpc`]).

pub mod exemplars;
pub mod metrics;
pub mod rpc;
pub mod services;
pub mod telemetry;
pub mod trace;
