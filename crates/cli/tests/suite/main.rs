//! The four services together, in this test process, over real gRPC on loopback and real SQLite
//! (or PostgreSQL) databases: the order saga, its failures, its deadlines and its invariants.

mod support;

mod example;
mod faults;
mod input;
mod saga;
mod watch;
