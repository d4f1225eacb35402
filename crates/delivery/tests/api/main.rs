//! DeliveryService against a real server on 127.0.0.1:0 over a real database: one delivery per
//! order however often it is scheduled, cancels that stick (also before the schedule arrives), and
//! the request checks — each scenario on SQLite and on PostgreSQL (skipped with a message when
//! `ORDERLY_TEST_POSTGRES_URL` is not set outside CI).

mod support;

mod deliveries;
