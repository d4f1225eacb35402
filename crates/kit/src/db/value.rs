//! What crosses the store boundary: the values a query binds ([`Param`]) and the row it reads
//! ([`Row`]), the same for SQLite and PostgreSQL so that a store writes each query once.

use crate::db::QueryError;

/// A value bound to a query's `$N` placeholder. Every column Orderly stores is text or a 64-bit
/// integer; a NULL says which of the two it stands for, as PostgreSQL types its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param<'a> {
    /// Text.
    Text(&'a str),
    /// A 64-bit integer.
    Int(i64),
    /// A NULL text value (e.g. "leave this column as it is" in `COALESCE($n, column)`).
    NullText,
    /// A NULL integer.
    NullInt,
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(value: &'a str) -> Self {
        Self::Text(value)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(value: &'a String) -> Self {
        Self::Text(value)
    }
}

impl From<i64> for Param<'_> {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(value: Option<&'a str>) -> Self {
        value.map_or(Self::NullText, Self::Text)
    }
}

impl From<Option<i64>> for Param<'_> {
    fn from(value: Option<i64>) -> Self {
        value.map_or(Self::NullInt, Self::Int)
    }
}

/// The parameters of a query, `$1` first: `params![id, name]`.
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::db::Param::from($value)),*]
    };
}

/// One row a query returned, read by column name.
#[derive(Debug)]
pub enum Row<'a> {
    /// A SQLite row.
    Sqlite(&'a rusqlite::Row<'a>),
    /// A PostgreSQL row.
    Postgres(&'a sqlx::postgres::PgRow),
}

impl Row<'_> {
    /// The text in `column`.
    pub fn text(&self, column: &str) -> Result<String, QueryError> {
        match self {
            Self::Sqlite(row) => Ok(row.get(column)?),
            Self::Postgres(row) => Ok(sqlx::Row::try_get(*row, column)?),
        }
    }

    /// The integer in `column`.
    pub fn int(&self, column: &str) -> Result<i64, QueryError> {
        match self {
            Self::Sqlite(row) => Ok(row.get(column)?),
            Self::Postgres(row) => Ok(sqlx::Row::try_get(*row, column)?),
        }
    }
}
