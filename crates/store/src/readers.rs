//! SQLite's read connections: a pool that hands a connection out and takes it back without
//! talking to it.
//!
//! Every SQLite connection of sqlx lives on a thread of its own, and every statement is a
//! round trip to that thread (two thread switches, which cost more than a point read itself
//! on a small virtual machine). sqlx's pool adds round trips of its own: a ping when it hands
//! a connection out (can be turned off) and another one each time a connection comes back
//! (cannot), to flush what a cancelled query might have left behind. A read connection to a
//! local file has nothing to flush: sqlx's SQLite thread finishes or abandons a statement
//! whose caller went away before it takes the next command, and plain reads never open
//! transactions (the few that do say so, and their connection is closed rather than given
//! back unless they ended it). So this pool only counts permits and keeps the idle
//! connections in a list.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a read waits for a connection when all are in use.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// A fixed number of read connections, opened when first needed.
#[derive(Clone)]
pub(crate) struct Readers {
    shared: Arc<Shared>,
}

struct Shared {
    options: SqliteConnectOptions,
    /// One permit per connection that may be in use.
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<SqliteConnection>>,
    open: AtomicU32,
    max: u32,
}

impl Readers {
    /// Opens one connection at once (so a wrong path or a locked file shows at start-up).
    pub(crate) async fn connect(
        options: SqliteConnectOptions,
        max: u32,
    ) -> Result<Self, sqlx::Error> {
        let max = max.max(1);
        let first = options.connect().await?;
        Ok(Self {
            shared: Arc::new(Shared {
                options,
                permits: Arc::new(Semaphore::new(max as usize)),
                idle: Mutex::new(vec![first]),
                open: AtomicU32::new(1),
                max,
            }),
        })
    }

    /// An idle connection, or a new one while fewer than the maximum are open; waits
    /// otherwise, for at most [`ACQUIRE_TIMEOUT`] (like sqlx's pool, an error then rather
    /// than a request that hangs).
    pub(crate) async fn acquire(&self) -> Result<Reader, sqlx::Error> {
        let permit =
            tokio::time::timeout(ACQUIRE_TIMEOUT, self.shared.permits.clone().acquire_owned())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?
                .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.shared.idle().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = self.shared.options.connect().await?;
                self.shared.open.fetch_add(1, Ordering::Relaxed);
                conn
            }
        };
        Ok(Reader {
            conn: Some(conn),
            shared: self.shared.clone(),
            in_transaction: false,
            _permit: permit,
        })
    }

    /// Connections open, and of them idle.
    pub(crate) fn stats(&self) -> (u32, usize) {
        (
            self.shared.open.load(Ordering::Relaxed),
            self.shared.idle().len(),
        )
    }

    /// Waits for the connections in use, then closes all of them; later acquires fail.
    pub(crate) async fn close(&self) {
        let _ = self.shared.permits.acquire_many(self.shared.max).await;
        self.shared.permits.close();
        let idle = std::mem::take(&mut *self.shared.idle());
        for conn in idle {
            self.shared.open.fetch_sub(1, Ordering::Relaxed);
            let _ = conn.close().await;
        }
    }
}

impl Shared {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<SqliteConnection>> {
        // The list stays consistent whatever panicked while it was held.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A read connection, back in the pool when dropped.
pub(crate) struct Reader {
    conn: Option<SqliteConnection>,
    shared: Arc<Shared>,
    /// Set while a read transaction may be open on the connection.
    in_transaction: bool,
    _permit: OwnedSemaphorePermit,
}

impl Reader {
    /// The connection (only a dropped reader has none).
    pub(crate) fn conn(&mut self) -> Result<&mut SqliteConnection, sqlx::Error> {
        self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// The connection, for statements that open a read transaction and end it.
    ///
    /// Until [`Reader::ended_transaction`] says they ran to their end, the connection is not
    /// given back to the pool but closed when the reader is dropped: statements abandoned
    /// half-way (an error, or a caller that went away) may leave the transaction open, and
    /// a connection holding an old snapshot would answer every later read from the past and
    /// keep the WAL from being restarted.
    pub(crate) fn conn_for_transaction(&mut self) -> Result<&mut SqliteConnection, sqlx::Error> {
        self.in_transaction = true;
        self.conn()
    }

    /// The transaction begun on [`Reader::conn_for_transaction`] ended.
    pub(crate) fn ended_transaction(&mut self) {
        self.in_transaction = false;
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.in_transaction {
            // Closed on its own thread once sqlx's handle is gone; a new one is opened when
            // needed.
            self.shared.open.fetch_sub(1, Ordering::Relaxed);
            drop(conn);
            return;
        }
        // Pushed back before the permit goes, so whoever gets the permit finds it.
        self.shared.idle().push(conn);
    }
}

#[cfg(test)]
mod tests;
