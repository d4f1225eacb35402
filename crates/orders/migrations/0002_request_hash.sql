-- The fingerprint of the request that made each order: a SHA-256 over its validated fields, so that
-- an idempotency key reused with a different request is refused instead of answered with the first
-- order. Orders made before this column existed have '' and are not checked.
ALTER TABLE orders ADD COLUMN request_hash TEXT NOT NULL DEFAULT '';
