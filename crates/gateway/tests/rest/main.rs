//! The gateway over real services: every route, every mapped status, bad bodies, connections that
//! misbehave, and the OpenAPI document against what is served.

mod connections;
mod errors;
mod openapi;
mod orders;
mod users;
