//! UserService against a real server on 127.0.0.1:0 over a real database: every RPC, error code and
//! validation rule, on SQLite and on PostgreSQL (skipped with a message when
//! `ORDERLY_TEST_POSTGRES_URL` is not set outside CI).

mod support;

mod batch;
mod concurrency;
mod crud;
mod list;
mod serving;
mod update;
mod validation;
