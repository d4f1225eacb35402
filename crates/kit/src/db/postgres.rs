//! PostgreSQL through sqlx's typed Postgres pool (no `Any` driver converting every row), with
//! statements prepared once per connection by sqlx.

use std::time::Duration;

use sqlx::postgres::{PgArguments, PgPool, PgPoolOptions};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Postgres};

use crate::db::{DbError, Param};

/// Opens a pool of at most `max_connections` on `url`.
pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    Ok(PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(5))
        // A connection that was idle is checked by its first query, not by an extra round trip.
        .test_before_acquire(false)
        .connect(url)
        .await?)
}

/// `sql` with `params` bound, `$1` first.
pub(crate) fn query<'q>(sql: &str, params: &[Param<'_>]) -> Query<'q, Postgres, PgArguments> {
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for param in params {
        query = match *param {
            Param::Text(text) => query.bind(text),
            Param::Int(int) => query.bind(int),
            Param::NullText => query.bind(None::<&str>),
            Param::NullInt => query.bind(None::<i64>),
        };
    }
    query
}
