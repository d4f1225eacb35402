//! The `orderly` binary as users run it: `serve` and `up` as child processes (health, reflection,
//! shutdown, the gateway, telemetry export), and the deploy files that start it (compose, Docker,
//! Prometheus, Grafana).

#[path = "../common/mod.rs"]
mod common;

mod certs;
mod client;
mod deploy;
mod gateway;
mod kubernetes;
mod process;
mod prometheus;
mod schemathesis;
mod telemetry;
mod token;
