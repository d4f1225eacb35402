-- The unit price each line was reserved at, so that ReserveStock prices an order in the same call
-- (and a retried ReserveStock answers the prices of the first). Lines reserved before this
-- migration have no recorded price: currency '' and price 0.
ALTER TABLE reservation_lines ADD COLUMN currency TEXT NOT NULL DEFAULT '';
ALTER TABLE reservation_lines ADD COLUMN price BIGINT NOT NULL DEFAULT 0;
