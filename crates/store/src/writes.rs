//! Writes of one transaction sent together.
//!
//! On SQLite every statement is a round trip between the request's task and the writer
//! connection's thread, and the writer is held for all of them: under load the round trips,
//! not the statements, are what the writer spends its time on. On PostgreSQL each statement is
//! a round trip over the network while the transaction holds its row locks. Statements whose
//! only answer is how many rows they touched can go in one round trip instead: [`Writes`]
//! collects them and [`Writes::run`] sends them together: to SQLite as one multi-statement
//! query (parameters are renumbered so each statement keeps its own `$1…$n`), to PostgreSQL
//! as one statement of data-modifying CTEs, each counting the rows it touched.
//!
//! The queued statements must be independent of each other: they touch different rows, and
//! none depends on what another writes (on PostgreSQL they all see the database as it was
//! before the statement). They run when [`Writes::run`] is called, after everything the
//! caller executed directly: callers queue only writes whose order against those does not
//! matter, and decide from rows they have already locked (so a queued conditional write that
//! touches an unexpected number of rows is a broken invariant, reported as
//! [`StoreError::Unexpected`]).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use crate::db::TxInner;
use crate::writer::Opening;
use crate::{Db, StoreError, Tx};

/// A parameter value of a queued statement.
#[derive(Debug, Clone)]
pub enum Value {
    Uuid(Uuid),
    OptUuid(Option<Uuid>),
    Int(i64),
    Int32(i32),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
    OptText(Option<String>),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
    Json(serde_json::Value),
}

macro_rules! value_from {
    ($($t:ty => $v:ident $(($conv:path))?),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(x: $t) -> Self {
                Value::$v($($conv)?(x))
            }
        })*
    };
}

value_from! {
    Uuid => Uuid,
    Option<Uuid> => OptUuid,
    i64 => Int,
    i32 => Int32,
    bool => Bool,
    String => Text,
    &str => Text(str::to_owned),
    &String => Text(String::clone),
    &Vec<u8> => Bytes(Vec::clone),
    Option<String> => OptText,
    &Option<String> => OptText(Option::clone),
    DateTime<Utc> => Time,
    Option<DateTime<Utc>> => OptTime,
    serde_json::Value => Json,
    &Json<serde_json::Value> => Json(json_value),
}

fn json_value(j: &Json<serde_json::Value>) -> serde_json::Value {
    j.0.clone()
}

/// `values![a, b, c]`: the parameters of a queued statement, in `$1, $2, …` order.
#[macro_export]
macro_rules! values {
    ($($v:expr),* $(,)?) => {
        vec![$($crate::writes::Value::from($v)),*]
    };
}

/// A queued statement (of [`Writes`] or [`crate::reads::Reads`]).
#[derive(Debug)]
pub(crate) struct Statement {
    pub(crate) sql: Cow<'static, str>,
    pub(crate) values: Vec<Value>,
    /// Rows it must touch, and what it is about (for the error when it does not).
    expect: Option<(u64, &'static str)>,
}

impl Statement {
    pub(crate) fn new(sql: impl Into<Cow<'static, str>>, values: Vec<Value>) -> Self {
        Self {
            sql: sql.into(),
            values,
            expect: None,
        }
    }
}

/// Statements queued for one round trip; see the module documentation.
#[derive(Debug, Default)]
pub struct Writes {
    statements: Vec<Statement>,
}

impl Writes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a statement; returns its index into the counts [`Writes::run`] returns.
    pub fn push(&mut self, sql: impl Into<Cow<'static, str>>, values: Vec<Value>) -> usize {
        self.statements.push(Statement::new(sql, values));
        self.statements.len() - 1
    }

    /// Queues a statement that must touch exactly `rows` rows; [`Writes::run`] fails with
    /// [`StoreError::Unexpected`] naming `what` when it does not.
    pub fn push_expect(
        &mut self,
        rows: u64,
        what: &'static str,
        sql: impl Into<Cow<'static, str>>,
        values: Vec<Value>,
    ) {
        self.statements.push(Statement {
            expect: Some((rows, what)),
            ..Statement::new(sql, values)
        });
    }

    /// Statements queued so far.
    pub fn len(&self) -> usize {
        self.statements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Runs the queued statements as a transaction of their own (begun with
    /// [`Db::begin_yielding`] when `yielding`, else [`Db::begin`]) and commits it; returns
    /// the rows each touched, or `None` when one queued with an expected count touched
    /// other rows: that transaction is dropped, and nothing of it stays.
    pub async fn commit_unless_refused(
        self,
        db: &Db,
        yielding: bool,
    ) -> Result<Option<Vec<u64>>, StoreError> {
        let mut tx = if yielding {
            db.begin_yielding().await?
        } else {
            db.begin().await?
        };
        let counts = match self.run(&mut tx).await {
            Ok(counts) => counts,
            Err(StoreError::Unexpected(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        tx.commit().await?;
        Ok(Some(counts))
    }

    /// Runs the queued statements in `tx`, in order; returns the rows each touched.
    pub async fn run(self, tx: &mut Tx) -> Result<Vec<u64>, StoreError> {
        if self.statements.is_empty() {
            return Ok(Vec::new());
        }
        let expected: Vec<_> = self.statements.iter().map(|s| s.expect).collect();
        let counts = match tx.inner() {
            TxInner::Sqlite(c) => {
                let statements = self.statements;
                c.run(Box::new(move |conn, opening| {
                    Box::pin(run_sqlite(statements, opening, conn))
                }))
                .await?
            }
            TxInner::Postgres(c) => run_postgres(&self.statements, c).await?,
        };
        for (expect, n) in expected.into_iter().zip(&counts) {
            if let Some((rows, what)) = expect
                && *n != rows
            {
                return Err(StoreError::Unexpected(format!(
                    "{what}: touched {n} rows, expected {rows}"
                )));
            }
        }
        Ok(counts)
    }
}

/// One multi-statement query of `statements` between `opening` and `closing` (SQL ending
/// in `; `, or empty): SQLite binds `$n` by its number across the whole text, so each
/// statement's parameters are shifted past those of the statements before it.
pub(crate) fn sqlite_query<'q>(
    opening: &str,
    statements: &'q [Statement],
    closing: &str,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    let mut sql = String::from(opening);
    let mut offset = 0;
    for s in statements {
        sql.push_str(&renumber(&s.sql, offset));
        sql.push_str(";\n");
        offset += s.values.len();
    }
    sql.push_str(closing);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for s in statements {
        for v in &s.values {
            query = bind(query, v);
        }
    }
    query
}

/// [`sqlite_query`], with the transaction's `opening` first when these are its first
/// statements.
async fn run_sqlite(
    statements: Vec<Statement>,
    opening: Opening,
    conn: &mut sqlx::SqliteConnection,
) -> Result<Vec<u64>, sqlx::Error> {
    use futures::TryStreamExt;
    let query = sqlite_query(opening.sql, &statements, "");
    // One prepared query of several statements is SQLite-only behaviour that sqlx marks
    // deprecated; it is the one way to send them in one round trip with bound parameters.
    #[expect(deprecated)]
    let counts: Vec<u64> = query
        .execute_many(conn)
        .await
        .map_ok(|r| r.rows_affected())
        .try_collect()
        .await?;
    if counts.len() != opening.statements + statements.len() {
        return Err(sqlx::Error::Protocol(format!(
            "{} results for {} statements",
            counts.len(),
            opening.statements + statements.len()
        )));
    }
    Ok(counts[opening.statements..].to_vec())
}

/// One statement: each queued statement becomes a data-modifying CTE that returns a row per
/// row it touched, and the outer query counts them.
async fn run_postgres(
    statements: &[Statement],
    conn: &mut sqlx::PgConnection,
) -> Result<Vec<u64>, StoreError> {
    use sqlx::Row;
    if let [only] = statements {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(only.sql.as_ref()));
        for v in &only.values {
            query = bind(query, v);
        }
        return Ok(vec![query.execute(&mut *conn).await?.rows_affected()]);
    }
    let mut sql = String::from("WITH ");
    let mut offset = 0;
    for (i, s) in statements.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "w{i} AS ({} RETURNING 1)",
            renumber(&s.sql, offset)
        ));
        offset += s.values.len();
    }
    let counts: Vec<String> = (0..statements.len())
        .map(|i| format!("(SELECT count(*) FROM w{i})"))
        .collect();
    sql.push_str(" SELECT ");
    sql.push_str(&counts.join(", "));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for s in statements {
        for v in &s.values {
            query = bind(query, v);
        }
    }
    let row = query.fetch_one(&mut *conn).await?;
    (0..statements.len())
        .map(|i| {
            let n: i64 = row.try_get(i)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .collect()
}

pub(crate) fn bind<'q, DB>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    v: &Value,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<Uuid>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<DateTime<Utc>>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i32: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Json<serde_json::Value>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    match v.clone() {
        Value::Uuid(x) => query.bind(x),
        Value::OptUuid(x) => query.bind(x),
        Value::Int(x) => query.bind(x),
        Value::Int32(x) => query.bind(x),
        Value::Bool(x) => query.bind(x),
        Value::Text(x) => query.bind(x),
        Value::Bytes(x) => query.bind(x),
        Value::OptText(x) => query.bind(x),
        Value::Time(x) => query.bind(x),
        Value::OptTime(x) => query.bind(x),
        Value::Json(x) => query.bind(Json(x)),
    }
}

/// `sql` with every `$n` turned into `$(n + offset)`.
pub(crate) fn renumber(sql: &str, offset: usize) -> Cow<'_, str> {
    if offset == 0 {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn parameters_are_shifted_past_the_statements_before() {
        assert_eq!(renumber("SET a = $1, b = $12", 0), "SET a = $1, b = $12");
        assert_eq!(renumber("SET a = $1, b = $12", 3), "SET a = $4, b = $15");
        assert_eq!(
            renumber("VALUES ($1, $2) -- $ alone", 10),
            "VALUES ($11, $12) -- $ alone"
        );
    }
}
