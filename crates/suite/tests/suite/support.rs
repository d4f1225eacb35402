//! The suite comes from the shared harness; the saga tests read it under these names.

pub use orderly_testkit::stack::{Options, Stack as Suite, failing, order_request, slow};
