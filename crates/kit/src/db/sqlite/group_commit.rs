//! Group commit: the writes that queue for the writer connection at the same time share one
//! SQLite transaction and one commit.
//!
//! A commit writes every page it changed to the WAL: the table's last leaf, each index's leaf,
//! the pages above them. Orders coming in together change the same few pages, so one commit for
//! many of them writes each page once; committed one by one, CreateOrder's four commits were a
//! seventh of its CPU (`perf record`, README's performance section). No crate does this for
//! rusqlite, hence this module.
//!
//! How: a writer takes the writer connection, joins the transaction open on it (beginning one if
//! none is), does its work (inside a savepoint when it is a multi-statement transaction, so that
//! its failure undoes only its own statements), and lets the connection go. To learn whether its
//! work is durable it takes the connection a second time: the writers that queued meanwhile have
//! done their work by then (the lock is fair), and the first member back commits the batch for
//! all; the others find it committed. A writer alone commits at once, for the price of a second
//! uncontended lock. A caller is answered only after the commit that holds its writes, so a
//! killed process still loses nothing acknowledged.
//!
//! A member that fails leaves the batch; the last member to leave without committing commits the
//! others' work. A caller cancelled while waiting to commit (its future dropped) leaves too; if
//! the lock is busy at that moment the batch is committed by the next writer instead.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use rusqlite::Connection;
use tokio::sync::OwnedMutexGuard;

use super::Sqlite;
use crate::db::QueryError;

/// The writer connection and the batch open on it.
#[derive(Debug)]
pub(super) struct Writer {
    pub(super) conn: Connection,
    open: Option<Arc<Batch>>,
}

/// One transaction shared by the writes that joined it.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Writers that joined and have neither committed nor left.
    members: AtomicUsize,
    /// Set once, when the transaction ends: whether its writes are durable.
    outcome: OnceLock<Result<(), Failure>>,
}

/// Why a batch did not commit, told to each of its members.
#[derive(Debug, Clone)]
struct Failure {
    code: std::ffi::c_int,
    message: String,
}

impl Failure {
    fn of(error: &QueryError) -> Self {
        match error {
            QueryError::Sqlite(rusqlite::Error::SqliteFailure(cause, message)) => Self {
                code: cause.extended_code,
                message: message.clone().unwrap_or_else(|| cause.to_string()),
            },
            other => Self {
                code: rusqlite::ffi::SQLITE_ERROR,
                message: other.to_string(),
            },
        }
    }

    fn error(&self) -> QueryError {
        QueryError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(self.code),
            Some(self.message.clone()),
        ))
    }
}

/// Runs one of the transaction-control statements, each prepared once per connection.
fn control(conn: &Connection, sql: &str) -> Result<(), QueryError> {
    conn.prepare_cached(sql)?.raw_execute()?;
    Ok(())
}

impl Writer {
    pub(super) fn new(conn: Connection) -> Self {
        Self { conn, open: None }
    }

    /// Joins the open batch, beginning one if none is open.
    fn join(&mut self) -> Result<Arc<Batch>, QueryError> {
        let batch = match &self.open {
            Some(batch) => batch.clone(),
            None => {
                control(&self.conn, "BEGIN IMMEDIATE")?;
                self.open.insert(Arc::default()).clone()
            }
        };
        batch.members.fetch_add(1, Ordering::AcqRel);
        Ok(batch)
    }

    /// After a failed statement: if SQLite ended the transaction by itself (an I/O error, a full
    /// disk), the open batch is lost, and its members are told so.
    fn check_open(&mut self) {
        if self.conn.is_autocommit()
            && let Some(batch) = self.open.take()
        {
            let lost = QueryError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("the transaction was rolled back".into()),
            ));
            let _ = batch.outcome.set(Err(Failure::of(&lost)));
        }
    }

    /// Commits the open batch, if there is one, for its members (who have all done their work:
    /// none holds the connection); whether this call committed.
    pub(super) fn commit_open(&mut self) -> bool {
        match self.open.clone() {
            Some(batch) => self.finish(&batch).1,
            None => false,
        }
    }

    /// Commits `batch` if it is still open; its outcome, and whether this call committed.
    fn finish(&mut self, batch: &Arc<Batch>) -> (Result<(), QueryError>, bool) {
        let mut committed = false;
        if self
            .open
            .as_ref()
            .is_some_and(|open| Arc::ptr_eq(open, batch))
        {
            self.open = None;
            let outcome = control(&self.conn, "COMMIT").map_err(|error| {
                if !self.conn.is_autocommit() {
                    let _ = control(&self.conn, "ROLLBACK");
                }
                Failure::of(&error)
            });
            committed = outcome.is_ok();
            let _ = batch.outcome.set(outcome);
        }
        let outcome = match batch.outcome.get() {
            Some(Ok(())) => Ok(()),
            Some(Err(failure)) => Err(failure.error()),
            None => Err(QueryError::Finished),
        };
        (outcome, committed)
    }
}

/// A write on the writer connection, in the batch it joined: rolled back unless committed.
#[derive(Debug)]
pub(crate) struct SqliteTx {
    /// Held from joining until the work is done.
    writer: Option<OwnedMutexGuard<Writer>>,
    /// Until committed or left.
    batch: Option<Arc<Batch>>,
    /// Whether the work runs in a savepoint (a transaction of several statements; a single
    /// statement is atomic by itself).
    savepoint: bool,
    db: Arc<Sqlite>,
}

impl SqliteTx {
    /// Takes the writer connection and joins its batch; `savepoint` for work of several statements.
    pub(super) async fn begin(db: &Arc<Sqlite>, savepoint: bool) -> Result<Self, QueryError> {
        let mut writer = db.writer.clone().lock_owned().await;
        let batch = writer.join()?;
        let mut tx = Self {
            writer: Some(writer),
            batch: Some(batch),
            savepoint: false,
            db: db.clone(),
        };
        if savepoint {
            control(tx.conn()?, "SAVEPOINT orderly_write")?;
            tx.savepoint = true;
        }
        Ok(tx)
    }

    /// The connection the work runs on.
    pub(crate) fn conn(&self) -> Result<&Connection, QueryError> {
        self.writer
            .as_deref()
            .map(|writer| &writer.conn)
            .ok_or(QueryError::Finished)
    }

    /// Ends the work, and returns once the batch holding it is committed (by this caller or by
    /// another member).
    pub(crate) async fn commit(mut self) -> Result<(), QueryError> {
        let writer = self.writer.take().ok_or(QueryError::Finished)?;
        if self.savepoint
            && let Err(error) = control(&writer.conn, "RELEASE orderly_write")
        {
            self.writer = Some(writer);
            return Err(error);
        }
        drop(writer);
        let mut writer = self.db.writer.clone().lock_owned().await;
        let batch = self.batch.take().ok_or(QueryError::Finished)?;
        batch.members.fetch_sub(1, Ordering::AcqRel);
        let (outcome, committed) = writer.finish(&batch);
        drop(writer);
        if committed {
            self.db.committed();
        }
        outcome
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        let Some(batch) = self.batch.take() else {
            return;
        };
        let last = batch.members.fetch_sub(1, Ordering::AcqRel) == 1;
        let committed = match self.writer.take() {
            Some(mut writer) => {
                if self.savepoint {
                    let _ = control(&writer.conn, "ROLLBACK TO orderly_write")
                        .and_then(|()| control(&writer.conn, "RELEASE orderly_write"));
                }
                writer.check_open();
                last && writer.finish(&batch).1
            }
            // Dropped while waiting to commit: commit for the others if nobody else will.
            None => {
                last && self
                    .db
                    .writer
                    .try_lock()
                    .is_ok_and(|mut writer| writer.finish(&batch).1)
            }
        };
        if committed {
            self.db.committed();
        }
    }
}
