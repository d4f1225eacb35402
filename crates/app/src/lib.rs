//! Orderly as an application: which services there are ([`registry`]), their flags on the
//! command line ([`flags`]), and the one [`Builder`] that starts any set of them in a process with
//! their readiness and admin port. `orderly up` (all of them), `orderly serve --target X` (one)
//! and the tests' stack are its three callers.
//!
//! A service is one crate implementing `orderly_kit::declare::Service` and one line in
//! [`registry::SERVICES`].

// Every dependency is used (test builds excepted: they see the dev-dependencies too).
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod builder;
pub mod flags;
pub mod registry;

pub use builder::{AppError, Builder, Settings, System};
