-- Deliveries, at most one per order, in SQL that SQLite and PostgreSQL both run.
-- A CANCELLED row with an empty address is a tombstone: a cancel arrived before the schedule, and
-- the unique order id keeps that delivery from ever being scheduled.
CREATE TABLE deliveries (
    id           TEXT PRIMARY KEY,
    order_id     TEXT NOT NULL UNIQUE,
    recipient    TEXT NOT NULL,
    line1        TEXT NOT NULL,
    line2        TEXT NOT NULL,
    city         TEXT NOT NULL,
    postal_code  TEXT NOT NULL,
    country_code TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('SCHEDULED', 'CANCELLED')),
    reason       TEXT NOT NULL,
    eta          BIGINT NOT NULL,
    create_time  BIGINT NOT NULL,
    update_time  BIGINT NOT NULL
);
