//! The users table: every query the service makes, in SQL that SQLite and PostgreSQL both run.
//!
//! Each write is one statement, so there is nothing half-written to undo: a duplicate email fails
//! the INSERT or UPDATE itself, through the unique index on the lower-cased address.

use orderly_kit::db::{Database, Param, QueryError, Row};
use orderly_kit::params;
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
    Database(#[from] QueryError),
}

fn map_write_error(error: QueryError) -> StoreError {
    if error.is_unique_violation() {
        StoreError::EmailTaken
    } else {
        StoreError::Database(error)
    }
}

/// Queries on the users table.
#[derive(Debug, Clone)]
pub struct UserStore {
    db: Database,
}

impl UserStore {
    /// A store over `db`, which has [`MIGRATIONS`] applied.
    pub fn new(db: Database) -> Self {
        Self { db }
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
        self.db
            .execute(
                "INSERT INTO users (id, name, email, email_key, create_time, update_time) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                params![
                    &record.id,
                    &record.name,
                    &record.email,
                    email.key().as_str(),
                    record.create_time,
                    record.update_time,
                ],
            )
            .await
            .map_err(map_write_error)?;
        Ok(record)
    }

    /// The user with `id`, if any.
    pub async fn get(&self, id: &UserId) -> Result<Option<UserRecord>, QueryError> {
        let id = id.to_string();
        self.db
            .fetch_optional(select_users!("WHERE id = $1"), params![&id], record)
            .await
    }

    /// Changes the given fields of user `id`; `None` when there is no such user.
    pub async fn update(
        &self,
        id: &UserId,
        name: Option<&UserName>,
        email: Option<&Email>,
    ) -> Result<Option<UserRecord>, StoreError> {
        let id = id.to_string();
        let key = email.map(Email::key);
        self.db
            .write_returning(
                "UPDATE users SET name = COALESCE($2, name), email = COALESCE($3, email), \
                 email_key = COALESCE($4, email_key), update_time = $5 \
                 WHERE id = $1 RETURNING id, name, email, create_time, update_time",
                params![
                    &id,
                    name.map(UserName::as_str),
                    email.map(Email::as_str),
                    key.as_deref(),
                    now_micros(),
                ],
                record,
            )
            .await
            .map_err(map_write_error)
    }

    /// Deletes user `id`; whether there was one.
    pub async fn delete(&self, id: &UserId) -> Result<bool, QueryError> {
        let id = id.to_string();
        let deleted = self
            .db
            .execute("DELETE FROM users WHERE id = $1", params![&id])
            .await?;
        Ok(deleted > 0)
    }

    /// Up to `limit` users whose id comes after `after` (all, when `None`), in id order: with
    /// time-ordered ids that is creation order, and it is stable under inserts.
    pub async fn list(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, QueryError> {
        self.db
            .fetch_all(
                select_users!("WHERE id > $1 ORDER BY id LIMIT $2"),
                params![after.unwrap_or_default(), i64::from(limit)],
                record,
            )
            .await
    }

    /// The users among `ids` that exist, in no particular order.
    pub async fn batch_get(&self, ids: &[UserId]) -> Result<Vec<UserRecord>, QueryError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        // Only numbered placeholders are formatted into the SQL; the ids are bound.
        let sql = format!(
            concat!(select_users!("WHERE id IN "), "({})"),
            placeholders.join(", ")
        );
        let ids: Vec<String> = ids.iter().map(UserId::to_string).collect();
        let params: Vec<Param<'_>> = ids.iter().map(Param::from).collect();
        self.db.fetch_all(&sql, &params, record).await
    }
}

fn record(row: &Row<'_>) -> Result<UserRecord, QueryError> {
    Ok(UserRecord {
        id: row.text("id")?,
        name: row.text("name")?,
        email: row.text("email")?,
        create_time: row.int("create_time")?,
        update_time: row.int("update_time")?,
    })
}
