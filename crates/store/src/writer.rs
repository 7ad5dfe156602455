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

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{Connection, SqliteConnection};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use crate::StoreError;

type Waiter = oneshot::Sender<Result<(), String>>;

/// The single SQLite writer connection and its open batch.
#[derive(Clone)]
pub(crate) struct Writer {
    state: Arc<Mutex<State>>,
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
        }
    }

    /// Joins the open batch (or opens one) with a savepoint of its own.
    ///
    /// The steps on the connection run in a task of their own, so a caller that is cancelled
    /// half-way (a request timeout) cannot leave the batch in a state nobody knows about: the
    /// task finishes, and a `WriterTx` nobody receives is dropped, which rolls it back.
    pub(crate) async fn begin(&self) -> Result<WriterTx, StoreError> {
        let writer = self.clone();
        run_to_completion(async move {
            let mut state = writer.state.clone().lock_owned().await;
            let opening = !state.open;
            state.enter().await?;
            if opening {
                // Every batch gets its committer at once, queued behind the requests that
                // are already waiting: they join this batch, later ones the next.
                writer.queue_commit(&mut state);
            }
            Ok(WriterTx {
                state,
                writer,
                solo: false,
            })
        })
        .await
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
                state,
                writer,
                solo: true,
            })
        })
        .await
    }

    /// Exclusive use of the connection outside any batch (migrations); commits a pending one.
    pub(crate) async fn exclusive(&self) -> Result<OwnedMutexGuard<State>, StoreError> {
        let state = self.state.clone();
        run_to_completion(async move {
            let mut state = state.lock_owned().await;
            state.flush().await;
            Ok(state)
        })
        .await
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
    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// What settles the last holder's savepoint, as the prefix of the next statement.
    fn settling(&self) -> &'static str {
        match self.savepoint {
            Savepoint::None => "",
            Savepoint::Open => "ROLLBACK TO tx; RELEASE tx; ",
            Savepoint::Committed => "RELEASE tx; ",
        }
    }

    /// Settles the last holder's savepoint and opens a new one, opening the batch first if
    /// needed: one round trip.
    async fn enter(&mut self) -> Result<(), StoreError> {
        if self.open {
            let sql = format!("{}SAVEPOINT tx", self.settling());
            match sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
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
        sqlx::raw_sql("BEGIN IMMEDIATE; SAVEPOINT tx")
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

/// One request's write transaction: a savepoint in the writer's open batch. Derefs to the
/// connection, so queries run on it like on any SQLite transaction.
///
/// Dropped without [`WriterTx::commit`], it leaves its savepoint open, and the next holder
/// of the connection rolls it back.
pub(crate) struct WriterTx {
    state: OwnedMutexGuard<State>,
    writer: Writer,
    /// Commits alone, at once (see [`Writer::begin_solo`]).
    solo: bool,
}

impl WriterTx {
    /// Hands the savepoint to the batch and waits until the batch is durable.
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        let WriterTx {
            mut state,
            writer,
            solo,
        } = self;
        // Like `begin`: once committed into the batch, the waiter is registered and a
        // committer queued even if the caller stops waiting.
        let receiver = run_to_completion(async move {
            state.savepoint = Savepoint::Committed;
            let (sender, receiver) = oneshot::channel();
            state.waiting.push(sender);
            if solo {
                state.flush().await;
            } else {
                writer.queue_commit(&mut state);
            }
            Ok(receiver)
        })
        .await?;
        match receiver.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(StoreError::Batch(reason)),
            Err(_) => Err(StoreError::Batch("the writer went away".into())),
        }
    }
}

impl Deref for WriterTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.state.conn
    }
}

impl DerefMut for WriterTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.state.conn
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

/// Opens the writer connection, and starts the checkpointer.
///
/// The writer does not checkpoint (`wal_autocheckpoint=0`): a checkpoint copies pages and
/// fsyncs the database file, and doing that inside a COMMIT stalls every request waiting for
/// the batch. A background connection checkpoints instead (`PASSIVE`: it never blocks the
/// writer or readers), a few times a second while there are new commits.
pub(crate) async fn connect(
    options: &sqlx::sqlite::SqliteConnectOptions,
) -> Result<Writer, StoreError> {
    let mut conn = SqliteConnection::connect_with(options).await?;
    sqlx::query("PRAGMA wal_autocheckpoint = 0")
        .execute(&mut conn)
        .await?;
    let checkpointer = SqliteConnection::connect_with(options).await?;
    let writer = Writer::new(conn);
    let batches = writer.state.lock().await.batches.clone();
    tokio::spawn(checkpoint(
        Arc::downgrade(&writer.state),
        batches,
        checkpointer,
    ));
    Ok(writer)
}

/// Ends once the writer is gone.
async fn checkpoint(
    writer: std::sync::Weak<Mutex<State>>,
    batches: Arc<AtomicU64>,
    mut conn: SqliteConnection,
) {
    let mut done = 0;
    while writer.strong_count() > 0 {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        let committed = batches.load(Ordering::Relaxed);
        if committed == done {
            continue;
        }
        done = committed;
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::warn!(error = %err, "WAL checkpoint failed");
        }
    }
    let _ = conn.close().await;
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

    use super::*;

    async fn writer(dir: &tempfile::TempDir) -> (Writer, sqlx::SqlitePool) {
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let writer = connect(&options).await.unwrap();
        sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .execute(writer.exclusive().await.unwrap().conn())
            .await
            .unwrap();
        let reader = sqlx::SqlitePool::connect_with(options).await.unwrap();
        (writer, reader)
    }

    async fn keys(reader: &sqlx::SqlitePool) -> Vec<i64> {
        sqlx::query_scalar("SELECT k FROM t ORDER BY k")
            .fetch_all(reader)
            .await
            .unwrap()
    }

    async fn insert(tx: &mut WriterTx, k: i64) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO t (k, v) VALUES (?, 'x')")
            .bind(k)
            .execute(&mut **tx)
            .await
            .map(|_| ())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_transactions_share_commits_and_all_become_durable() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(&dir).await;
        let tasks: Vec<_> = (0..200)
            .map(|k| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let mut tx = writer.begin().await.unwrap();
                    insert(&mut tx, k).await.unwrap();
                    tx.commit().await.unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(keys(&reader).await, (0..200).collect::<Vec<_>>());
        let batches = writer.state.lock().await.batches.load(Ordering::Relaxed);
        assert!(
            (1..200).contains(&batches),
            "200 concurrent transactions took {batches} commits"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_committed_transaction_is_visible_to_readers_when_commit_returns() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(&dir).await;
        for k in 0..5 {
            let mut tx = writer.begin().await.unwrap();
            insert(&mut tx, k).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(keys(&reader).await.last(), Some(&k));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_dropped_or_failed_transaction_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(&dir).await;
        let tasks: Vec<_> = (0..60)
            .map(|k| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let mut tx = writer.begin().await.unwrap();
                    insert(&mut tx, k).await.unwrap();
                    match k % 3 {
                        // Dropped without commit.
                        0 => false,
                        // A constraint error half-way, then dropped.
                        1 => {
                            insert(&mut tx, 1000 + k).await.unwrap();
                            assert!(insert(&mut tx, 1000 + k).await.is_err());
                            false
                        }
                        _ => {
                            tx.commit().await.unwrap();
                            true
                        }
                    }
                })
            })
            .collect();
        let mut expected = Vec::new();
        for (k, t) in tasks.into_iter().enumerate() {
            if t.await.unwrap() {
                expected.push(k as i64);
            }
        }
        writer.close().await;
        assert_eq!(keys(&reader).await, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checkpointer_moves_commits_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, _reader) = writer(&dir).await;
        let file = dir.path().join("w.db");
        let before = std::fs::metadata(&file).unwrap().len();
        let mut tx = writer.begin().await.unwrap();
        for k in 0..1000 {
            sqlx::query("INSERT INTO t (k, v) VALUES (?, ?)")
                .bind(k)
                .bind("x".repeat(1000))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        // The writer itself never checkpoints: only the background connection can grow the file.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(&file).unwrap().len() < before + 500_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint within 5 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_cancelled_at_any_step_leave_the_writer_usable() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(&dir).await;
        let mut acknowledged = Vec::new();
        for k in 0..300_i64 {
            let w = writer.clone();
            let attempt = async move {
                let mut tx = w.begin().await.unwrap();
                insert(&mut tx, k).await.unwrap();
                insert(&mut tx, k + 10_000).await.unwrap();
                tx.commit().await.unwrap();
            };
            // Cut off anywhere from before `begin` to after the commit.
            let budget = Duration::from_micros((k as u64 * 37) % 1500);
            if tokio::time::timeout(budget, attempt).await.is_ok() {
                acknowledged.push(k);
            }
        }
        let mut tx = writer.begin().await.unwrap();
        insert(&mut tx, 99_999).await.unwrap();
        tx.commit().await.unwrap();
        let stored = keys(&reader).await;
        for k in &acknowledged {
            assert!(stored.contains(k), "acknowledged {k} is missing");
        }
        // Every transaction is whole: both of its rows or neither.
        for k in stored.iter().filter(|k| **k < 10_000) {
            assert!(stored.contains(&(k + 10_000)), "{k} is half-written");
        }
        for k in stored.iter().filter(|k| (10_000..99_999).contains(*k)) {
            assert!(stored.contains(&(k - 10_000)), "{k} is half-written");
        }
        assert!(stored.contains(&99_999));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn solo_transactions_each_pay_their_own_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(&dir).await;
        let before = writer.state.lock().await.batches.load(Ordering::Relaxed);
        let tasks: Vec<_> = (0..40)
            .map(|k| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let mut tx = writer.begin_solo().await.unwrap();
                    insert(&mut tx, k).await.unwrap();
                    tx.commit().await.unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let after = writer.state.lock().await.batches.load(Ordering::Relaxed);
        assert_eq!(after - before, 40);
        assert_eq!(keys(&reader).await.len(), 40);
    }
}
