//! Fresh databases for the integration tests of services: a SQLite file in a temporary directory,
//! or a new PostgreSQL database made through the administrative connection named by
//! `ORDERLY_TEST_POSTGRES_URL`.
//!
//! Without that variable PostgreSQL tests skip with a message, except under CI (`CI` set), where a
//! missing PostgreSQL is a failure: CI must run them.

/// The variable naming the administrative PostgreSQL connection for tests.
pub const POSTGRES_URL_VAR: &str = "ORDERLY_TEST_POSTGRES_URL";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server of `ORDERLY_TEST_POSTGRES_URL`.
    Postgres,
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A fresh database of `backend`, or `None` (with a message) when PostgreSQL is not configured
    /// outside CI.
    ///
    /// # Panics
    /// When the database cannot be made: a test cannot run without it.
    pub async fn create(backend: TestBackend) -> Option<Self> {
        match backend {
            TestBackend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Some(Self {
                    url,
                    cleanup: Cleanup::Sqlite(dir),
                })
            }
            TestBackend::Postgres => {
                let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "{POSTGRES_URL_VAR} must be set under CI: PostgreSQL tests may not skip there"
                    );
                    eprintln!("skipped: set {POSTGRES_URL_VAR} to run this test on PostgreSQL");
                    return None;
                };
                let name = format!("orderly_test_{}", uuid::Uuid::new_v4().simple());
                let admin = orderly_kit::db::connect(&admin_url, 1)
                    .await
                    .expect("connect to PostgreSQL");
                admin
                    .execute(&format!("CREATE DATABASE {name}"), &[])
                    .await
                    .expect("create test database");
                admin.close().await;
                let url = with_database(&admin_url, &name);
                Some(Self {
                    url,
                    cleanup: Cleanup::Postgres { admin_url, name },
                })
            }
        }
    }

    /// The URL a service connects with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A service's database settings for this database, with at most `max_connections`.
    pub fn config(&self, max_connections: u32) -> orderly_kit::db::DatabaseConfig {
        orderly_kit::db::DatabaseConfig {
            url: self.url.clone(),
            max_connections,
        }
    }

    /// Removes the database (a SQLite directory goes when this is dropped). Best effort.
    pub async fn remove(self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup
            && let Ok(admin) = orderly_kit::db::connect(admin_url, 1).await
        {
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            let _ = admin.execute(&sql, &[]).await;
            admin.close().await;
        }
    }
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// (charged, refunded) over every payment in a payments database, read as an auditor would: the
/// money invariant the saga tests check.
///
/// # Panics
/// When the database cannot be read: the check cannot be made without it.
pub async fn money_taken(payments: &orderly_kit::db::Database) -> (i64, i64) {
    payments
        .fetch_optional(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS charged, \
             CAST(COALESCE(SUM(refunded), 0) AS BIGINT) AS refunded FROM payments",
            &[],
            |row| Ok((row.int("charged")?, row.int("refunded")?)),
        )
        .await
        .expect("sum payments")
        .expect("one row")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_replace_the_path() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "t1"),
            "postgres://u:p@h:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h:5432", "t1"),
            "postgres://u:p@h:5432/t1"
        );
        assert_eq!(
            with_database("postgres://h/db?sslmode=disable", "t1"),
            "postgres://h/t1?sslmode=disable"
        );
    }
}
