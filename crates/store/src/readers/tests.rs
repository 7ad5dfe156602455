//! The read pool against a real SQLite file: bounded and reused connections, cancelled
//! reads, closing.

use std::str::FromStr;
use std::time::Duration;

use futures::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};

use super::*;

async fn readers(dir: &tempfile::TempDir, max: u32) -> Readers {
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let options = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let mut setup = options.connect().await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE t (k INTEGER PRIMARY KEY); \
         WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 1000) \
         INSERT INTO t SELECT k FROM n",
    )
    .execute(&mut setup)
    .await
    .unwrap();
    setup.close().await.unwrap();
    Readers::connect(options, max).await.unwrap()
}

async fn count(readers: &Readers) -> i64 {
    let mut reader = readers.acquire().await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM t")
        .fetch_one(reader.conn().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_at_most_the_maximum_of_connections() {
    let dir = tempfile::tempdir().unwrap();
    let pool = readers(&dir, 3).await;
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut reader = pool.acquire().await.unwrap();
                let k: i64 = sqlx::query_scalar("SELECT k FROM t WHERE k = ?")
                    .bind(i + 1)
                    .fetch_one(reader.conn().unwrap())
                    .await
                    .unwrap();
                // Held a while, so that the tasks really wait for each other.
                tokio::time::sleep(Duration::from_millis(2)).await;
                (k, pool.stats().0)
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let (k, open) = task.await.unwrap();
        assert_eq!(k, i as i64 + 1);
        assert!(open <= 3, "{open} connections open");
    }
    let (open, idle) = pool.stats();
    assert_eq!(open, 3, "60 overlapping reads open all three connections");
    assert_eq!(idle, 3, "and every one came back");
}

#[tokio::test]
async fn a_read_given_up_half_way_leaves_its_connection_usable() {
    let dir = tempfile::tempdir().unwrap();
    let pool = readers(&dir, 1).await;
    {
        // Read one row of a thousand and drop the rest.
        let mut reader = pool.acquire().await.unwrap();
        let mut rows = sqlx::query_scalar::<_, i64>("SELECT k FROM t ORDER BY k")
            .fetch(reader.conn().unwrap());
        assert_eq!(rows.try_next().await.unwrap(), Some(1));
    }
    assert_eq!(count(&pool).await, 1000);
    // A slow statement whose caller times out while SQLite's thread still runs it.
    let slow = async {
        let mut reader = pool.acquire().await.unwrap();
        sqlx::query_scalar::<_, i64>(
            "WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 3000000) \
             SELECT COUNT(*) FROM n",
        )
        .fetch_one(reader.conn().unwrap())
        .await
        .unwrap()
    };
    assert!(
        tokio::time::timeout(Duration::from_millis(1), slow)
            .await
            .is_err()
    );
    assert_eq!(count(&pool).await, 1000);
    assert_eq!(pool.stats(), (1, 1), "still the one connection");
}

#[tokio::test]
async fn close_waits_for_the_readers_in_use_and_refuses_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let pool = readers(&dir, 2).await;
    let reader = pool.acquire().await.unwrap();
    let closing = tokio::spawn({
        let pool = pool.clone();
        async move { pool.close().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!closing.is_finished(), "a reader is still in use");
    drop(reader);
    tokio::time::timeout(Duration::from_secs(5), closing)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(pool.acquire().await, Err(sqlx::Error::PoolClosed)));
    assert_eq!(pool.stats().1, 0, "the idle connections were closed");
}

#[tokio::test]
async fn a_transaction_left_open_closes_its_connection_instead_of_coming_back() {
    let dir = tempfile::tempdir().unwrap();
    let pool = readers(&dir, 1).await;
    {
        let mut reader = pool.acquire().await.unwrap();
        let conn = reader.conn_for_transaction().unwrap();
        // Abandoned after BEGIN and a read: the snapshot is still held.
        sqlx::raw_sql("BEGIN; SELECT COUNT(*) FROM t")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    assert_eq!(pool.stats(), (0, 0), "closed, not given back");
    // A write from another connection is seen by the next reader: no old snapshot lingers.
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let mut other = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    sqlx::query("INSERT INTO t (k) VALUES (5000)")
        .execute(&mut other)
        .await
        .unwrap();
    assert_eq!(count(&pool).await, 1001);

    // Ended properly, the connection comes back.
    {
        let mut reader = pool.acquire().await.unwrap();
        let conn = reader.conn_for_transaction().unwrap();
        sqlx::raw_sql("BEGIN; SELECT COUNT(*) FROM t; COMMIT")
            .execute(&mut *conn)
            .await
            .unwrap();
        reader.ended_transaction();
    }
    assert_eq!(pool.stats(), (1, 1));
}

/// The bundled SQLite is built as `.cargo/config.toml` asks (`LIBSQLITE3_FLAGS`): without a
/// page cache shared by all connections behind one mutex, and without counting allocations
/// under another. A build outside the workspace's cargo configuration would lose both.
#[tokio::test]
async fn sqlite_is_built_without_its_process_wide_mutexes() {
    let mut conn = SqliteConnectOptions::from_str("sqlite::memory:")
        .unwrap()
        .connect()
        .await
        .unwrap();
    let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(options.iter().any(|o| o == "THREADSAFE=1"), "{options:?}");
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
    assert!(options.iter().any(|o| o == "USE_ALLOCA"), "{options:?}");
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "{options:?}"
    );
}
