//! Database pools from one URL: embedded SQLite (`sqlite://path/to/file.db`, created on start, WAL
//! mode) or PostgreSQL (`postgres://...`). Services write their queries once, in SQL both understand
//! (`$1` placeholders, no backend-specific types), against sqlx's `Any` driver.
//!
//! SQLite's WAL is checkpointed by a connection of its own in the background, not by whichever
//! call's commit crosses the auto-checkpoint size: a checkpoint syncs the WAL and the database file
//! (two fsyncs, 15–25 ms each on this machine's disk), and a call that paid for it was the p99 of
//! CreateOrder (`bench/overload.sh`: 32 ms at 4 in flight, where p50 is 7 ms).

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, SqlSafeStr};

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names no backend Orderly supports.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// The directory for a SQLite file could not be created.
    #[error("cannot create the directory of {path}: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Connecting failed.
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] sqlx::Error),
    /// The schema could not be migrated.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] MigrateError),
}

/// Where a service keeps its data, and how many connections it may open.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (created when missing) or `postgres://user:password@host/db`.
    pub url: String,
    /// The most connections the service opens.
    pub max_connections: u32,
}

/// Connects (see [`connect`]), applies `migrations`, and reports the pool in the metrics
/// `orderly_db_pool_connections{database, state="idle"|"in_use"}` and
/// `orderly_db_pool_max_connections{database}`: what a service does at start. `name` labels the
/// metrics (e.g. `users`).
pub async fn open(
    name: &'static str,
    url: &str,
    max_connections: u32,
    migrations: &[EmbeddedMigration],
) -> Result<AnyPool, DbError> {
    let pool = connect(url, max_connections).await?;
    migrate(&pool, migrations).await?;
    let max = f64::from(pool.options().get_max_connections());
    metrics::gauge!("orderly_db_pool_max_connections", "database" => name).set(max);
    tokio::spawn(report_pool(name, pool.clone()));
    Ok(pool)
}

/// How often the background checkpointer copies SQLite's WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Checkpoints the SQLite database at `url` every [`CHECKPOINT_EVERY`] on a connection outside
/// `pool`, until the pool closes. PASSIVE mode neither waits for nor blocks readers and writers;
/// what it cannot copy yet (pages a reader still sees) it copies next time.
async fn checkpoint(url: String, pool: AnyPool) {
    let mut conn = match AnyConnection::connect(&url).await {
        Ok(conn) => conn,
        Err(error) => {
            tracing::warn!(%error, "cannot open the SQLite checkpoint connection; the WAL grows until restart");
            return;
        }
    };
    while !pool.is_closed() {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if let Err(error) = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
            tracing::warn!(%error, "SQLite checkpoint failed; retrying");
        }
    }
    let _ = conn.close().await;
}

/// Samples the pool's connections every second until it closes. sqlx exposes sizes, not the time
/// callers wait to acquire, so waiting shows as `in_use` reaching the maximum.
async fn report_pool(name: &'static str, pool: AnyPool) {
    while !pool.is_closed() {
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
        metrics::gauge!("orderly_db_pool_connections", "database" => name, "state" => "idle")
            .set(f64::from(idle));
        metrics::gauge!("orderly_db_pool_connections", "database" => name, "state" => "in_use")
            .set(f64::from(size - idle));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The backend of `url`, if Orderly supports it.
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// Opens a pool of at most `max_connections` on `url`. SQLite files (and their directories) are
/// created when missing; an in-memory SQLite database keeps a single connection, since each
/// connection would otherwise see a database of its own.
pub async fn connect(url: &str, max_connections: u32) -> Result<AnyPool, DbError> {
    install_default_drivers();
    let backend = Backend::of(url).ok_or_else(|| DbError::UnsupportedUrl(url.to_owned()))?;
    let mut options = AnyPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(5));
    let mut url = url.to_owned();
    let mut file = false;
    if backend == Backend::Sqlite {
        if url.contains(":memory:") || url.contains("mode=memory") {
            options = options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        } else {
            prepare_sqlite_file(&mut url)?;
            file = true;
        }
        options = options.after_connect(|conn, _meta| {
            Box::pin(async move {
                // WAL lets readers run beside the one writer; NORMAL sync is durable across process
                // crashes; the busy timeout queues writers instead of failing them; checkpoints
                // are the background checkpointer's, not the committing call's.
                conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;")
                    .await?;
                Ok(())
            })
        });
    }
    let pool = options.connect(&url).await?;
    if file {
        tokio::spawn(checkpoint(url, pool.clone()));
    }
    Ok(pool)
}

/// Creates the directory of a SQLite file and asks sqlx to create the file itself.
fn prepare_sqlite_file(url: &mut String) -> Result<(), DbError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    if !url.contains("mode=") {
        url.push_str(if url.contains('?') {
            "&mode=rwc"
        } else {
            "?mode=rwc"
        });
    }
    Ok(())
}

/// One embedded migration: its version, a description, and its SQL (written for both backends).
pub type EmbeddedMigration = (i64, &'static str, &'static str);

/// Applies `migrations` that have not run yet, in version order, each in a transaction.
///
/// Migrations are embedded with `include_str!` rather than `sqlx::migrate!`: the macro would compile
/// sqlx's proc-macro crate and a second bundled SQLite for the build host, for no gain here.
pub async fn migrate(pool: &AnyPool, migrations: &[EmbeddedMigration]) -> Result<(), MigrateError> {
    let migrations = migrations
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                description.into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations).run(pool).await
}

/// Whether the database answers a trivial query: the readiness probe of health checks.
pub async fn ping(pool: &AnyPool) -> bool {
    sqlx::query("SELECT 1").execute(pool).await.is_ok()
}

/// Whether `error` is a violated unique constraint, e.g. a duplicate key.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_are_told_by_scheme() {
        assert_eq!(Backend::of("sqlite://data/users.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::of("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(
            Backend::of("postgres://u:p@localhost/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::of("mysql://localhost/db"), None);
    }

    #[tokio::test]
    async fn a_sqlite_file_and_its_directory_are_created() {
        let dir = std::env::temp_dir().join(format!("orderly-kit-db-{}", std::process::id()));
        let file = dir.join("nested/test.db");
        let pool = connect(&format!("sqlite://{}", file.display()), 2)
            .await
            .expect("connect");
        assert!(ping(&pool).await);
        assert!(file.exists());
        pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn commits_reach_the_sqlite_file_without_a_commit_paying_for_it() {
        let dir = std::env::temp_dir().join(format!("orderly-kit-wal-{}", std::process::id()));
        let file = dir.join("wal.db");
        let pool = connect(&format!("sqlite://{}", file.display()), 2)
            .await
            .expect("connect");
        sqlx::query("CREATE TABLE t (v TEXT NOT NULL)")
            .execute(&pool)
            .await
            .expect("create");
        let auto: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&pool)
            .await
            .expect("pragma");
        assert_eq!(auto, 0, "commits must not checkpoint");
        // Well past SQLite's default auto-checkpoint of 1000 pages, which commits no longer run.
        let row = "x".repeat(4000);
        for _ in 0..1500 {
            sqlx::query("INSERT INTO t (v) VALUES ($1)")
                .bind(&row)
                .execute(&pool)
                .await
                .expect("insert");
        }
        // The rows reach the database file itself once the background checkpointer has run.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let size = || std::fs::metadata(&file).map_or(0, |m| m.len());
        while size() < 1500 * 4000 && std::time::Instant::now() < deadline {
            tokio::time::sleep(CHECKPOINT_EVERY).await;
        }
        assert!(size() >= 1500 * 4000, "database file is {} bytes", size());
        pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
