//! The users table: every query the service makes, in SQL that SQLite and PostgreSQL both run.
//!
//! Each write is one statement, so there is nothing half-written to undo: a duplicate email fails
//! the INSERT or UPDATE itself, through the unique index on the lower-cased address.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, AssertSqlSafe, Row};

use orderly_kit::time::now_micros;

use crate::model::{Email, UserId, UserName, UserRecord};

/// The schema, applied at start.
pub const MIGRATIONS: &[orderly_kit::db::EmbeddedMigration] =
    &[(1, "users", include_str!("../migrations/0001_users.sql"))];

/// `SELECT` of every column of a user, followed by the rest of the query.
macro_rules! select_users {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, email, create_time, update_time FROM users ",
            $rest
        )
    };
}

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another user has this email address (compared case-insensitively).
    #[error("email address already in use")]
    EmailTaken,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn map_write_error(error: sqlx::Error) -> StoreError {
    if orderly_kit::db::is_unique_violation(&error) {
        StoreError::EmailTaken
    } else {
        StoreError::Database(error)
    }
}

/// Queries on the users table.
#[derive(Debug, Clone)]
pub struct UserStore {
    pool: AnyPool,
}

impl UserStore {
    /// A store over `pool`, whose database has [`MIGRATIONS`] applied.
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// Stores a new user.
    pub async fn insert(&self, name: &UserName, email: &Email) -> Result<UserRecord, StoreError> {
        let now = now_micros();
        let record = UserRecord {
            id: UserId::generate().to_string(),
            name: name.as_str().to_owned(),
            email: email.as_str().to_owned(),
            create_time: now,
            update_time: now,
        };
        sqlx::query(
            "INSERT INTO users (id, name, email, email_key, create_time, update_time) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&record.id)
        .bind(&record.name)
        .bind(&record.email)
        .bind(email.key())
        .bind(record.create_time)
        .bind(record.update_time)
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(record)
    }

    /// The user with `id`, if any.
    pub async fn get(&self, id: &UserId) -> Result<Option<UserRecord>, sqlx::Error> {
        sqlx::query(select_users!("WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| record(&row))
            .transpose()
    }

    /// Changes the given fields of user `id`; `None` when there is no such user.
    pub async fn update(
        &self,
        id: &UserId,
        name: Option<&UserName>,
        email: Option<&Email>,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            "UPDATE users SET name = COALESCE($2, name), email = COALESCE($3, email), \
             email_key = COALESCE($4, email_key), update_time = $5 \
             WHERE id = $1 RETURNING id, name, email, create_time, update_time",
        )
        .bind(id.to_string())
        .bind(name.map(|n| n.as_str().to_owned()))
        .bind(email.map(|e| e.as_str().to_owned()))
        .bind(email.map(Email::key))
        .bind(now_micros())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(row.map(|row| record(&row)).transpose()?)
    }

    /// Deletes user `id`; whether there was one.
    pub async fn delete(&self, id: &UserId) -> Result<bool, sqlx::Error> {
        let result = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Up to `limit` users whose id comes after `after` (all, when `None`), in id order: with
    /// time-ordered ids that is creation order, and it is stable under inserts.
    pub async fn list(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, sqlx::Error> {
        sqlx::query(select_users!("WHERE id > $1 ORDER BY id LIMIT $2"))
            .bind(after.unwrap_or_default().to_owned())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(record)
            .collect()
    }

    /// The users among `ids` that exist, in no particular order.
    pub async fn batch_get(&self, ids: &[UserId]) -> Result<Vec<UserRecord>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        // Only numbered placeholders are formatted into the SQL; the ids are bound.
        let sql = format!(
            concat!(select_users!("WHERE id IN "), "({})"),
            placeholders.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.to_string());
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(record)
            .collect()
    }
}

fn record(row: &AnyRow) -> Result<UserRecord, sqlx::Error> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        create_time: row.try_get("create_time")?,
        update_time: row.try_get("update_time")?,
    })
}
