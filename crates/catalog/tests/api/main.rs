//! CatalogService against a real server on 127.0.0.1:0 over a real database: products (create,
//! read, list with a query, update by field mask, stock adjustments) and stock reservations (all
//! lines or none, never below zero under concurrency, commit, release, expiry, idempotency) — each
//! scenario on SQLite and on PostgreSQL (skipped with a message when `ORDERLY_TEST_POSTGRES_URL`
//! is not set outside CI).

mod support;

mod products;
mod stock;
