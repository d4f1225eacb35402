-- Orders and their items, in SQL that SQLite and PostgreSQL both run.
-- status is what callers see (PENDING, CONFIRMED, FAILED, CANCELLED); phase is the work under way:
-- FANOUT (charging and scheduling), COMPENSATING (undoing after a failure), CANCELLING (undoing a
-- confirmed order), or '' when settled. Every transition is a conditional UPDATE on both, so two
-- workers (a request and the recovery sweep, or two replicas) can never both win.
-- version counts transitions, so watchers on any replica can tell that an order changed.
CREATE TABLE orders (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    status          TEXT NOT NULL,
    phase           TEXT NOT NULL,
    status_reason   TEXT NOT NULL,
    currency        TEXT NOT NULL,
    total           BIGINT NOT NULL,
    recipient       TEXT NOT NULL,
    line1           TEXT NOT NULL,
    line2           TEXT NOT NULL,
    city            TEXT NOT NULL,
    postal_code     TEXT NOT NULL,
    country_code    TEXT NOT NULL,
    payment_id      TEXT NOT NULL,
    delivery_id     TEXT NOT NULL,
    version         BIGINT NOT NULL,
    create_time     BIGINT NOT NULL,
    update_time     BIGINT NOT NULL,
    UNIQUE (user_id, idempotency_key)
);

CREATE INDEX orders_by_user ON orders (user_id, id);
CREATE INDEX orders_unsettled ON orders (phase, update_time);

CREATE TABLE order_items (
    order_id   TEXT NOT NULL REFERENCES orders (id),
    position   BIGINT NOT NULL,
    sku        TEXT NOT NULL,
    quantity   BIGINT NOT NULL,
    unit_price BIGINT NOT NULL,
    PRIMARY KEY (order_id, position)
);
