-- Products, their stock, and the reservations orders make, in SQL that SQLite and PostgreSQL both
-- run. Prices are integer minor units; times are microseconds since the Unix epoch.
-- Every unit of a product is in exactly one of on_hand, reserved and sold: a reservation moves
-- units from on_hand to reserved, its commit from reserved to sold, its release back to on_hand.
CREATE TABLE products (
    sku         TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    currency    TEXT NOT NULL,
    price       BIGINT NOT NULL CHECK (price > 0),
    on_hand     BIGINT NOT NULL CHECK (on_hand >= 0),
    reserved    BIGINT NOT NULL CHECK (reserved >= 0),
    sold        BIGINT NOT NULL CHECK (sold >= 0),
    -- sku, name and description in lower case, for ListProducts' query.
    search      TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);

-- One per order, keyed by its id. A release that came before its reservation leaves a RELEASED
-- row with no lines, which keeps that reservation from ever being made.
CREATE TABLE reservations (
    order_id    TEXT PRIMARY KEY,
    status      TEXT NOT NULL CHECK (status IN ('RESERVED', 'COMMITTED', 'RELEASED')),
    expire_time BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);

-- What the expiry sweeper looks for.
CREATE INDEX reservations_expiring ON reservations (expire_time) WHERE status = 'RESERVED';

CREATE TABLE reservation_lines (
    order_id TEXT NOT NULL REFERENCES reservations (order_id),
    sku      TEXT NOT NULL REFERENCES products (sku),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, sku)
);

-- AdjustStock, once per idempotency key.
CREATE TABLE stock_adjustments (
    idempotency_key TEXT PRIMARY KEY,
    sku             TEXT NOT NULL REFERENCES products (sku),
    delta           BIGINT NOT NULL,
    reason          TEXT NOT NULL,
    create_time     BIGINT NOT NULL
);
