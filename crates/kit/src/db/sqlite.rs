//! Embedded SQLite through rusqlite, with no thread hop per query: a read runs on the thread that
//! runs the call, on a connection taken from a small stack of reader connections (each with its
//! prepared statements cached); writes run, one at a time, on the one writer connection, which
//! writers queue for asynchronously instead of contending for SQLite's file lock.
//!
//! Written over rusqlite by hand rather than with a pool crate (r2d2, deadpool-sqlite, sqlx):
//! those run each query on a blocking thread or a connection thread and hand the result back, and
//! that hop was most of the CPU of a GetUser (futex wake-ups and context switches, `perf record`,
//! see the README's performance section). A point read through a cached statement takes a few
//! microseconds, less than the hop itself, so it is done where the call runs. A read never waits:
//! a worker thread runs one read at a time to its end, so there are never more readers in use than
//! threads, and a missing one is opened.
//!
//! A reader keeps its read transaction (its snapshot) open from one read to the next for as long
//! as nothing was committed meanwhile: writes to a file from this process are counted in one
//! counter per file, shared by every handle on it, so a reader whose snapshot is as new as the
//! last commit needs no new one. Starting and ending a read transaction takes and drops a lock on
//! the WAL index (two `fcntl` calls), a sixth of a GetUser's database time. Commits made by
//! *another process* on the same file cannot be counted: a snapshot is renewed at least every
//! [`MAX_SNAPSHOT_AGE`], which bounds how stale such a reader may be (SQLite is for one process;
//! replicas share PostgreSQL). A commit ends the snapshots of the idle readers, so that none
//! holds back the checkpointer.
//!
//! Durability: WAL with `synchronous = NORMAL`: a commit is in the WAL (in the OS) before it
//! returns, so a killed process loses nothing acknowledged; a power loss can lose the commits since
//! the last checkpoint's sync. The WAL is checkpointed by a thread of its own, not by whichever
//! commit crosses the auto-checkpoint size: a checkpoint syncs the WAL and the database file (two
//! fsyncs, each far slower than a commit), and a call that paid for it was the p99 of CreateOrder.
//!
//! Those checkpoints copy the WAL into the file but never start it over: SQLite rewinds a WAL only
//! when a write begins with every frame copied and no reader on a WAL snapshot, and under steady
//! writes and reads that moment never comes. The WAL then grew without end (2 GB in 30 s of
//! orders), and every commit wrote to fresh pages that the kernel zeroes first (`memset` under
//! `pwrite64`, a seventh of `orderly up`'s CPU). So once the WAL passes [`RESTART_ABOVE`], the
//! checkpointer makes that moment: it takes the writer (writes wait for it asynchronously, and a
//! batch waiting to commit is committed), has every reader drop its snapshot as it goes idle, and
//! runs a RESTART checkpoint, after which the next commit writes from the start of the WAL again,
//! over pages already in memory, and cuts a longer file back to that size.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, ToSql};
use tokio::sync::Mutex as AsyncMutex;

use crate::db::{DbError, EmbeddedMigration, Param, QueryError, Row};

mod group_commit;

pub(crate) use group_commit::SqliteTx;
use group_commit::Writer;

/// Set on every connection. WAL lets readers run beside the one writer; NORMAL sync is durable
/// across process crashes; checkpoints are the checkpointer's. [`connection`] also sets the busy
/// timeout ([`BUSY_TIMEOUT`]) and the WAL's size limit ([`RESTART_ABOVE`]).
const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
    PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;";

/// How long a connection waits out another process's lock (a second process on the same file).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection: more than every query a service makes.
const STATEMENTS: usize = 64;

/// Reader connections kept open when idle; more are opened (and closed after) under a burst.
pub(crate) const IDLE_READERS: usize = 16;

/// The longest a reader keeps one snapshot: how stale a read may be after a commit by another
/// process on the same file.
pub(crate) const MAX_SNAPSHOT_AGE: Duration = Duration::from_millis(100);

/// The commit counter of the file at `path`, shared by every handle this process opens on it.
fn commit_counter(path: &Path) -> Arc<AtomicU64> {
    static COUNTERS: OnceLock<Mutex<HashMap<PathBuf, Weak<AtomicU64>>>> = OnceLock::new();
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mut counters = COUNTERS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    counters.retain(|_, counter| counter.strong_count() > 0);
    if let Some(counter) = counters.get(&key).and_then(Weak::upgrade) {
        return counter;
    }
    let counter = Arc::new(AtomicU64::new(0));
    counters.insert(key, Arc::downgrade(&counter));
    counter
}

/// How often the checkpointer copies the WAL into the database file.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The WAL size past which the checkpointer starts the WAL over (see the module documentation);
/// also the size a longer WAL is cut back to when it starts over (`journal_size_limit`, set by
/// [`connection`]). At 16 MB, each of `orderly up`'s databases started over at nearly every round
/// under load, and the writes waiting out those restarts raised CreateOrder's p99 by a fifth; at
/// 64 MB, about once a second, nothing measurable (README's performance section).
pub(crate) const RESTART_ABOVE: u64 = 64 * 1024 * 1024;

/// How long a restart waits for the readers still on a WAL snapshot before it gives up until the
/// next round: they finish in microseconds, so this is time for a slow read.
const RESTART_WAIT: Duration = Duration::from_millis(100);

/// One SQLite database: its reader connections and its writer.
#[derive(Debug)]
pub(crate) struct Sqlite {
    /// The file, or `None` for an in-memory database, which has only the writer (every other
    /// connection would see a database of its own).
    file: Option<PathBuf>,
    readers: Mutex<Vec<Reader>>,
    /// Writes committed to the file so far, by any handle of this process: a reader's snapshot
    /// taken at this count is current.
    commits: Arc<AtomicU64>,
    /// Reader connections open, idle or in use.
    open_readers: AtomicUsize,
    writer: Arc<AsyncMutex<Writer>>,
    /// Set while the checkpointer starts the WAL over: readers then end their snapshots as they
    /// go idle instead of keeping them.
    restarting: AtomicBool,
    /// The WAL size past which it is started over: [`RESTART_ABOVE`], less in a test.
    restart_above: AtomicU64,
}

impl Sqlite {
    /// Opens (creating the file and its directory when missing) the database of a `sqlite:` URL,
    /// and starts its checkpointer.
    pub(crate) fn open(url: &str) -> Result<Arc<Self>, DbError> {
        let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
        let path = rest.split('?').next().unwrap_or_default();
        let file = if path.is_empty() || path == ":memory:" || rest.contains("mode=memory") {
            None
        } else {
            let path = PathBuf::from(path);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            Some(path)
        };
        let writer = match &file {
            Some(path) => connection(path)?,
            None => {
                let conn = Connection::open_in_memory().map_err(QueryError::from)?;
                conn.execute_batch("PRAGMA foreign_keys = ON;")
                    .map_err(QueryError::from)?;
                conn
            }
        };
        let commits = match &file {
            Some(path) => commit_counter(path),
            None => Arc::default(),
        };
        let db = Arc::new(Self {
            file,
            readers: Mutex::default(),
            commits,
            open_readers: AtomicUsize::new(0),
            writer: Arc::new(AsyncMutex::new(Writer::new(writer))),
            restarting: AtomicBool::new(false),
            restart_above: AtomicU64::new(RESTART_ABOVE),
        });
        if let Some(path) = &db.file {
            spawn_checkpointer(path.clone(), Arc::downgrade(&db))?;
        }
        Ok(db)
    }

    /// Runs `read` on a reader connection, on this thread.
    pub(crate) async fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, QueryError>,
    ) -> Result<T, QueryError> {
        let Some(path) = &self.file else {
            return read(&self.writer.lock().await.conn);
        };
        let idle = self.idle_readers().pop();
        let mut reader = match idle {
            Some(reader) => reader,
            None => {
                let conn = connection(path)?;
                self.open_readers.fetch_add(1, Ordering::Relaxed);
                Reader {
                    conn,
                    snapshot: None,
                }
            }
        };
        let commits = self.commits.load(Ordering::Acquire);
        let current = reader
            .snapshot
            .is_some_and(|(at, begun)| at == commits && begun.elapsed() < MAX_SNAPSHOT_AGE);
        if !current {
            // The snapshot is taken by the first read after BEGIN, so it holds every commit
            // counted here (and maybe later ones, which only makes it renew once more).
            reader.end_snapshot();
            reader.conn.execute_batch("BEGIN")?;
            reader.snapshot = Some((commits, Instant::now()));
        }
        let result = read(&reader.conn);
        if reader.conn.is_autocommit() {
            // An error ended the transaction.
            reader.snapshot = None;
        }
        if self.restarting.load(Ordering::Acquire) {
            reader.end_snapshot();
        }
        let mut readers = self.idle_readers();
        if readers.len() < IDLE_READERS {
            readers.push(reader);
        } else {
            self.open_readers.fetch_sub(1, Ordering::Relaxed);
        }
        result
    }

    fn idle_readers(&self) -> MutexGuard<'_, Vec<Reader>> {
        self.readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a commit, and ends the snapshots of idle readers: each would otherwise keep the WAL
    /// from being checkpointed past it.
    fn committed(&self) {
        self.commits.fetch_add(1, Ordering::Release);
        for reader in self.idle_readers().iter_mut() {
            reader.end_snapshot();
        }
    }

    /// Starts the WAL over with `checkpointer`'s connection (see the module documentation): no
    /// write runs meanwhile, and readers leave their WAL snapshots as they finish. Returns whether
    /// the WAL was started over (not when a reader stayed on its snapshot past [`RESTART_WAIT`]).
    fn restart_wal(&self, checkpointer: &Connection) -> Result<bool, QueryError> {
        // A blocking wait on the writer's async lock: this runs on the checkpointer's own thread.
        let mut writer = self.writer.blocking_lock();
        // A batch whose members have done their work may be waiting for one of them to commit
        // it; its open transaction would keep the WAL from starting over.
        if writer.commit_open() {
            self.committed();
        }
        self.restarting.store(true, Ordering::Release);
        for reader in self.idle_readers().iter_mut() {
            reader.end_snapshot();
        }
        checkpointer.busy_timeout(RESTART_WAIT)?;
        let outcome = checkpointer.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| {
            row.get::<_, i64>(0)
        });
        self.restarting.store(false, Ordering::Release);
        drop(writer);
        checkpointer.busy_timeout(BUSY_TIMEOUT)?;
        Ok(outcome? == 0)
    }

    /// Starts the WAL over past `bytes` instead of [`RESTART_ABOVE`]: for a test that cannot
    /// write that much in its time.
    #[cfg(test)]
    pub(crate) fn restart_above(&self, bytes: u64) {
        self.restart_above.store(bytes, Ordering::Relaxed);
    }

    /// Commits so far.
    #[cfg(test)]
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Acquire)
    }

    /// Connections (readers and the writer) that are idle, and in use.
    pub(crate) fn connections(&self) -> (usize, usize) {
        let idle_readers = self.idle_readers().len();
        let busy_readers = self
            .open_readers
            .load(Ordering::Relaxed)
            .saturating_sub(idle_readers);
        let writing = usize::from(self.writer.try_lock().is_err());
        (idle_readers + 1 - writing, busy_readers + writing)
    }

    /// Runs `write`, one statement, on the writer connection once the writes queued before it
    /// are done, and returns once it is committed (with the writes queued beside it: see
    /// [`group_commit`]).
    pub(crate) async fn write<T>(
        self: &Arc<Self>,
        write: impl FnOnce(&Connection) -> Result<T, QueryError>,
    ) -> Result<T, QueryError> {
        let tx = SqliteTx::begin(self, false).await?;
        let value = write(tx.conn()?)?;
        tx.commit().await?;
        Ok(value)
    }

    /// Begins a transaction of several statements on the writer connection; other writes wait
    /// until it ends, and it commits with them.
    pub(crate) async fn begin(self: &Arc<Self>) -> Result<SqliteTx, QueryError> {
        SqliteTx::begin(self, true).await
    }

    /// Applies `migrations` not applied yet, in version order, each in a transaction; the version
    /// reached is the database's `user_version`.
    pub(crate) async fn migrate(&self, migrations: &[EmbeddedMigration]) -> Result<(), QueryError> {
        let mut writer = self.writer.lock().await;
        let conn = &mut writer.conn;
        let mut applied: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if applied == 0 {
            applied = legacy_version(conn);
        }
        let mut pending: Vec<_> = migrations.iter().filter(|m| m.0 > applied).collect();
        pending.sort_by_key(|m| m.0);
        for &(version, description, sql) in pending {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
            tracing::debug!(version, description, "migrated");
        }
        Ok(())
    }
}

/// The last migration recorded by earlier releases of Orderly, which migrated SQLite files with
/// sqlx (in `_sqlx_migrations`); 0 for a new database.
fn legacy_version(conn: &Connection) -> i64 {
    conn.query_row(
        "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
        [],
        |row| row.get::<_, Option<i64>>(0),
    )
    .optional()
    .ok()
    .flatten()
    .flatten()
    .unwrap_or(0)
}

/// A reader connection, and the commit count and time its open read transaction was begun at
/// (`None`: no transaction open).
#[derive(Debug)]
struct Reader {
    conn: Connection,
    snapshot: Option<(u64, Instant)>,
}

impl Reader {
    /// Ends the read transaction, if one is open.
    fn end_snapshot(&mut self) {
        if self.snapshot.take().is_some() && !self.conn.is_autocommit() {
            // Ending a read-only transaction cannot fail in a way that matters: on error the
            // connection rolls back by itself.
            let _ = self.conn.execute_batch("COMMIT");
        }
    }
}

/// The WAL file of the database at `path`.
fn wal_of(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// A connection to the file at `path`, set up like every other.
fn connection(path: &Path) -> Result<Connection, QueryError> {
    let conn = Connection::open(path)?;
    conn.execute_batch(PRAGMAS)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(
        None,
        "journal_size_limit",
        i64::try_from(RESTART_ABOVE).unwrap_or(i64::MAX),
    )?;
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    Ok(conn)
}

/// Checkpoints the database at `path` every [`CHECKPOINT_EVERY`] on a thread and connection of
/// its own, until the database is dropped. PASSIVE mode neither waits for nor blocks readers and
/// writers; what it cannot copy yet (pages a reader still sees) it copies next time.
fn spawn_checkpointer(path: PathBuf, db: Weak<Sqlite>) -> Result<(), DbError> {
    let conn = connection(&path)?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            loop {
                std::thread::sleep(CHECKPOINT_EVERY);
                if db.strong_count() == 0 {
                    return;
                }
                if let Err(error) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                    tracing::warn!(%error, "SQLite checkpoint failed; retrying");
                }
                let wal = std::fs::metadata(wal_of(&path)).map_or(0, |m| m.len());
                if let Some(db) = db.upgrade()
                    && wal > db.restart_above.load(Ordering::Relaxed)
                {
                    match db.restart_wal(&conn) {
                        Ok(true) => tracing::debug!(wal, "SQLite WAL started over"),
                        Ok(false) => tracing::debug!(wal, "SQLite WAL busy; next round"),
                        Err(error) => tracing::warn!(%error, "SQLite WAL restart failed"),
                    }
                }
            }
        })
        .map_err(DbError::Checkpointer)?;
    Ok(())
}

/// `sql` prepared (or taken from the connection's cache) with `params` bound.
///
/// The SQL keeps PostgreSQL's `$N` placeholders. SQLite reads `$N` as a *named* parameter and
/// numbers parameters in order of first appearance, so each slot is bound to the parameter its
/// name gives: `$2` before `$1` in the text still binds the second value.
fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    params: &[Param<'_>],
) -> Result<rusqlite::CachedStatement<'c>, QueryError> {
    let mut statement = conn.prepare_cached(sql)?;
    for slot in 1..=statement.parameter_count() {
        let number = statement
            .parameter_name(slot)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|number| number.parse::<usize>().ok())
            .filter(|&number| number > 0)
            .unwrap_or(slot);
        let param = params
            .get(number - 1)
            .ok_or(rusqlite::Error::InvalidParameterCount(number, params.len()))?;
        statement.raw_bind_parameter(slot, param)?;
    }
    Ok(statement)
}

/// The first row of `sql`, mapped by `map`.
pub(crate) fn fetch_optional<T>(
    conn: &Connection,
    sql: &str,
    params: &[Param<'_>],
    map: impl FnOnce(&Row<'_>) -> Result<T, QueryError>,
) -> Result<Option<T>, QueryError> {
    let mut statement = prepare(conn, sql, params)?;
    let mut rows = statement.raw_query();
    match rows.next()? {
        Some(row) => map(&Row::Sqlite(row)).map(Some),
        None => Ok(None),
    }
}

/// Every row of `sql`, mapped by `map`.
pub(crate) fn fetch_all<T>(
    conn: &Connection,
    sql: &str,
    params: &[Param<'_>],
    mut map: impl FnMut(&Row<'_>) -> Result<T, QueryError>,
) -> Result<Vec<T>, QueryError> {
    let mut statement = prepare(conn, sql, params)?;
    let mut rows = statement.raw_query();
    let mut all = Vec::new();
    while let Some(row) = rows.next()? {
        all.push(map(&Row::Sqlite(row))?);
    }
    Ok(all)
}

/// Runs `sql`; the number of rows it changed.
pub(crate) fn execute(
    conn: &Connection,
    sql: &str,
    params: &[Param<'_>],
) -> Result<u64, QueryError> {
    let changed = prepare(conn, sql, params)?.raw_execute()?;
    Ok(changed as u64)
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Param::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Param::Int(int) => ToSqlOutput::Owned(Value::Integer(int)),
            Param::NullText | Param::NullInt => ToSqlOutput::Owned(Value::Null),
        })
    }
}
