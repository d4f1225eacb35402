//! The five services together, in this test process, over real gRPC on loopback and real SQLite
//! (or PostgreSQL) databases: identity and rate limits across them, faults and their invariants,
//! stock, input rules and watches. The saga's own tests are orders' (`crates/orders/tests`), the
//! gateway's are the gateway's (`crates/gateway/tests`).

mod support;

mod auth;
mod example;
mod faults;
mod identity;
mod input;
mod stock;
mod watch;
