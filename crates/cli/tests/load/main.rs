//! The suite under load, as child processes: breakers that never make a failure worse, recovery
//! after a dead downstream returns, replicas lost under load. These tests time what happens under
//! load, so each runs alone (see [`crate::common::alone`]): on two cores, two shops of four processes at
//! once make the timings each other's.

#[path = "../common/mod.rs"]
mod common;

mod bench;
mod breakers;
mod memory;
mod recovery;
mod resilience;
