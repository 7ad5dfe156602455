//! The group commit against a real SQLite file: sharing, isolation, cancellation,
//! checkpoints and the solo baseline.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use super::*;

async fn writer(dir: &tempfile::TempDir) -> (Writer, sqlx::SqlitePool) {
    writer_at(dir, None).await
}

async fn writer_at(dir: &tempfile::TempDir, priority: Option<u8>) -> (Writer, sqlx::SqlitePool) {
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    let options = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let writer = connect(&options, priority).await.unwrap();
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

async fn insert(tx: &mut WriterTx, k: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO t (k, v) VALUES (?, 'x')")
        .bind(k)
        .execute(tx.conn().await?)
        .await?;
    Ok(())
}

/// Inserts `k`; as the transaction's first statement, in one round trip with its opening.
async fn insert_with_opening(tx: &mut WriterTx, k: i64) -> Result<(), StoreError> {
    tx.run(Box::new(move |conn, opening| {
        Box::pin(async move {
            let sql = format!("{}INSERT INTO t (k, v) VALUES ($1, 'x')", opening.sql);
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(k)
                .execute(conn)
                .await
                .map(drop)
        })
    }))
    .await
}

/// Keys `0..n`, each inserted by its own task in its own transaction.
async fn insert_concurrently(writer: &Writer, n: i64, solo: bool) {
    let tasks: Vec<_> = (0..n)
        .map(|k| {
            let writer = writer.clone();
            tokio::spawn(async move {
                let mut tx = if solo {
                    writer.begin_solo().await.unwrap()
                } else {
                    writer.begin().await.unwrap()
                };
                insert(&mut tx, k).await.unwrap();
                tx.commit().await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transactions_share_commits_and_all_become_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, reader) = writer(&dir).await;
    insert_concurrently(&writer, 200, false).await;
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
async fn a_handed_over_transaction_is_seen_by_the_next_and_durable_when_its_commit_says() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, reader) = writer(&dir).await;
    let mut first = writer.begin().await.unwrap();
    insert(&mut first, 1).await.unwrap();
    let durable = first.hand_over().await.unwrap();
    // The lock is free before the first transaction is known durable (its batch's committer
    // may or may not have come yet): the next holder sees its row either way.
    let mut next = writer.begin().await.unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM t WHERE k = 1")
        .fetch_one(next.conn().await.unwrap())
        .await
        .unwrap();
    assert_eq!(seen, 1);
    insert(&mut next, 2).await.unwrap();
    let next_durable = next.hand_over().await.unwrap();
    durable.await.unwrap();
    next_durable.await.unwrap();
    assert_eq!(keys(&reader).await, vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn yielding_transactions_let_a_later_transaction_go_ahead_and_still_all_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, reader) = writer(&dir).await;
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let holder = writer.begin().await.unwrap();
    let yielding = (YIELDING_AT_ONCE + 20) as i64;
    let recorded = order.clone();
    let record = move |k: i64, tx: WriterTx| {
        let order = recorded.clone();
        async move {
            let mut tx = tx;
            order.lock().unwrap().push(k);
            insert(&mut tx, k).await.unwrap();
            tx.commit().await.unwrap();
        }
    };
    // While the writer is held, many yielding transactions queue (as many as may queue at
    // once take the writer's queue, the rest wait behind them)...
    let mut tasks: Vec<_> = (0..yielding)
        .map(|k| {
            let (writer, record) = (writer.clone(), record.clone());
            tokio::spawn(async move { record(k, writer.begin_yielding().await.unwrap()).await })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(10), async {
        while writer.yielding.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the yielding transactions queued");
    // ... then one that does not yield joins the queue (its first poll puts it there).
    let next = writer.clone();
    let mut later = Box::pin(async move { next.begin().await });
    assert!(futures::poll!(later.as_mut()).is_pending());
    tasks.push(tokio::spawn(async move {
        record(1_000, later.await.unwrap()).await
    }));
    drop(holder);
    for t in tasks {
        t.await.unwrap();
    }
    let order = order.lock().unwrap().clone();
    let place = order.iter().position(|k| *k == 1_000).unwrap();
    assert!(
        place <= YIELDING_AT_ONCE,
        "{place} yielding transactions went first: {order:?}"
    );
    let mut all: Vec<i64> = (0..yielding).collect();
    all.push(1_000);
    assert_eq!(keys(&reader).await, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_or_failed_transaction_rolls_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, reader) = writer(&dir).await;
    let mut tx = writer.begin().await.unwrap();
    insert(&mut tx, 5000).await.unwrap();
    tx.commit().await.unwrap();
    let tasks: Vec<_> = (0..60)
        .map(|k| {
            let writer = writer.clone();
            tokio::spawn(async move {
                let mut tx = writer.begin().await.unwrap();
                if k % 4 == 3 {
                    // A constraint error in the first statement, sent with the opening:
                    // the savepoint is open all the same, and only this one is rolled back.
                    let err = insert_with_opening(&mut tx, 5000).await.unwrap_err();
                    assert!(
                        matches!(
                            &err,
                            StoreError::Constraint(..) | StoreError::Sqlx(sqlx::Error::Database(_))
                        ),
                        "{err:?}"
                    );
                    insert(&mut tx, k).await.unwrap();
                    return false;
                }
                if k % 2 == 0 {
                    insert_with_opening(&mut tx, k).await.unwrap();
                } else {
                    insert(&mut tx, k).await.unwrap();
                }
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
    expected.push(5000);
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
            .execute(tx.conn().await.unwrap())
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
            if k % 2 == 0 {
                insert_with_opening(&mut tx, k).await.unwrap();
            } else {
                insert(&mut tx, k).await.unwrap();
            }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_without_statements_leaves_the_batch_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, reader) = writer(&dir).await;
    let mut first = writer.begin().await.unwrap();
    insert_with_opening(&mut first, 1).await.unwrap();
    // Committed into the batch and waiting for its COMMIT while the others come and go.
    let waiting = tokio::spawn(first.commit());
    drop(writer.begin().await.unwrap());
    writer.begin().await.unwrap().commit().await.unwrap();
    let mut last = writer.begin().await.unwrap();
    insert_with_opening(&mut last, 2).await.unwrap();
    last.commit().await.unwrap();
    waiting.await.unwrap().unwrap();
    assert_eq!(keys(&reader).await, vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn solo_transactions_each_pay_their_own_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, reader) = writer(&dir).await;
    let before = writer.state.lock().await.batches.load(Ordering::Relaxed);
    insert_concurrently(&writer, 40, true).await;
    let after = writer.state.lock().await.batches.load(Ordering::Relaxed);
    assert_eq!(after - before, 40);
    assert_eq!(keys(&reader).await.len(), 40);
}

/// Whether this process may raise a thread's priority (`CAP_SYS_NICE`, as root has).
fn may_raise_priority() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 23) != 0)
}

/// The nice values of this process's threads named `name`.
fn nice_of_threads(name: &str) -> Vec<i64> {
    let mut nices = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let stat = std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap_or_default();
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if head.ends_with(name) {
            // After the name: state is field 3 of stat(5), nice field 19.
            nices.extend(
                rest.split_whitespace()
                    .nth(16)
                    .and_then(|n| n.parse::<i64>().ok()),
            );
        }
    }
    nices
}

#[tokio::test]
async fn a_raised_writer_runs_its_thread_at_that_priority_and_commits_as_before() {
    let dir = tempfile::tempdir().unwrap();
    // 80: a nice value no other test's writer has (they use none or the highest).
    let (writer, reader) = writer_at(&dir, Some(80)).await;
    let mut tx = writer.begin().await.unwrap();
    insert(&mut tx, 1).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(keys(&reader).await, [1]);
    if !cfg!(target_os = "linux") || !may_raise_priority() {
        eprintln!("not checked: this process may not raise priorities");
        return;
    }
    let policy = thread_priority::ThreadSchedulePolicy::Normal(
        thread_priority::NormalThreadSchedulePolicy::Other,
    );
    let expected = thread_priority::ThreadPriority::Crossplatform(80u8.try_into().unwrap())
        .to_posix(policy)
        .unwrap();
    assert!(expected < 0, "{expected}");
    let nices = nice_of_threads("sqlx-sqlite-wor");
    assert!(
        nices.contains(&i64::from(expected)),
        "no SQLite thread at nice {expected}: {nices:?}"
    );
}

/// Writes 4 KB rows in batches of concurrent transactions for `seconds` while four tasks read
/// without pause, as a busy node does; returns (bytes written, the WAL file's size).
async fn steady_load(restart_after: i64, seconds: f64) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let writer = connect_restarting_after(&options, None, restart_after)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .execute(writer.exclusive().await.unwrap().conn())
        .await
        .unwrap();
    let reader = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (reader, stop) = (reader.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let _: Option<i64> = sqlx::query_scalar("SELECT MAX(k) FROM t")
                        .fetch_one(&reader)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs_f64(seconds);
    let mut written = 0;
    let mut k = 0;
    while std::time::Instant::now() < deadline {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let mut tx = writer.begin().await.unwrap();
                    sqlx::query("INSERT INTO t (k, v) VALUES (?, hex(randomblob(2000)))")
                        .bind(k + i)
                        .execute(tx.conn().await.unwrap())
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        k += 8;
        written += 8 * 4000;
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    let wal = std::fs::metadata(dir.path().join("w.db-wal"))
        .unwrap()
        .len();
    (written, wal)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wal_starts_over_under_steady_writes_and_reads() {
    // Against the same load without restarts, in the same test: how often a restart gets
    // its readers within its limit depends on how busy the machine is (other tests run
    // alongside), so a bound on the WAL alone would be flaky. With restarts the WAL peaks at
    // a few rounds' writes; without, SQLite alone never starts it over and it holds them all.
    let (written, wal) = steady_load(256, 2.0).await;
    let (written_without, wal_without) = steady_load(i64::MAX, 2.0).await;
    eprintln!(
        "WAL {wal} bytes for {written} written; without restarts {wal_without} for {written_without}"
    );
    assert!(written > 2 << 20, "only {written} bytes written");
    assert!(
        wal_without > written_without / 2,
        "without restarts the WAL is {wal_without} bytes for {written_without} written"
    );
    assert!(
        wal * 2 < wal_without,
        "the WAL grew to {wal} bytes for {written} written, {wal_without} without restarts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_on_an_old_snapshot_does_not_stall_writes_while_the_wal_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    // Restarts are due after every round of writes below.
    let writer = connect_restarting_after(&options, None, 8).await.unwrap();
    sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .execute(writer.exclusive().await.unwrap().conn())
        .await
        .unwrap();
    // A long report: a read transaction kept open on the snapshot of its first read. A
    // restart waits for it up to its limit, each round, with the writer's lock held.
    let mut report = SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::raw_sql("BEGIN; SELECT COUNT(*) FROM t")
        .execute(&mut report)
        .await
        .unwrap();
    let held_until = std::time::Instant::now() + Duration::from_millis(1500);
    let mut slowest = Duration::ZERO;
    let mut k = 0;
    while std::time::Instant::now() < held_until {
        let started = std::time::Instant::now();
        let mut tx = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO t (k, v) VALUES (?, hex(randomblob(2000)))")
            .bind(k)
            .execute(tx.conn().await.unwrap())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        slowest = slowest.max(started.elapsed());
        k += 1;
    }
    sqlx::raw_sql("COMMIT").execute(&mut report).await.unwrap();
    assert!(k > 50, "only {k} writes in 1.5 s");
    // The busy timeout of the database is 5 s; waiting that long for the report would stall
    // the writes for as long as the report stays open.
    assert!(
        slowest < Duration::from_millis(500),
        "a write waited {slowest:?} behind a restart"
    );
}
