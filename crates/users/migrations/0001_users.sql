-- Users. Written in SQL that SQLite and PostgreSQL both run.
-- Times are microseconds since the Unix epoch; ids are UUIDv7 text, so ordering by id is ordering
-- by creation. email_key is the lower-cased email: uniqueness is case-insensitive.
CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    email_key   TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);

CREATE UNIQUE INDEX users_email_key ON users (email_key);
