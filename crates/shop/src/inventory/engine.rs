//! The reservation engine: one queue per node, one writer task that drains it in batches,
//! and one transaction per batch.
//!
//! A batch locks the stock rows of its SKUs (and the rows of its flash sales), reads the
//! buyers' holds, grants first come first served in memory, then applies one conditional
//! update per SKU and location (and per sale), inserts every reservation row at once and
//! commits once: one fsync serves the whole batch. Only then are the waiters answered, so
//! a grant is always durable; a task of its own answers them, while the writer task writes
//! the next batch (at most one batch waits for its commit that way). A stock attempt may
//! carry rows that stand or fall with its grant ([`Placement`]: the checkout's order).
//! `Naive` mode runs the same steps with one transaction per attempt, for comparison.
//!
//! Layout: this file holds the queue, the writer task and what the engine remembers between
//! batches ([`Memory`]); `batch` holds the steps of one batch.

mod batch;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use emporium_domain::ids::UserId;
use emporium_store::reservations::FlashSaleRow;
use emporium_store::{Db, Writes};
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, oneshot};
use uuid::Uuid;

use super::reservations::ReservationView;
use crate::{Clock, ShopError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineMode {
    /// Many attempts per transaction (the default).
    Batched,
    /// One transaction per attempt: the design the benchmark compares against.
    Naive,
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub mode: EngineMode,
    /// Most attempts in one batch.
    pub max_batch: usize,
    /// How long the writer waits for more attempts once it has one, when the queue is empty.
    pub max_wait: StdDuration,
    /// Attempts waiting beyond this are turned away with 429 and `Retry-After`.
    pub max_queue: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            mode: EngineMode::Batched,
            max_batch: 1024,
            max_wait: StdDuration::from_micros(500),
            max_queue: 20_000,
        }
    }
}

/// What a buyer asks for.
#[derive(Debug, Clone)]
pub enum Attempt {
    /// Units of SKUs from stock: `(variant, sku, quantity)`, all or nothing.
    Stock {
        user: UserId,
        lines: Vec<(Uuid, String, i64)>,
        ttl: chrono::Duration,
        /// An order placed with the grant, in the same transaction.
        then: Option<Arc<Placement>>,
    },
    /// Units of a flash sale at its price.
    Flash {
        user: UserId,
        sale: FlashSaleRow,
        sku: String,
        quantity: i64,
        ttl: chrono::Duration,
    },
}

/// An order that stands or falls with its stock: the checkout's rows, written by the batch
/// that grants the reservation, so that the grant and the order commit together (one
/// commit to wait for, where two in a row were) or not at all.
///
/// The batch locks the cart with the stock and grants only while the cart is still open
/// and no earlier attempt of the batch took it (else 409 `already_checked_out`), and only
/// if it is still at the version the order was made from (else 409 `cart_changed`: an item
/// added meanwhile would be missing from the order); the rows close it.
pub struct Placement {
    /// The buyer's cart the order is placed from.
    pub cart: Uuid,
    /// The cart's version the order was made from.
    pub cart_version: i64,
    /// The id the reservation gets, which the rows refer to.
    pub reservation: Uuid,
    /// The rows: queued by [`Placement::queue`] once the grant is decided.
    pub rows: Box<dyn Fn(&mut Writes) + Send + Sync>,
}

impl Placement {
    pub(crate) fn queue(&self, writes: &mut Writes) {
        (self.rows)(writes);
    }
}

impl std::fmt::Debug for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placement")
            .field("cart", &self.cart)
            .field("reservation", &self.reservation)
            .finish_non_exhaustive()
    }
}

type Reply = Result<ReservationView, ShopError>;

struct Job {
    attempt: Attempt,
    reply: oneshot::Sender<Reply>,
}

/// What the engine remembers between batches.
#[derive(Default)]
pub struct Memory {
    /// Sales known to be sold out, since when (re-checked after a second, because another
    /// node may have released units).
    sold_out: Mutex<HashMap<Uuid, Instant>>,
    /// Wakes the reaper when a reservation with an earlier deadline appears.
    pub deadline_changed: Notify,
    /// When the reaper will wake next (Unix microseconds): only an earlier deadline wakes it.
    next_wake: std::sync::atomic::AtomicI64,
    /// Attempts answered `sold_out` from memory before reaching the engine.
    pub memory_answers: std::sync::atomic::AtomicU64,
}

impl Memory {
    pub fn is_sold_out(&self, sale: Uuid) -> bool {
        self.sold_out
            .lock()
            .get(&sale)
            .is_some_and(|since| since.elapsed() < StdDuration::from_secs(1))
    }

    pub fn mark_sold_out(&self, sale: Uuid) {
        self.sold_out.lock().insert(sale, Instant::now());
    }

    pub fn forget_sold_out(&self, sale: Uuid) {
        self.sold_out.lock().remove(&sale);
    }

    /// The reaper says when it will wake next.
    pub fn set_next_wake(&self, at: DateTime<Utc>) {
        self.next_wake
            .store(at.timestamp_micros(), Ordering::Release);
    }

    /// A reservation now expires at `at`: wake the reaper if it would sleep past that.
    fn deadline(&self, at: DateTime<Utc>) {
        let micros = at.timestamp_micros();
        if self.next_wake.fetch_min(micros, Ordering::AcqRel) > micros {
            self.deadline_changed.notify_one();
        }
    }
}

pub struct Engine {
    config: EngineConfig,
    db: Db,
    clock: Arc<dyn Clock>,
    pub memory: Arc<Memory>,
    queued: Arc<AtomicUsize>,
    sender: std::sync::OnceLock<mpsc::UnboundedSender<Job>>,
}

impl Engine {
    pub fn new(db: Db, clock: Arc<dyn Clock>, config: EngineConfig) -> Self {
        Self {
            config,
            db,
            clock,
            memory: Arc::new(Memory::default()),
            queued: Arc::new(AtomicUsize::new(0)),
            sender: std::sync::OnceLock::new(),
        }
    }

    pub fn forget_sold_out(&self, sale: Uuid) {
        self.memory.forget_sold_out(sale);
    }

    /// Attempts waiting in the queue now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Reserves, answering once the grant is committed.
    pub async fn reserve(&self, attempt: Attempt) -> Reply {
        if self.config.mode == EngineMode::Naive {
            let now = self.clock.now();
            return process(
                &self.db,
                &self.memory,
                now,
                vec![attempt],
                EngineMode::Naive,
            )
            .await
            .pop()
            .unwrap_or_else(|| Err(lost()));
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.config.max_queue {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(ShopError::Overloaded {
                retry_after_secs: 1,
            });
        }
        let (reply, answer) = oneshot::channel();
        let sender = self.sender.get_or_init(|| self.spawn_writer());
        if sender.send(Job { attempt, reply }).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(lost());
        }
        answer.await.unwrap_or_else(|_| Err(lost()))
    }

    fn spawn_writer(&self) -> mpsc::UnboundedSender<Job> {
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            db: self.db.clone(),
            clock: self.clock.clone(),
            memory: self.memory.clone(),
            queued: self.queued.clone(),
            config: self.config.clone(),
        };
        tokio::spawn(writer.run(rx));
        tx
    }
}

fn lost() -> ShopError {
    ShopError::internal(anyhow::anyhow!("the reservation writer stopped"))
}

struct Writer {
    db: Db,
    clock: Arc<dyn Clock>,
    memory: Arc<Memory>,
    queued: Arc<AtomicUsize>,
    config: EngineConfig,
}

impl Writer {
    /// Ends when every sender is gone (the engine was dropped).
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Job>) {
        // The batch before, waiting to be durable: at most one waits while the next is
        // written, so that under a flood batches stay as large as the commits allow.
        let mut waiting: Option<tokio::task::JoinHandle<()>> = None;
        while let Some(first) = rx.recv().await {
            let mut jobs = vec![first];
            let deadline = tokio::time::Instant::now() + self.config.max_wait;
            while jobs.len() < self.config.max_batch {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(job)) => jobs.push(job),
                        _ => break,
                    },
                }
            }
            let started = Instant::now();
            let (attempts, replies): (Vec<Attempt>, Vec<_>) =
                jobs.into_iter().map(|j| (j.attempt, j.reply)).unzip();
            let size = attempts.len();
            let now = self.clock.now();
            // The batch is written and handed to the store's commit; its waiters are
            // answered once it is durable, while the next batch is already being written
            // (on SQLite it lands in the same group commit or the one after).
            let handed = batch::grant(&self.db, now, &attempts, EngineMode::Batched).await;
            if let Some(before) = waiting.take() {
                let _ = before.await;
            }
            let memory = self.memory.clone();
            let queued = self.queued.clone();
            waiting = Some(tokio::spawn(async move {
                let answers = match handed {
                    Ok(granted) => granted.finish(&memory).await,
                    Err(e) => Err(e),
                }
                .unwrap_or_else(|e| failed(&e, size));
                queued.fetch_sub(size, Ordering::AcqRel);
                tracing::debug!(
                    batch.size = size,
                    commit_ms = started.elapsed().as_secs_f64() * 1e3,
                    "reservation batch"
                );
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }));
        }
    }
}

/// Runs attempts in one transaction; one answer per attempt, in order. If the transaction
/// fails, every attempt fails and nothing was granted.
async fn process(
    db: &Db,
    memory: &Memory,
    now: DateTime<Utc>,
    attempts: Vec<Attempt>,
    mode: EngineMode,
) -> Vec<Reply> {
    let granted = match batch::grant(db, now, &attempts, mode).await {
        Ok(granted) => granted.finish(memory).await,
        Err(e) => Err(e),
    };
    granted.unwrap_or_else(|e| failed(&e, attempts.len()))
}

/// Every attempt of a failed batch fails.
fn failed(e: &ShopError, size: usize) -> Vec<Reply> {
    let e = format!("{e:#}");
    tracing::error!(error = %e, batch.size = size, "reservation batch failed");
    (0..size)
        .map(|_| {
            Err(ShopError::internal(anyhow::anyhow!(
                "reservation batch failed: {e}"
            )))
        })
        .collect()
}
