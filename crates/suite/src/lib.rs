//! Orderly's cross-service test suite lives in `tests/suite`: the order saga over the five real
//! services (money, parcels and stock checked in their databases), identity and rate limits
//! across them, and the REST gateway over them. This
//! library is empty; it exists because a package needs a target.

// Every dependency is used (test builds excepted: they see the dev-dependencies too).
#![cfg_attr(not(test), deny(unused_crate_dependencies))]
