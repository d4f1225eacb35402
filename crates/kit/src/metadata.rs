//! Names of the request metadata the kit's layers read, for the clients and gateways that forward
//! them.

/// Request metadata that delays one call, e.g. `300ms`, on a server started with
/// `--fault-metadata` (tests and demos only).
pub const FAULT_DELAY: &str = "x-orderly-fault-delay";
/// Request metadata that fails one call with a gRPC code, e.g. `14` or `unavailable`, on a server
/// started with `--fault-metadata` (tests and demos only).
pub const FAULT_CODE: &str = "x-orderly-fault-code";

/// Request metadata by which a service passes on the address of the anonymous client it calls
/// for (the gateway, for a request without a token), so that the client, not the service, is
/// rate limited. Believed only from a caller that proved over mutual TLS to be an Orderly service.
pub const CLIENT_ADDRESS: &str = "x-orderly-client-address";
