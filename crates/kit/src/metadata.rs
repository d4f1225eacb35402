//! Names of the request metadata the kit's layers read, for the clients and gateways that forward
//! them.

/// Request metadata that delays one call, e.g. `300ms`, on a server started with
/// `--fault-metadata` (tests and demos only).
pub const FAULT_DELAY: &str = "x-orderly-fault-delay";
/// Request metadata that fails one call with a gRPC code, e.g. `14` or `unavailable`, on a server
/// started with `--fault-metadata` (tests and demos only).
pub const FAULT_CODE: &str = "x-orderly-fault-code";
