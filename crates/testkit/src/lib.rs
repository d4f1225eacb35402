//! The harness every integration suite of Orderly shares: a fresh database on SQLite or
//! PostgreSQL ([`db`]), one service served on `127.0.0.1:0` with a typed client ready
//! ([`served`]), the whole suite with the gateway in front, started by the application's own
//! builder as `orderly up` starts it ([`stack`]), that gateway over HTTP ([`rest`]), and readers
//! for the google.rpc details a test checks ([`details`]).
//!
//! [`on_both_backends!`] runs each scenario of a suite as two tests, one per database.

// Every dependency is used (test builds excepted: they see the dev-dependencies too).
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod db;
pub mod details;
pub mod rest;
pub mod served;
pub mod stack;

pub use db::{TestBackend, TestDatabase};
pub use served::{Served, channel};
pub use stack::{Options, Stack};

/// Runs each `scenario(server)` as a test on SQLite and as a test on PostgreSQL, with the server
/// `$start(backend)` gives (`None` skips, as [`TestDatabase::create`] does for PostgreSQL when
/// it is not configured outside CI). `$start` is a path from the crate root, e.g.
/// `crate::support::start`.
#[macro_export]
macro_rules! on_both_backends {
    ($start:path; $($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    if let Some(server) = $start($crate::TestBackend::Sqlite).await {
                        super::$scenario(server).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    if let Some(server) = $start($crate::TestBackend::Postgres).await {
                        super::$scenario(server).await;
                    }
                }
            )*
        }
    };
}
