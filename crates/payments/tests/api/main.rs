//! PaymentService against a real server on 127.0.0.1:0 over a real database: charges, refunds by
//! payment id and by charge key, partial and over-refunds, idempotency keys and their reuse, and
//! the request checks — each scenario on SQLite and on PostgreSQL (skipped with a message when
//! `ORDERLY_TEST_POSTGRES_URL` is not set outside CI).

mod support;

mod charge;
mod refund;
