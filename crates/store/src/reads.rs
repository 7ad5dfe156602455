//! Reads of one transaction sent together: the counterpart of [`crate::writes`].
//!
//! A transaction that reads several things before it decides what to write pays a round trip
//! per statement while it holds the SQLite writer (or, on PostgreSQL, its row locks).
//! [`Reads`] sends statements whose parameters do not depend on each other's answers
//! together: to SQLite as one multi-statement query (parameters renumbered as for
//! [`crate::writes::Writes`]), with the statements that open the transaction's savepoint
//! ahead of them when they are its first; to PostgreSQL one after the other, in the order
//! queued, which is the order their row locks are taken in (an extended-protocol statement
//! answers one result set).
//!
//! Outside a write transaction, [`Reads::run_on`] reads several things as of one snapshot:
//! on SQLite in one round trip to a read connection, inside `BEGIN … COMMIT`.

use std::borrow::Cow;

use futures::TryStreamExt;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::db::Pools;
use crate::db::TxInner;
use crate::writer::Opening;
use crate::writes::{Statement, Value, bind, sqlite_query};
use crate::{Db, StoreError, Tx};

/// Statements queued for one round trip; see the module documentation.
#[derive(Default)]
pub struct Reads {
    statements: Vec<Statement>,
}

/// The rows each statement of a [`Reads`] answered, by its index.
pub struct Rows(Answered);

enum Answered {
    Sqlite(Vec<Vec<SqliteRow>>),
    Postgres(Vec<Vec<PgRow>>),
}

impl Reads {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a statement; returns its index into the [`Rows`] [`Reads::run`] returns.
    pub fn push(&mut self, sql: impl Into<Cow<'static, str>>, values: Vec<Value>) -> usize {
        self.statements.push(Statement::new(sql, values));
        self.statements.len() - 1
    }

    /// Runs the queued statements in `tx`, in order.
    pub async fn run(self, tx: &mut Tx) -> Result<Rows, StoreError> {
        let statements = self.statements;
        let answered = match tx.inner() {
            TxInner::Sqlite(c) => Answered::Sqlite(
                c.run(Box::new(move |conn, opening| {
                    Box::pin(run_sqlite(statements, opening, "", conn))
                }))
                .await?,
            ),
            TxInner::Postgres(c) => Answered::Postgres(run_postgres(&statements, c).await?),
        };
        Ok(Rows(answered))
    }

    /// Runs the queued statements outside any write transaction, all reading one snapshot
    /// of the database.
    pub async fn run_on(self, db: &Db) -> Result<Rows, StoreError> {
        let statements = self.statements;
        let answered = match db.pools() {
            Pools::Sqlite { read, .. } => {
                let mut reader = read.acquire().await?;
                let conn = reader.conn_for_transaction()?;
                let opening = Opening {
                    sql: "BEGIN;\n",
                    statements: 1,
                };
                let rows = run_sqlite(statements, opening, "COMMIT;", conn).await?;
                reader.ended_transaction();
                Answered::Sqlite(rows)
            }
            Pools::Postgres(pool) => {
                // Read only, so it never fails to serialize.
                let mut tx = pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .await?;
                let out = run_postgres(&statements, &mut tx).await?;
                tx.commit().await?;
                Answered::Postgres(out)
            }
        };
        Ok(Rows(answered))
    }
}

/// The statements one after the other, in the order queued.
async fn run_postgres(
    statements: &[Statement],
    conn: &mut sqlx::PgConnection,
) -> Result<Vec<Vec<PgRow>>, sqlx::Error> {
    let mut out = Vec::with_capacity(statements.len());
    for s in statements {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(s.sql.as_ref()));
        for v in &s.values {
            query = bind(query, v);
        }
        out.push(query.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// One multi-statement query; each statement's rows end where its result comes. `closing`
/// is empty or one statement, run last.
async fn run_sqlite(
    statements: Vec<Statement>,
    opening: Opening,
    closing: &'static str,
    conn: &mut sqlx::SqliteConnection,
) -> Result<Vec<Vec<SqliteRow>>, sqlx::Error> {
    let closings = usize::from(!closing.is_empty());
    let query = sqlite_query(opening.sql, &statements, closing);
    let mut answered = Vec::with_capacity(opening.statements + statements.len());
    let mut rows = Vec::new();
    // Several statements in one prepared query are SQLite-only behaviour that sqlx marks
    // deprecated; it is the one way to send them in one round trip with bound parameters.
    #[expect(deprecated)]
    let mut stream = query.fetch_many(conn);
    while let Some(step) = stream.try_next().await? {
        match step {
            sqlx::Either::Left(_) => answered.push(std::mem::take(&mut rows)),
            sqlx::Either::Right(row) => rows.push(row),
        }
    }
    let expected = opening.statements + statements.len() + closings;
    if answered.len() != expected {
        return Err(sqlx::Error::Protocol(format!(
            "{} results for {expected} statements",
            answered.len(),
        )));
    }
    answered.truncate(expected - closings);
    Ok(answered.split_off(opening.statements))
}

impl Rows {
    /// The rows the `i`th statement answered, decoded.
    pub fn decode<T>(&self, i: usize) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow>,
    {
        let decoded: Option<Result<Vec<T>, sqlx::Error>> = match &self.0 {
            Answered::Sqlite(all) => all
                .get(i)
                .map(|rows| rows.iter().map(T::from_row).collect()),
            Answered::Postgres(all) => all
                .get(i)
                .map(|rows| rows.iter().map(T::from_row).collect()),
        };
        match decoded {
            Some(rows) => Ok(rows?),
            None => Err(StoreError::Unexpected(format!("no statement {i} was read"))),
        }
    }

    /// The row the `i`th statement answered (a lookup by key), if any; more than one is an
    /// error rather than a row picked at random.
    pub fn one<T>(&self, i: usize) -> Result<Option<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow>,
    {
        let mut rows = self.decode(i)?;
        if rows.len() > 1 {
            return Err(StoreError::Unexpected(format!(
                "statement {i} answered {} rows where at most one was expected",
                rows.len()
            )));
        }
        Ok(rows.pop())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::{Db, DbConfig, Writes, values};

    #[derive(sqlx::FromRow)]
    struct N {
        n: i64,
    }

    #[tokio::test]
    async fn one_row_is_at_most_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&DbConfig::sqlite_in(dir.path())).await.unwrap();
        let mut reads = super::Reads::new();
        let none = reads.push("SELECT 1 AS n WHERE 0", vec![]);
        let single = reads.push("SELECT 7 AS n", vec![]);
        let two = reads.push("SELECT 1 AS n UNION ALL SELECT 2", vec![]);
        let rows = reads.run_on(&db).await.unwrap();
        assert!(rows.one::<N>(none).unwrap().is_none());
        assert_eq!(rows.one::<N>(single).unwrap().map(|r| r.n), Some(7));
        assert!(matches!(
            rows.one::<N>(two),
            Err(crate::StoreError::Unexpected(_))
        ));
    }

    /// Two rows always written together: a reader that saw them from two snapshots would
    /// find them apart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_outside_a_transaction_see_one_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&DbConfig::sqlite_in(dir.path())).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let mut w = Writes::new();
        w.push(
            "CREATE TABLE pair (k INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
            vec![],
        );
        w.push("INSERT INTO pair (k, n) VALUES (1, 0), (2, 0)", vec![]);
        w.run(&mut tx).await.unwrap();
        tx.commit().await.unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (db, stop) = (db.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0_i64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let mut tx = db.begin().await.unwrap();
                    let mut w = Writes::new();
                    w.push_expect(1, "first", "UPDATE pair SET n = $1 WHERE k = 1", values![n]);
                    w.push_expect(
                        1,
                        "second",
                        "UPDATE pair SET n = $1 WHERE k = 2",
                        values![n],
                    );
                    w.run(&mut tx).await.unwrap();
                    tx.commit().await.unwrap();
                }
                n
            })
        };
        let mut last = 0;
        for _ in 0..2_000 {
            let mut reads = super::Reads::new();
            let first = reads.push("SELECT n FROM pair WHERE k = 1", vec![]);
            let second = reads.push("SELECT n FROM pair WHERE k = 2", vec![]);
            let rows = reads.run_on(&db).await.unwrap();
            let a = rows.decode::<N>(first).unwrap()[0].n;
            let b = rows.decode::<N>(second).unwrap()[0].n;
            assert_eq!(a, b, "one snapshot");
            last = a;
        }
        stop.store(true, Ordering::Relaxed);
        let written = writer.await.unwrap();
        assert!(
            written > 1 && last > 0,
            "the reads raced the writes ({written} written)"
        );
    }
}
