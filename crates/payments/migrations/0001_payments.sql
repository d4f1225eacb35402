-- Payments and their refunds, in SQL that SQLite and PostgreSQL both run.
-- Amounts are integer minor units; times are microseconds since the Unix epoch.
-- A payment with amount 0 is a voided charge: a refund by charge key arrived before the charge, and
-- the unique idempotency key keeps that charge from ever being made.
CREATE TABLE payments (
    id              TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL,
    currency        TEXT NOT NULL,
    amount          BIGINT NOT NULL CHECK (amount >= 0),
    refunded        BIGINT NOT NULL CHECK (refunded >= 0 AND refunded <= amount),
    idempotency_key TEXT NOT NULL UNIQUE,
    create_time     BIGINT NOT NULL,
    update_time     BIGINT NOT NULL
);

CREATE TABLE refunds (
    id              TEXT PRIMARY KEY,
    payment_id      TEXT NOT NULL REFERENCES payments (id),
    amount          BIGINT NOT NULL CHECK (amount > 0),
    idempotency_key TEXT NOT NULL UNIQUE,
    reason          TEXT NOT NULL,
    create_time     BIGINT NOT NULL
);
