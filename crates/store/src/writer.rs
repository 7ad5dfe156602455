//! SQLite group commit: write transactions of many requests share one fsync.
//!
//! SQLite has one writer, and with `synchronous=FULL` each COMMIT waits for an fsync. Instead
//! of one COMMIT per request, the single writer connection keeps an outer transaction open
//! while requests queue for it: each request's [`Tx`](crate::Tx) is a savepoint inside it.
//! Committing a `Tx` hands its savepoint to the batch (the next holder releases it in the
//! same round trip as its own `SAVEPOINT`) and then waits; a committer, queued on the same
//! fair (FIFO) lock behind the requests that were already waiting when the batch opened,
//! issues one COMMIT for all of them and answers them together. So a `Tx::commit` returns only once its writes are
//! durable, and under load one fsync covers the whole queue.
//!
//! A `Tx` dropped without committing is rolled back to its savepoint by the next holder of
//! the connection, which leaves the other requests' writes in the batch untouched. If the
//! outer transaction itself is lost (an I/O error, a failed COMMIT), every request waiting
//! for it gets an error: none of them was acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{Connection, SqliteConnection};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use crate::StoreError;

type Waiter = oneshot::Sender<Result<(), String>>;

/// The single SQLite writer connection and its open batch.
/// Most yielding transactions ([`Writer::begin_yielding`]) queued for the connection at once.
/// Each holds the writer for a round trip or two; ten of them ahead of a checkout cost it
/// a few milliseconds, where under load hundreds of cart edits would queue ahead of it.
/// Fewer (measured: 4, 8) make the yielding transactions' own waits, and so the journeys,
/// longer than what the others gain.
const YIELDING_AT_ONCE: usize = 10;

#[derive(Clone)]
pub(crate) struct Writer {
    state: Arc<Mutex<State>>,
    /// Where transactions that yield wait their turn to queue for `state`.
    yielding: Arc<tokio::sync::Semaphore>,
}

/// What the savepoint `tx` of the connection's last holder still needs. Each step is sent
/// together with the next holder's first one (`RELEASE tx; SAVEPOINT tx`), because every
/// statement is a round trip to the connection's thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Savepoint {
    /// No savepoint is open.
    None,
    /// Open and not committed: in use, or dropped without committing (then rolled back).
    Open,
    /// Committed by its holder, to be released into the batch.
    Committed,
}

pub(crate) struct State {
    conn: SqliteConnection,
    /// `BEGIN IMMEDIATE` was issued and the batch's COMMIT is still to come.
    open: bool,
    savepoint: Savepoint,
    /// A committer is queued for the lock.
    commit_queued: bool,
    /// Requests whose savepoints were committed into the open batch.
    waiting: Vec<Waiter>,
    /// Batches committed so far (read by the checkpointer without the lock).
    batches: Arc<AtomicU64>,
}

impl Writer {
    pub(crate) fn new(conn: SqliteConnection) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                conn,
                open: false,
                savepoint: Savepoint::None,
                commit_queued: false,
                waiting: Vec::new(),
                batches: Arc::default(),
            })),
            yielding: Arc::new(tokio::sync::Semaphore::new(YIELDING_AT_ONCE)),
        }
    }

    /// Joins the open batch (or opens one) with a savepoint of its own.
    ///
    /// Only the lock is taken here: the savepoint opens with the transaction's first
    /// statement, in the same round trip where the caller allows it (see [`WriterTx::run`]).
    /// Waiting for the lock can be cancelled at any point without leaving anything behind.
    pub(crate) async fn begin(&self) -> Result<WriterTx, StoreError> {
        let state = self.state.clone().lock_owned().await;
        Ok(WriterTx {
            state: Some(state),
            writer: self.clone(),
            solo: false,
            opened: false,
        })
    }

    /// [`Writer::begin`] for a transaction that lets others go first: it queues for the
    /// connection only while fewer than [`YIELDING_AT_ONCE`] other yielding transactions are
    /// queued there, so a transaction that does not yield finds at most that many ahead of
    /// it, however many are waiting. (Once queued, a yielding transaction is served in turn
    /// like any other: it cannot be starved.)
    pub(crate) async fn begin_yielding(&self) -> Result<WriterTx, StoreError> {
        let turn = self.yielding.acquire().await;
        // The semaphore is never closed.
        let _turn = turn.map_err(|e| StoreError::Unexpected(e.to_string()))?;
        self.begin().await
    }

    /// A transaction of its own with its own COMMIT (and fsync), not shared with others:
    /// what a design without group commit pays, kept for benchmarks that compare the two.
    pub(crate) async fn begin_solo(&self) -> Result<WriterTx, StoreError> {
        let writer = self.clone();
        run_to_completion(async move {
            let mut state = writer.state.clone().lock_owned().await;
            state.flush().await;
            state.enter().await?;
            Ok(WriterTx {
                state: Some(state),
                writer,
                solo: true,
                opened: true,
            })
        })
        .await
    }

    /// Exclusive use of the connection outside any batch (migrations); commits a pending one.
    pub(crate) async fn exclusive(&self) -> Result<OwnedMutexGuard<State>, StoreError> {
        let state = self.state.clone();
        run_to_completion(async move { Ok(State::lock_between_batches(state).await) }).await
    }

    /// Whether nobody holds the connection right now (for pool metrics).
    pub(crate) fn is_idle(&self) -> bool {
        self.state.try_lock().is_ok()
    }

    /// Commits whatever is pending; used when shutting down.
    pub(crate) async fn close(&self) {
        let _ = self.exclusive().await;
    }

    /// Makes sure a committer will come for the open batch, so that the write lock is not
    /// held longer than the queue in front of it.
    fn queue_commit(&self, state: &mut State) {
        if state.commit_queued {
            return;
        }
        // Outside a runtime (a drop at shutdown) the next holder of the connection settles.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            state.commit_queued = true;
            runtime.spawn(self.clone().commit_queued_batch());
        }
    }

    async fn commit_queued_batch(self) {
        let mut state = self.state.lock_owned().await;
        state.commit_queued = false;
        state.flush().await;
    }
}

impl State {
    /// The connection with no batch open: the pending one committed first.
    async fn lock_between_batches(state: Arc<Mutex<State>>) -> OwnedMutexGuard<State> {
        let mut state = state.lock_owned().await;
        state.flush().await;
        state
    }

    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// The statements that open a transaction's savepoint: the last holder's settled, and
    /// the batch begun first when none is open.
    fn opening(&self) -> Opening {
        let (sql, statements) = match (self.open, self.savepoint) {
            (false, _) => ("BEGIN IMMEDIATE; SAVEPOINT tx; ", 2),
            (true, Savepoint::None) => ("SAVEPOINT tx; ", 1),
            (true, Savepoint::Open) => ("ROLLBACK TO tx; RELEASE tx; SAVEPOINT tx; ", 3),
            (true, Savepoint::Committed) => ("RELEASE tx; SAVEPOINT tx; ", 2),
        };
        Opening { sql, statements }
    }

    /// Settles the last holder's savepoint and opens a new one, opening the batch first if
    /// needed: one round trip.
    async fn enter(&mut self) -> Result<(), StoreError> {
        if self.open {
            match sqlx::raw_sql(self.opening().sql)
                .execute(&mut self.conn)
                .await
            {
                Ok(_) => {
                    self.savepoint = Savepoint::Open;
                    return Ok(());
                }
                // The batch is lost (its waiters are told); start a new one.
                Err(err) => self.fail(format!("settling a savepoint: {err}")).await,
            }
        }
        // No batch is open now: the opening begins one.
        sqlx::raw_sql(self.opening().sql)
            .execute(&mut self.conn)
            .await?;
        self.open = true;
        self.savepoint = Savepoint::Open;
        Ok(())
    }

    /// Commits the open batch and answers its waiters.
    async fn flush(&mut self) {
        if !self.open {
            return;
        }
        // COMMIT releases a committed savepoint by itself.
        let sql = match self.savepoint {
            Savepoint::Open => "ROLLBACK TO tx; COMMIT",
            Savepoint::None | Savepoint::Committed => "COMMIT",
        };
        match sqlx::raw_sql(sql).execute(&mut self.conn).await {
            Ok(_) => {
                self.open = false;
                self.savepoint = Savepoint::None;
                self.batches.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("emporium_sqlite_group_commits_total").increment(1);
                metrics::histogram!("emporium_sqlite_group_commit_size")
                    .record(self.waiting.len() as f64);
                tracing::debug!(batch.size = self.waiting.len(), "group commit");
                for waiter in self.waiting.drain(..) {
                    let _ = waiter.send(Ok(()));
                }
            }
            Err(err) => self.fail(format!("group commit: {err}")).await,
        }
    }

    /// The batch is lost: roll back what is left of it and tell every waiter.
    async fn fail(&mut self, reason: String) {
        tracing::error!(%reason, waiting = self.waiting.len(), "SQLite write batch failed");
        // The outer transaction may already be gone; then ROLLBACK fails, which is fine.
        let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
        self.open = false;
        self.savepoint = Savepoint::None;
        for waiter in self.waiting.drain(..) {
            let _ = waiter.send(Err(reason.clone()));
        }
    }
}

/// The statements that open a transaction's savepoint, to be sent ahead of its first
/// statement in the same round trip (see [`WriterTx::run`]); empty once it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Opening {
    /// SQL ending in `; `, or empty.
    pub(crate) sql: &'static str,
    /// How many statements `sql` holds (each has a result of its own).
    pub(crate) statements: usize,
}

impl Opening {
    const OPEN: Opening = Opening {
        sql: "",
        statements: 0,
    };
}

/// A statement of the connection's work for `WriterTx::run`, borrowing the connection.
pub(crate) type Work<T> = Box<
    dyn for<'c> FnOnce(
            &'c mut SqliteConnection,
            Opening,
        ) -> futures::future::BoxFuture<'c, Result<T, sqlx::Error>>
        + Send,
>;

/// One request's write transaction: a savepoint in the writer's open batch, opened with its
/// first statement.
///
/// Every statement is a round trip to the connection's thread, and the lock is held for all
/// of them, so the statements that open the savepoint (and settle the last holder's) go
/// together with the transaction's first one when the caller can send several at once
/// ([`WriterTx::run`]), and in a round trip of their own otherwise ([`WriterTx::conn`]).
///
/// Dropped without [`WriterTx::commit`], it leaves its savepoint open, and the next holder
/// of the connection rolls it back; dropped before its first statement, it leaves nothing.
pub(crate) struct WriterTx {
    /// Away only while the first statement runs in a task of its own.
    state: Option<OwnedMutexGuard<State>>,
    writer: Writer,
    /// Commits alone, at once (see [`Writer::begin_solo`]).
    solo: bool,
    /// The savepoint is open.
    opened: bool,
}

impl WriterTx {
    /// The connection, with this transaction's savepoint open (a round trip of its own the
    /// first time).
    pub(crate) async fn conn(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        if !self.opened {
            self.run(Box::new(|conn, opening| {
                Box::pin(async move {
                    sqlx::raw_sql(opening.sql).execute(conn).await?;
                    Ok(())
                })
            }))
            .await?;
        }
        Ok(&mut self.state()?.conn)
    }

    /// Runs `work` as the transaction's next statements. Before its first statement, `work`
    /// is given the [`Opening`] to send ahead of its own statements in the same round trip
    /// (and must send it, before anything else).
    ///
    /// The first statement runs in a task of its own, like [`Writer::begin_solo`], so that
    /// a caller cancelled half-way cannot leave the batch in a state nobody knows about.
    /// When it fails, whether the opening ran is told by the error: a constraint or a row
    /// that does not decode comes from the caller's statements, after the opening; anything
    /// else (an I/O error, a savepoint SQLite does not know) might have come from the
    /// opening, and then the batch is given up (its waiters get an error, none of them was
    /// acknowledged) rather than guessed at.
    pub(crate) async fn run<T: Send + 'static>(&mut self, work: Work<T>) -> Result<T, StoreError> {
        if self.opened {
            let state = self.state()?;
            return Ok(work(&mut state.conn, Opening::OPEN).await?);
        }
        let mut state = self.state.take().ok_or_else(gone)?;
        let writer = self.writer.clone();
        let joined = tokio::spawn(async move {
            let opening = state.opening();
            let begins = !state.open;
            let result = work(&mut state.conn, opening).await;
            let opened = match &result {
                Ok(_) => true,
                Err(err) if ran_past_opening(err) => true,
                Err(err) => {
                    state.fail(format!("opening a savepoint: {err}")).await;
                    false
                }
            };
            if opened {
                state.open = true;
                state.savepoint = Savepoint::Open;
                if begins {
                    // Every batch gets its committer at once, queued behind the requests
                    // that are already waiting: they join this batch, later ones the next.
                    writer.queue_commit(&mut state);
                }
            }
            (state, opened, result)
        })
        .await;
        match joined {
            Ok((state, opened, result)) => {
                self.state = Some(state);
                self.opened = opened;
                Ok(result?)
            }
            Err(e) => Err(StoreError::Batch(format!("the writer task failed: {e}"))),
        }
    }

    fn state(&mut self) -> Result<&mut OwnedMutexGuard<State>, StoreError> {
        self.state.as_mut().ok_or_else(gone)
    }

    /// Hands the savepoint to the batch and waits until the batch is durable. A transaction
    /// that never ran a statement has nothing to wait for.
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        self.hand_over().await?.await
    }

    /// Hands the savepoint to the batch and gives the lock up; the future it returns ends
    /// when the batch is durable (or lost). Meanwhile the connection serves the next holder,
    /// which sees these writes, and whose own commit can only come with or after them.
    pub(crate) async fn hand_over(
        self,
    ) -> Result<impl Future<Output = Result<(), StoreError>> + Send + 'static, StoreError> {
        let WriterTx {
            state,
            writer,
            solo,
            opened,
        } = self;
        let mut state = state.ok_or_else(gone)?;
        let (sender, receiver) = oneshot::channel();
        if !opened {
            let _ = sender.send(Ok(()));
            return Ok(durable(receiver));
        }
        // No statement runs here (the next holder or the COMMIT releases the savepoint), so
        // nothing can be cut off half-way: the waiter is registered before the lock goes.
        state.savepoint = Savepoint::Committed;
        state.waiting.push(sender);
        if solo {
            // Like `begin_solo`: the COMMIT finishes even if the caller stops waiting.
            run_to_completion(async move {
                state.flush().await;
                Ok(())
            })
            .await?;
        } else {
            writer.queue_commit(&mut state);
            drop(state);
        }
        Ok(durable(receiver))
    }
}

/// Ends when the batch a committed savepoint went into is durable, or lost.
async fn durable(receiver: oneshot::Receiver<Result<(), String>>) -> Result<(), StoreError> {
    match receiver.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(reason)) => Err(StoreError::Batch(reason)),
        Err(_) => Err(StoreError::Batch("the writer went away".into())),
    }
}

fn gone() -> StoreError {
    StoreError::Batch("the transaction's connection was lost".into())
}

/// Whether a failed first statement got past the opening sent ahead of it: only the
/// caller's own statements can break a constraint or return rows.
fn ran_past_opening(err: &sqlx::Error) -> bool {
    use sqlx::error::ErrorKind;
    match err {
        sqlx::Error::Database(db) => matches!(
            db.kind(),
            ErrorKind::UniqueViolation
                | ErrorKind::ForeignKeyViolation
                | ErrorKind::NotNullViolation
                | ErrorKind::CheckViolation
        ),
        sqlx::Error::RowNotFound
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_) => true,
        _ => false,
    }
}

/// Runs `work` in its own task, so that it finishes even if the caller is dropped.
async fn run_to_completion<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::spawn(work)
        .await
        .unwrap_or_else(|e| Err(StoreError::Batch(format!("the writer task failed: {e}"))))
}

/// How often the checkpointer copies committed WAL frames into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// WAL frames (pages of 4 KiB) after which the checkpointer restarts the WAL from its
/// beginning: about 64 MiB.
const RESTART_AFTER_FRAMES: i64 = 16_384;

/// How long a WAL restart waits for readers still on older snapshots before it gives up
/// until the next round; the writer's lock is held meanwhile.
const RESTART_WAITS_FOR_READERS: Duration = Duration::from_millis(10);

/// Opens the writer connection, and starts the checkpointer.
///
/// The writer does not checkpoint (`wal_autocheckpoint=0`): a checkpoint copies pages and
/// fsyncs the database file, and doing that inside a COMMIT stalls every request waiting for
/// the batch. A background connection checkpoints instead (`PASSIVE`: it never blocks the
/// writer or readers), a few times a second while there are new commits.
///
/// A passive checkpoint never makes the WAL shorter: SQLite starts writing at the WAL's
/// beginning again only when a write transaction begins while every frame has been copied
/// and no reader is looking at an older snapshot, which under a steady stream of batches and
/// reads practically never happens (a checkout bench grew the WAL by some 80 MB/s, to
/// hundreds of MB). A long WAL makes every reader's page lookup (its index in shared memory)
/// and the writer's fsyncs (the file's size changes with every commit) dearer. So once a
/// passive checkpoint reports [`RESTART_AFTER_FRAMES`] frames in the WAL, the checkpointer
/// takes the writer's lock between two batches and runs `wal_checkpoint(RESTART)`, waiting
/// at most [`RESTART_WAITS_FOR_READERS`] for readers (a long report must not stall writes;
/// it is tried again next round).
pub(crate) async fn connect(
    options: &sqlx::sqlite::SqliteConnectOptions,
    priority: Option<u8>,
) -> Result<Writer, StoreError> {
    connect_restarting_after(options, priority, RESTART_AFTER_FRAMES).await
}

/// [`connect`], restarting the WAL after `restart_after` frames.
pub(crate) async fn connect_restarting_after(
    options: &sqlx::sqlite::SqliteConnectOptions,
    priority: Option<u8>,
    restart_after: i64,
) -> Result<Writer, StoreError> {
    let mut conn = match priority {
        Some(priority) => connect_raised(options, priority).await?,
        None => SqliteConnection::connect_with(options).await?,
    };
    sqlx::query("PRAGMA wal_autocheckpoint = 0")
        .execute(&mut conn)
        .await?;
    let checkpointer =
        SqliteConnection::connect_with(&options.clone().busy_timeout(RESTART_WAITS_FOR_READERS))
            .await?;
    let writer = Writer::new(conn);
    let batches = writer.state.lock().await.batches.clone();
    tokio::spawn(checkpoint(
        Arc::downgrade(&writer.state),
        batches,
        checkpointer,
        restart_after,
    ));
    Ok(writer)
}

/// Opens the writer connection from a thread of raised scheduling priority (`priority`,
/// 1–99, 99 the highest: a nice value of -20).
///
/// Why: every write of the node waits its turn for this connection, and sqlx runs it on a
/// thread of its own that each statement is handed to. On a saturated machine that thread
/// queued behind the HTTP threads for a core at every statement, while holding the write lock
/// everyone waits on. The thread inherits the priority of the thread that opens the
/// connection, hence the short-lived thread here. Raising a priority needs `CAP_SYS_NICE`
/// (or a `RLIMIT_NICE`); without it the writer runs at the normal priority, with a warning.
async fn connect_raised(
    options: &sqlx::sqlite::SqliteConnectOptions,
    priority: u8,
) -> Result<SqliteConnection, StoreError> {
    let priority = thread_priority::ThreadPriorityValue::try_from(priority.min(99))
        .map_err(|e| StoreError::Config(format!("writer priority: {e}")))?;
    let options = options.clone();
    let (sender, receiver) = oneshot::channel();
    std::thread::Builder::new()
        .name("emporium-writer-open".into())
        .spawn(move || {
            let raised = thread_priority::set_current_thread_priority(
                thread_priority::ThreadPriority::Crossplatform(priority),
            );
            if let Err(err) = raised {
                tracing::warn!(error = %err, "cannot raise the SQLite writer's priority");
            }
            let opened = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Batch(format!("a runtime to open the writer: {e}")))
                .and_then(|runtime| {
                    runtime
                        .block_on(SqliteConnection::connect_with(&options))
                        .map_err(StoreError::from)
                });
            let _ = sender.send(opened);
        })
        .map_err(|e| StoreError::Batch(format!("a thread to open the writer: {e}")))?;
    receiver
        .await
        .unwrap_or_else(|_| Err(StoreError::Batch("the writer was not opened".into())))
}

/// Ends once the writer is gone.
async fn checkpoint(
    writer: std::sync::Weak<Mutex<State>>,
    batches: Arc<AtomicU64>,
    mut conn: SqliteConnection,
    restart_after: i64,
) {
    let mut done = 0;
    while writer.strong_count() > 0 {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        let committed = batches.load(Ordering::Relaxed);
        if committed == done {
            continue;
        }
        done = committed;
        // (busy, frames in the WAL, frames copied into the database file)
        let passive: Result<(i64, i64, i64), _> = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut conn)
            .await;
        match passive {
            Ok((_, frames, _)) if frames >= restart_after => {
                let Some(state) = writer.upgrade() else {
                    break;
                };
                restart_wal(state, &mut conn, frames).await;
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "WAL checkpoint failed"),
        }
    }
    let _ = conn.close().await;
}

/// Copies what is left of the WAL and has the next batch write it from its beginning; see
/// [`connect`]. Holds the writer's lock (after committing the open batch), so no batch is
/// writing meanwhile.
async fn restart_wal(state: Arc<Mutex<State>>, conn: &mut SqliteConnection, frames: i64) {
    let state = State::lock_between_batches(state).await;
    let started = std::time::Instant::now();
    let restart: Result<(i64, i64, i64), _> = sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
        .fetch_one(&mut *conn)
        .await;
    drop(state);
    match restart {
        Ok((0, _, _)) => {
            metrics::counter!("emporium_sqlite_wal_restarts_total").increment(1);
            tracing::debug!(frames, took = ?started.elapsed(), "WAL restarted");
        }
        // Readers on older snapshots did not finish in time: next round.
        Ok(_) => tracing::debug!(frames, "WAL restart put off by readers"),
        Err(err) => tracing::warn!(error = %err, "WAL restart failed"),
    }
}

#[cfg(test)]
mod tests;
