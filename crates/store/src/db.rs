//! Connection pools and transactions.
//!
//! SQLite runs in WAL mode on one file with a single writer connection (`synchronous=FULL`, so
//! an acknowledged commit survives power loss; SQLite has one writer anyway, and queueing for
//! ours is cheaper than `SQLITE_BUSY` retries) whose transactions are group-committed (see
//! [`crate::writer`]), and a reader pool.
//! PostgreSQL uses one pool for both with `synchronous_commit=on`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Transaction};

use crate::StoreError;
use crate::readers::Readers;
use crate::writer::{self, Writer, WriterTx};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `sqlite://path` or `postgres://...`.
    pub url: String,
    /// Upper bound of connections in the read pool (PostgreSQL: the only pool).
    pub max_connections: u32,
    /// PostgreSQL only: the schema to use (tests give each test its own).
    pub schema: Option<String>,
    /// SQLite only: the scheduling priority (1–99, 99 the highest) of the writer
    /// connection's thread, or `None` to leave it as inherited (see [`crate::writer`]).
    pub sqlite_writer_priority: Option<u8>,
}

impl DbConfig {
    /// A SQLite database file inside `data_dir`.
    pub fn sqlite_in(data_dir: &Path) -> Self {
        Self {
            url: format!("sqlite://{}", data_dir.join("emporium.db").display()),
            max_connections: 8,
            schema: None,
            sqlite_writer_priority: Some(MAX_WRITER_PRIORITY),
        }
    }
}

#[derive(Clone)]
pub(crate) enum Pools {
    Sqlite { write: Writer, read: Readers },
    Postgres(PgPool),
}

/// The database handle: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Db {
    pools: Pools,
}

impl Db {
    pub async fn connect(config: &DbConfig) -> Result<Self, StoreError> {
        let pools =
            if config.url.starts_with("postgres://") || config.url.starts_with("postgresql://") {
                Pools::Postgres(connect_postgres(config).await?)
            } else if config.url.starts_with("sqlite:") {
                connect_sqlite(config).await?
            } else {
                return Err(StoreError::Config(format!(
                    "unsupported database URL (expected sqlite:// or postgres://): {}",
                    redact(&config.url)
                )));
            };
        Ok(Self { pools })
    }

    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.pools
    }

    /// Applies the backend's pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pools {
            Pools::Sqlite { write, .. } => {
                let mut writer = write.exclusive().await?;
                SQLITE_MIGRATIONS.run(writer.conn()).await?
            }
            Pools::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Starts a write transaction. On SQLite it is a savepoint on the single writer
    /// connection, inside a batch that holds the write lock from its start (`BEGIN
    /// IMMEDIATE`, so it never fails half-way with `SQLITE_BUSY` when upgrading from a read)
    /// and is committed for many transactions at once.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let inner = match &self.pools {
            Pools::Sqlite { write, .. } => TxInner::Sqlite(write.begin().await?),
            Pools::Postgres(pool) => TxInner::Postgres(pool.begin().await?),
        };
        Ok(Tx { inner })
    }

    /// [`Db::begin`] for a write that can wait: on SQLite, where writes queue for the one
    /// writer, transactions begun with [`Db::begin`] find at most a few (ten) begun this way
    /// ahead of them in the queue, the others waiting behind; on PostgreSQL the same as
    /// [`Db::begin`]. For cart edits, so that under load the checkouts' and payments' writes
    /// do not queue behind every shopper's cart.
    pub async fn begin_yielding(&self) -> Result<Tx, StoreError> {
        let inner = match &self.pools {
            Pools::Sqlite { write, .. } => TxInner::Sqlite(write.begin_yielding().await?),
            Pools::Postgres(pool) => TxInner::Postgres(pool.begin().await?),
        };
        Ok(Tx { inner })
    }

    /// A write transaction that commits on its own, never sharing its COMMIT with others
    /// (on PostgreSQL the same as [`Db::begin`]). Only for comparing designs in benchmarks.
    pub async fn begin_solo(&self) -> Result<Tx, StoreError> {
        let inner = match &self.pools {
            Pools::Sqlite { write, .. } => TxInner::Sqlite(write.begin_solo().await?),
            Pools::Postgres(pool) => TxInner::Postgres(pool.begin().await?),
        };
        Ok(Tx { inner })
    }

    /// `SELECT 1` on the read path: is the database reachable?
    pub async fn ping(&self) -> Result<(), StoreError> {
        crate::on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// (connections open, of which idle) per pool, for metrics.
    pub fn pool_stats(&self) -> Vec<(&'static str, u32, usize)> {
        match &self.pools {
            Pools::Sqlite { write, read } => {
                let (open, idle) = read.stats();
                vec![
                    ("sqlite_write", 1, usize::from(write.is_idle())),
                    ("sqlite_read", open, idle),
                ]
            }
            Pools::Postgres(pool) => vec![("postgres", pool.size(), pool.num_idle())],
        }
    }

    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite { write, read } => {
                read.close().await;
                write.close().await;
            }
            Pools::Postgres(pool) => pool.close().await,
        }
    }

    /// The PostgreSQL pool, for callers that need a backend-specific feature.
    pub fn postgres(&self) -> Option<&PgPool> {
        match &self.pools {
            Pools::Postgres(p) => Some(p),
            Pools::Sqlite { .. } => None,
        }
    }
}

/// A write transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    inner: TxInner,
}

pub(crate) enum TxInner {
    Sqlite(WriterTx),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) fn inner(&mut self) -> &mut TxInner {
        &mut self.inner
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Commits in two halves: the writes are handed over when this returns, and durable (or
    /// lost) when the returned [`Commit`] says so. On SQLite the writer's connection goes to
    /// the next transaction at once, and that one sees these writes and commits with them or
    /// after them; on PostgreSQL the COMMIT has already finished when this returns.
    pub async fn hand_over(self) -> Result<Commit, StoreError> {
        Ok(Commit(match self.inner {
            TxInner::Sqlite(t) => Box::pin(t.hand_over().await?),
            TxInner::Postgres(t) => {
                let done = t.commit().await.map_err(StoreError::from);
                Box::pin(std::future::ready(done))
            }
        }))
    }
}

/// The second half of [`Tx::hand_over`]: await it for the commit's outcome.
#[must_use = "a commit is only known durable once awaited"]
pub struct Commit(futures::future::BoxFuture<'static, Result<(), StoreError>>);

impl std::future::IntoFuture for Commit {
    type Output = Result<(), StoreError>;
    type IntoFuture = futures::future::BoxFuture<'static, Result<(), StoreError>>;

    fn into_future(self) -> Self::IntoFuture {
        self.0
    }
}

/// The highest priority of the SQLite writer's thread, and its default.
pub const MAX_WRITER_PRIORITY: u8 = 99;

/// How much of the database file the writer maps into memory (address space, not RAM).
const SQLITE_MMAP_BYTES: u64 = 1 << 30;

async fn connect_sqlite(config: &DbConfig) -> Result<Pools, StoreError> {
    let base = SqliteConnectOptions::from_str(&config.url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5))
        // Every request's writes are a savepoint in the writer's batch (see
        // [`crate::writer`]), and SQLite keeps each page's content from before a savepoint
        // in a statement journal. By default that journal goes to a temporary file once it
        // outgrows 64 KiB, and then each page a request changes first costs a write to it;
        // in memory it is a copy. Sorts and temporary tables stay in memory too.
        .pragma("temp_store", "memory");
    // The writer fsyncs every commit: an acknowledged response means durable data. It reads
    // pages through a memory map of the file, which stays valid: no other connection writes.
    // A reader's does not: once any commit lands, SQLite drops the reader's cached pages and
    // its whole map at its next transaction, and under writes that is nearly every one.
    // Unmapping and faulting the pages back in cost more than copying the few pages a read
    // needs (measured in docs/benchmarks.md), so readers copy.
    let write = writer::connect(
        &base
            .clone()
            .synchronous(SqliteSynchronous::Full)
            .pragma("mmap_size", SQLITE_MMAP_BYTES.to_string()),
        config.sqlite_writer_priority,
    )
    .await?;
    // Not sqlx's pool: see [`crate::readers`].
    let read = Readers::connect(
        base.read_only(false).synchronous(SqliteSynchronous::Normal),
        config.max_connections,
    )
    .await?;
    Ok(Pools::Sqlite { write, read })
}

/// How long a pooled PostgreSQL connection may sit idle before it is pinged on acquire.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(30);

async fn connect_postgres(config: &DbConfig) -> Result<PgPool, StoreError> {
    let mut options =
        PgConnectOptions::from_str(&config.url)?.options([("synchronous_commit", "on")]);
    if let Some(schema) = &config.schema {
        options = options.options([("search_path", schema.as_str())]);
    }
    let pool = PgPoolOptions::new()
        .max_connections(config.max_connections.max(1))
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings every connection it hands out by default: one more round trip before
        // every transaction and read. Only a connection that sat idle long enough to have
        // been dropped by a proxy or a restart is checked first.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_WHEN_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// The URL without its password, for error messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}
