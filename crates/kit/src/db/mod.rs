//! The database of a service, from one URL: embedded SQLite (`sqlite://path/to/file.db`, created on
//! start, WAL mode; its module `sqlite.rs` says how it avoids a thread hop per query) or PostgreSQL
//! (`postgres://...`, sqlx's typed pool). Stores write each query once, in SQL both understand
//! (`$1` placeholders, TEXT and BIGINT columns), bind [`Param`]s and read [`Row`]s, and do not
//! know which backend runs it.

mod postgres;
mod sqlite;
mod value;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::SqlSafeStr;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};

pub use value::{Param, Row};

use sqlite::{Sqlite, SqliteTx};

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
    /// Connecting to PostgreSQL failed.
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] sqlx::Error),
    /// The SQLite checkpointer thread could not be started.
    #[error("cannot start the SQLite checkpointer: {0}")]
    Checkpointer(std::io::Error),
    /// Opening or setting up a SQLite file failed.
    #[error("cannot open the database: {0}")]
    Open(#[from] QueryError),
    /// The schema could not be migrated.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] MigrateError),
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// SQLite refused it.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL (or the pool) refused it.
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
    /// A stored value the store cannot read back.
    #[error("column {column}: {message}")]
    Decode {
        /// The column.
        column: &'static str,
        /// What is wrong with it.
        message: &'static str,
    },
    /// A statement was sent to a transaction that had ended.
    #[error("the transaction has ended")]
    Finished,
}

impl QueryError {
    /// Whether a unique constraint refused the write, e.g. a duplicate key.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Sqlite(rusqlite::Error::SqliteFailure(error, _)) => matches!(
                error.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            Self::Postgres(sqlx::Error::Database(error)) => error.is_unique_violation(),
            _ => false,
        }
    }

    /// Whether the database could not be reached or was busy: worth a retry, not a broken request.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Sqlite(rusqlite::Error::SqliteFailure(error, _)) => matches!(
                error.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::DiskFull
            ),
            Self::Postgres(error) => matches!(
                error,
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            ),
            _ => false,
        }
    }

    /// Whether the database refused a value it cannot take (PostgreSQL's SQLSTATE class 22, "data
    /// exception": a byte it cannot encode, a number out of range; SQLite's "too big"): the
    /// request's fault, which validation should have caught.
    pub fn is_bad_value(&self) -> bool {
        match self {
            Self::Sqlite(rusqlite::Error::SqliteFailure(error, _)) => {
                error.code == rusqlite::ErrorCode::TooBig
            }
            Self::Postgres(sqlx::Error::Database(error)) => {
                error.code().is_some_and(|code| code.starts_with("22"))
            }
            _ => false,
        }
    }
}

/// Where a service keeps its data, and how many connections it may open.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (created when missing) or `postgres://user:password@host/db`.
    pub url: String,
    /// The most connections the service opens to PostgreSQL (SQLite opens a reader per thread
    /// that reads, and one writer).
    pub max_connections: u32,
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

/// One embedded migration: its version, a description, and its SQL (written for both backends).
pub type EmbeddedMigration = (i64, &'static str, &'static str);

/// A service's database; clones share it.
#[derive(Debug, Clone)]
pub struct Database(Inner);

#[derive(Debug, Clone)]
enum Inner {
    Sqlite(Arc<Sqlite>),
    Postgres(PgPool),
}

/// Connects (see [`connect`]), applies `migrations`, and reports the connections every second in
/// the metrics `orderly_db_pool_connections{database, state="idle"|"in_use"}` (and PostgreSQL's
/// `orderly_db_pool_max_connections{database}`): what a service does at start. `name` labels the
/// metrics (e.g. `users`).
pub async fn open(
    name: &'static str,
    url: &str,
    max_connections: u32,
    migrations: &[EmbeddedMigration],
) -> Result<Database, DbError> {
    let database = connect(url, max_connections).await?;
    match &database.0 {
        Inner::Sqlite(sqlite) => {
            sqlite.migrate(migrations).await?;
            // The connections kept open, the readers and the writer: a burst opens more readers
            // (closed after), so `in_use` above this is a burst, not a wait.
            let kept = (sqlite::IDLE_READERS + 1) as f64;
            metrics::gauge!("orderly_db_pool_max_connections", "database" => name).set(kept);
            tokio::spawn(report_sqlite(name, Arc::downgrade(sqlite)));
        }
        Inner::Postgres(pool) => {
            migrator(migrations).run(pool).await?;
            let max = f64::from(pool.options().get_max_connections());
            metrics::gauge!("orderly_db_pool_max_connections", "database" => name).set(max);
            tokio::spawn(report_pool(name, pool.clone()));
        }
    }
    Ok(database)
}

/// Opens the database at `url`: a SQLite file (and its directory) is created when missing; a
/// PostgreSQL pool opens at most `max_connections`.
pub async fn connect(url: &str, max_connections: u32) -> Result<Database, DbError> {
    match Backend::of(url) {
        Some(Backend::Sqlite) => Ok(Database(Inner::Sqlite(Sqlite::open(url)?))),
        Some(Backend::Postgres) => Ok(Database(Inner::Postgres(
            postgres::connect(url, max_connections).await?,
        ))),
        None => Err(DbError::UnsupportedUrl(url.to_owned())),
    }
}

/// sqlx's migrator over `migrations`, embedded with `include_str!` rather than `sqlx::migrate!`:
/// the macro would compile sqlx's proc-macro crate for the build host, for no gain here.
fn migrator(migrations: &[EmbeddedMigration]) -> Migrator {
    Migrator::with_migrations(
        migrations
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
            .collect(),
    )
}

/// Samples a SQLite database's connections every second until it is dropped.
async fn report_sqlite(name: &'static str, sqlite: std::sync::Weak<Sqlite>) {
    while let Some(sqlite) = sqlite.upgrade() {
        let (idle, in_use) = sqlite.connections();
        drop(sqlite);
        report_connections(name, idle as f64, in_use as f64);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn report_connections(name: &'static str, idle: f64, in_use: f64) {
    metrics::gauge!("orderly_db_pool_connections", "database" => name, "state" => "idle").set(idle);
    metrics::gauge!("orderly_db_pool_connections", "database" => name, "state" => "in_use")
        .set(in_use);
}

/// Samples the pool's connections every second until it closes. sqlx exposes sizes, not the time
/// callers wait to acquire, so waiting shows as `in_use` reaching the maximum.
async fn report_pool(name: &'static str, pool: PgPool) {
    while !pool.is_closed() {
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
        report_connections(name, f64::from(idle), f64::from(size - idle));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Database {
    /// The first row `sql` returns, mapped by `map`.
    pub async fn fetch_optional<T: Send>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        map: impl FnOnce(&Row<'_>) -> Result<T, QueryError> + Send,
    ) -> Result<Option<T>, QueryError> {
        match &self.0 {
            Inner::Sqlite(db) => {
                db.read(|conn| sqlite::fetch_optional(conn, sql, params, map))
                    .await
            }
            Inner::Postgres(pool) => {
                let row = postgres::query(sql, params).fetch_optional(pool).await?;
                row.as_ref().map(|row| map(&Row::Postgres(row))).transpose()
            }
        }
    }

    /// Every row `sql` returns, mapped by `map`.
    pub async fn fetch_all<T: Send>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        mut map: impl FnMut(&Row<'_>) -> Result<T, QueryError> + Send,
    ) -> Result<Vec<T>, QueryError> {
        match &self.0 {
            Inner::Sqlite(db) => {
                db.read(|conn| sqlite::fetch_all(conn, sql, params, map))
                    .await
            }
            Inner::Postgres(pool) => postgres::query(sql, params)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| map(&Row::Postgres(row)))
                .collect(),
        }
    }

    /// Runs the write `sql`; the number of rows it changed.
    pub async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, QueryError> {
        match &self.0 {
            Inner::Sqlite(db) => db.write(|conn| sqlite::execute(conn, sql, params)).await,
            Inner::Postgres(pool) => Ok(postgres::query(sql, params)
                .execute(pool)
                .await?
                .rows_affected()),
        }
    }

    /// Runs the write `sql`, which returns rows (`RETURNING ...`); its first row, mapped by `map`.
    pub async fn write_returning<T: Send>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        map: impl FnOnce(&Row<'_>) -> Result<T, QueryError> + Send,
    ) -> Result<Option<T>, QueryError> {
        match &self.0 {
            Inner::Sqlite(db) => {
                db.write(|conn| sqlite::fetch_optional(conn, sql, params, map))
                    .await
            }
            Inner::Postgres(_) => self.fetch_optional(sql, params, map).await,
        }
    }

    /// Begins a transaction: rolled back unless [`Transaction::commit`]ted.
    pub async fn begin(&self) -> Result<Transaction, QueryError> {
        Ok(Transaction(match &self.0 {
            Inner::Sqlite(db) => Tx::Sqlite(db.begin().await?),
            Inner::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        }))
    }

    /// Runs a trivial query, the readiness probe of health checks: `Err` says why the database
    /// does not answer.
    pub async fn ping(&self) -> Result<(), QueryError> {
        self.fetch_optional("SELECT 1", &[], |_| Ok(()))
            .await
            .map(drop)
    }

    /// Closes the database's connections (PostgreSQL's pool; SQLite's close when the last clone
    /// is dropped).
    pub async fn close(&self) {
        if let Inner::Postgres(pool) = &self.0 {
            pool.close().await;
        }
    }
}

/// A transaction of a [`Database`]: rolled back when dropped uncommitted.
#[derive(Debug)]
pub struct Transaction(Tx);

#[derive(Debug)]
enum Tx {
    Sqlite(SqliteTx),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Transaction {
    /// Runs the write `sql` in the transaction; the number of rows it changed.
    pub async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, QueryError> {
        match &mut self.0 {
            Tx::Sqlite(tx) => sqlite::execute(tx.conn()?, sql, params),
            Tx::Postgres(tx) => Ok(postgres::query(sql, params)
                .execute(&mut **tx)
                .await?
                .rows_affected()),
        }
    }

    /// The first row `sql` returns in the transaction, mapped by `map`.
    pub async fn fetch_optional<T: Send>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        map: impl FnOnce(&Row<'_>) -> Result<T, QueryError> + Send,
    ) -> Result<Option<T>, QueryError> {
        match &mut self.0 {
            Tx::Sqlite(tx) => sqlite::fetch_optional(tx.conn()?, sql, params, map),
            Tx::Postgres(tx) => {
                let row = postgres::query(sql, params)
                    .fetch_optional(&mut **tx)
                    .await?;
                row.as_ref().map(|row| map(&Row::Postgres(row))).transpose()
            }
        }
    }

    /// Every row `sql` returns in the transaction, mapped by `map`.
    pub async fn fetch_all<T: Send>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        mut map: impl FnMut(&Row<'_>) -> Result<T, QueryError> + Send,
    ) -> Result<Vec<T>, QueryError> {
        match &mut self.0 {
            Tx::Sqlite(tx) => sqlite::fetch_all(tx.conn()?, sql, params, map),
            Tx::Postgres(tx) => postgres::query(sql, params)
                .fetch_all(&mut **tx)
                .await?
                .iter()
                .map(|row| map(&Row::Postgres(row)))
                .collect(),
        }
    }

    /// Makes the transaction's writes durable and visible.
    pub async fn commit(self) -> Result<(), QueryError> {
        match self.0 {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => Ok(tx.commit().await?),
        }
    }

    /// Undoes the transaction's writes.
    pub async fn rollback(self) -> Result<(), QueryError> {
        match self.0 {
            Tx::Sqlite(tx) => {
                drop(tx);
                Ok(())
            }
            Tx::Postgres(tx) => Ok(tx.rollback().await?),
        }
    }
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
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("nested/test.db");
        let db = connect(&format!("sqlite://{}", file.display()), 2)
            .await
            .expect("connect");
        db.ping().await.expect("ping");
        assert!(file.exists());
    }

    /// A fresh SQLite database with a table `t (k TEXT PRIMARY KEY, v BIGINT)`; the directory
    /// goes when the first value is dropped.
    async fn table_t() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = connect(
            &format!("sqlite://{}", dir.path().join("t.db").display()),
            2,
        )
        .await
        .expect("connect");
        db.execute(
            "CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT NOT NULL)",
            &[],
        )
        .await
        .expect("create");
        (dir, db)
    }

    #[tokio::test]
    async fn placeholders_bind_by_number_and_transactions_roll_back() {
        let (_dir, db) = table_t().await;
        // `$2` before `$1` in the text: each binds the parameter of its number.
        db.execute(
            "INSERT INTO t (v, k) VALUES ($2, $1)",
            crate::params!["a", 1],
        )
        .await
        .expect("insert");
        let v = db
            .fetch_optional("SELECT v FROM t WHERE k = $1", crate::params!["a"], |row| {
                row.int("v")
            })
            .await
            .expect("select");
        assert_eq!(v, Some(1));
        let duplicate = db
            .execute(
                "INSERT INTO t (k, v) VALUES ($1, $2)",
                crate::params!["a", 2],
            )
            .await
            .expect_err("duplicate");
        assert!(duplicate.is_unique_violation(), "{duplicate}");

        let mut tx = db.begin().await.expect("begin");
        tx.execute(
            "INSERT INTO t (k, v) VALUES ($1, $2)",
            crate::params!["b", 2],
        )
        .await
        .expect("insert in tx");
        drop(tx);
        let count = db
            .fetch_optional("SELECT COUNT(*) AS n FROM t", &[], |row| row.int("n"))
            .await
            .expect("count");
        assert_eq!(count, Some(1), "an uncommitted transaction leaves nothing");
    }

    #[tokio::test]
    async fn a_kept_snapshot_never_hides_a_committed_write() {
        let (_dir, db) = table_t().await;
        let read = || async {
            db.fetch_optional("SELECT v FROM t WHERE k = 'a'", &[], |row| row.int("v"))
                .await
                .expect("read")
        };
        assert_eq!(read().await, None);
        db.execute("INSERT INTO t (k, v) VALUES ('a', 1)", &[])
            .await
            .expect("insert");
        assert_eq!(read().await, Some(1));
        assert_eq!(read().await, Some(1), "a reused snapshot reads the same");
        db.execute("UPDATE t SET v = 2 WHERE k = 'a'", &[])
            .await
            .expect("update");
        assert_eq!(read().await, Some(2));
        let mut tx = db.begin().await.expect("begin");
        tx.execute("UPDATE t SET v = 3 WHERE k = 'a'", &[])
            .await
            .expect("update in tx");
        assert_eq!(read().await, Some(2), "uncommitted writes are not seen");
        tx.commit().await.expect("commit");
        assert_eq!(read().await, Some(3));
    }

    #[tokio::test]
    async fn a_second_handle_on_the_file_sees_what_the_first_commits_after_it_read() {
        let (dir, db) = table_t().await;
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let other = connect(&url, 2).await.expect("second handle");
        let read = || async {
            other
                .fetch_optional("SELECT v FROM t WHERE k = 'a'", &[], |row| row.int("v"))
                .await
                .expect("read")
        };
        assert_eq!(read().await, None, "a read that keeps a snapshot");
        db.execute("INSERT INTO t (k, v) VALUES ('a', 1)", &[])
            .await
            .expect("insert through the first handle");
        assert_eq!(
            read().await,
            Some(1),
            "the second handle's snapshot renewed"
        );
    }

    /// Commits so far on a SQLite database.
    fn commits(db: &Database) -> u64 {
        match &db.0 {
            Inner::Sqlite(sqlite) => sqlite.commits(),
            Inner::Postgres(_) => 0,
        }
    }

    /// Lets every other task of this (current-thread) runtime run until it waits.
    async fn let_others_queue() {
        tokio::task::yield_now().await;
    }

    #[tokio::test]
    async fn writes_queued_together_share_one_commit_and_each_is_durable_when_answered() {
        let (_dir, db) = table_t().await;
        let before = commits(&db);
        let mut open = db.begin().await.expect("begin");
        open.execute("INSERT INTO t (k, v) VALUES ('first', 0)", &[])
            .await
            .expect("insert");
        let writers: Vec<_> = (1..=20)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    db.execute(
                        "INSERT INTO t (k, v) VALUES ($1, $2)",
                        crate::params![&format!("k{i}"), i],
                    )
                    .await
                })
            })
            .collect();
        let_others_queue().await;
        open.commit().await.expect("commit");
        for writer in writers {
            assert_eq!(writer.await.expect("join").expect("insert"), 1);
        }
        let count = db
            .fetch_optional("SELECT COUNT(*) AS n FROM t", &[], |row| row.int("n"))
            .await
            .expect("count");
        assert_eq!(count, Some(21), "every answered write is committed");
        assert_eq!(
            commits(&db) - before,
            1,
            "21 writes queued together, one commit"
        );
    }

    #[tokio::test]
    async fn a_failed_write_in_a_batch_undoes_only_its_own_statements() {
        let (_dir, db) = table_t().await;
        let mut open = db.begin().await.expect("begin");
        open.execute("INSERT INTO t (k, v) VALUES ('a', 1)", &[])
            .await
            .expect("insert");
        let duplicate = tokio::spawn({
            let db = db.clone();
            async move {
                db.execute("INSERT INTO t (k, v) VALUES ('a', 2)", &[])
                    .await
            }
        });
        let half_done = tokio::spawn({
            let db = db.clone();
            async move {
                let mut tx = db.begin().await?;
                tx.execute("INSERT INTO t (k, v) VALUES ('c', 3)", &[])
                    .await?;
                tx.execute("INSERT INTO t (k, v) VALUES ('a', 4)", &[])
                    .await?;
                tx.commit().await
            }
        });
        let fine = tokio::spawn({
            let db = db.clone();
            async move {
                db.execute("INSERT INTO t (k, v) VALUES ('d', 5)", &[])
                    .await
            }
        });
        let_others_queue().await;
        open.commit().await.expect("commit");
        let duplicate = duplicate.await.expect("join").expect_err("duplicate key");
        assert!(duplicate.is_unique_violation(), "{duplicate}");
        let half_done = half_done.await.expect("join").expect_err("duplicate key");
        assert!(half_done.is_unique_violation(), "{half_done}");
        fine.await.expect("join").expect("insert");
        let rows = db
            .fetch_all("SELECT k, v FROM t ORDER BY k", &[], |row| {
                Ok((row.text("k")?, row.int("v")?))
            })
            .await
            .expect("rows");
        assert_eq!(rows, [("a".to_owned(), 1), ("d".to_owned(), 5)]);
    }

    #[tokio::test]
    async fn the_last_writer_to_leave_a_batch_commits_the_others() {
        let (_dir, db) = table_t().await;
        let mut open = db.begin().await.expect("begin");
        open.execute("INSERT INTO t (k, v) VALUES ('rolled back', 1)", &[])
            .await
            .expect("insert");
        let queued = tokio::spawn({
            let db = db.clone();
            async move {
                db.execute("INSERT INTO t (k, v) VALUES ('kept', 2)", &[])
                    .await
            }
        });
        let_others_queue().await;
        drop(open);
        queued.await.expect("join").expect("insert");
        let rows = db
            .fetch_all("SELECT k FROM t", &[], |row| row.text("k"))
            .await
            .expect("rows");
        assert_eq!(rows, ["kept"]);
    }

    #[tokio::test]
    async fn sqlite_migrations_run_once_and_continue_from_sqlx_records() {
        const MIGRATIONS: &[EmbeddedMigration] = &[
            (1, "t", "CREATE TABLE t (k TEXT PRIMARY KEY)"),
            (2, "u", "CREATE TABLE u (k TEXT PRIMARY KEY)"),
        ];
        let dir = tempfile::tempdir().expect("temporary directory");
        // A file migrated to version 1 by an earlier release, which recorded it in sqlx's table.
        let legacy = format!("sqlite://{}", dir.path().join("legacy.db").display());
        let db = connect(&legacy, 1).await.expect("connect");
        db.execute(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, success BOOLEAN NOT NULL)",
            &[],
        )
        .await
        .expect("sqlx table");
        db.execute("INSERT INTO _sqlx_migrations VALUES (1, TRUE)", &[])
            .await
            .expect("record");
        db.execute(MIGRATIONS[0].2, &[]).await.expect("version 1");
        drop(db);
        for _ in 0..2 {
            let db = open("test", &legacy, 1, MIGRATIONS).await.expect("open");
            let tables = db
                .fetch_all(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('t', 'u')",
                    &[],
                    |row| row.text("name"),
                )
                .await
                .expect("tables");
            assert_eq!(tables.len(), 2, "{tables:?}");
        }
    }

    /// A SQLite database `name` in `dir` with one table `t (v TEXT)`, and its file.
    async fn text_table(dir: &std::path::Path, name: &str) -> (Database, std::path::PathBuf) {
        let file = dir.join(name);
        let db = connect(&format!("sqlite://{}", file.display()), 2)
            .await
            .expect("connect");
        db.execute("CREATE TABLE t (v TEXT NOT NULL)", &[])
            .await
            .expect("create");
        (db, file)
    }

    /// Under writes and reads that never pause, the WAL is started over instead of growing: every
    /// checkpoint copies it, but SQLite rewinds it only at a moment with no reader on it, which
    /// steady reads never leave by themselves.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sqlite_wal_starts_over_under_steady_writes_and_reads() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (db, _) = text_table(dir.path(), "steady.db").await;
        let wal = dir.path().join("steady.db-wal");
        // A smaller restart size than services use, that a test writes past many times in seconds.
        let limit = 16 * 1024 * 1024;
        match &db.0 {
            Inner::Sqlite(sqlite) => sqlite.restart_above(limit),
            Inner::Postgres(_) => unreachable!("a SQLite URL"),
        }
        // One 16 KiB row a commit, from four writers pausing 2 ms between commits (at most 32 MB of
        // rows a second: a busy service's pace, not a burst the checkpointer's rounds cannot see),
        // while two readers read without a pause, until four times the restart size is written.
        let row = "x".repeat(16 * 1024);
        let rows = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..2 {
            let (db, done) = (db.clone(), done.clone());
            readers.push(tokio::spawn(async move {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    db.fetch_optional("SELECT COUNT(*) AS n FROM t", &[], |row| row.int("n"))
                        .await
                        .expect("count");
                    tokio::task::yield_now().await;
                }
            }));
        }
        let wanted = 4 * limit / (16 * 1024);
        let mut writers = Vec::new();
        for _ in 0..4 {
            let (db, row, wal, rows) = (db.clone(), row.clone(), wal.clone(), rows.clone());
            writers.push(tokio::spawn(async move {
                let mut largest = 0;
                while rows.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < wanted {
                    db.execute("INSERT INTO t (v) VALUES ($1)", crate::params![&row])
                        .await
                        .expect("insert");
                    largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                largest
            }));
        }
        let mut largest = 0;
        for writer in writers {
            largest = largest.max(writer.await.expect("writer"));
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        for reader in readers {
            reader.await.expect("reader");
        }
        // Without restarts the WAL holds every commit (more than four times the restart size);
        // with them it is cut back at each checkpoint round that finds it past the restart size,
        // having grown past it by a round of these writes (8 MB at their fastest), or a few when a
        // busy machine delays the checkpointer.
        let total = wanted * 16 * 1024;
        assert!(
            largest < 3 * limit,
            "the WAL reached {largest} bytes after {total} bytes of rows (restart above {limit})"
        );
    }

    #[tokio::test]
    async fn commits_reach_the_sqlite_file_without_a_commit_paying_for_it() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (db, file) = text_table(dir.path(), "wal.db").await;
        let auto = db
            .fetch_optional("PRAGMA wal_autocheckpoint", &[], |row| {
                row.int("wal_autocheckpoint")
            })
            .await
            .expect("pragma");
        assert_eq!(auto, Some(0), "commits must not checkpoint");
        // Well past SQLite's default auto-checkpoint of 1000 pages, which commits no longer run.
        let row = "x".repeat(4000);
        for _ in 0..1500 {
            db.execute("INSERT INTO t (v) VALUES ($1)", crate::params![&row])
                .await
                .expect("insert");
        }
        // The rows reach the database file itself once the background checkpointer has run.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let size = || std::fs::metadata(&file).map_or(0, |m| m.len());
        while size() < 1500 * 4000 && std::time::Instant::now() < deadline {
            tokio::time::sleep(sqlite::CHECKPOINT_EVERY).await;
        }
        assert!(size() >= 1500 * 4000, "database file is {} bytes", size());
    }
}
