//! The five services together, in this test process, over real gRPC on loopback and real SQLite
//! (or PostgreSQL) databases: the order saga, its failures, its deadlines and its invariants; and
//! the gateway over them: every route, every mapped status, bad bodies, and the OpenAPI document
//! against what is served.

mod support;

mod auth;
mod example;
mod faults;
mod identity;
mod input;
mod rest;
mod saga;
mod stock;
mod watch;
