//! The database: one `Db` over SQLite or PostgreSQL, migrations per backend, and one named
//! function per query, grouped by business component (`identity`, `catalog`, `inventory`,
//! `reservations`, `carts`, `pricing`, `orders`, `payments`, `outbox`, `idempotency`, `search`).
//!
//! Dialect differences are written out visibly: every query function runs its body through
//! [`on_pool!`] or [`on_tx!`], which expand it once per backend. Where the SQL text itself
//! differs, the function matches on the backend explicitly.

pub mod carts;
pub mod catalog;
mod db;
mod error;
pub mod idempotency;
pub mod identity;
pub mod inventory;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod pricing;
mod readers;
pub mod reads;
pub mod reservations;
pub mod search;
mod shapes;
mod writer;
pub mod writes;

pub use db::{Backend, Commit, Db, DbConfig, MAX_WRITER_PRIORITY, Tx};
pub use error::{Constraint, StoreError};
pub use writes::Writes;

/// Runs `$body` with `$p` bound to a read connection (SQLite) or the pool (PostgreSQL).
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $p:ident => $body:expr) => {
        match $db.pools() {
            $crate::db::Pools::Sqlite { read, .. } => match read.acquire().await {
                Ok(mut reader) => match reader.conn() {
                    Ok($p) => $body,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            $crate::db::Pools::Postgres($p) => $body,
        }
    };
}

/// Runs `$body` with `$c` bound to the transaction's connection (`&mut *Connection`); on
/// SQLite the transaction's savepoint is opened first if this is its first statement (so the
/// enclosing function returns `Result<_, StoreError>` or an error made from one).
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx.inner() {
            $crate::db::TxInner::Sqlite($c) => {
                let $c = $c.conn().await?;
                $body
            }
            $crate::db::TxInner::Postgres($c) => {
                let $c = &mut **$c;
                $body
            }
        }
    };
}
