//! The reservation engine: one queue per node, one writer task that drains it in batches,
//! and one transaction per batch.
//!
//! A batch locks the stock rows of its SKUs (and the rows of its flash sales), reads the
//! buyers' holds, grants first come first served in memory, then applies one conditional
//! update per SKU and location (and per sale), inserts every reservation row at once and
//! commits once: one fsync serves the whole batch. Only then are the waiters answered, so
//! a grant is always durable. `Naive` mode runs the same steps with one transaction per
//! attempt, for comparison.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use emporium_domain::ids::UserId;
use emporium_domain::inventory::{Availability, Want};
use emporium_store::Db;
use emporium_store::reservations::{self as store, FlashSaleRow, LineRow, ReservationRow};
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, oneshot};
use uuid::Uuid;

use super::reservations::{ReservationView, view};
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
            let answers = process(&self.db, &self.memory, now, attempts, EngineMode::Batched).await;
            self.queued.fetch_sub(size, Ordering::AcqRel);
            tracing::debug!(
                batch.size = size,
                commit_ms = started.elapsed().as_secs_f64() * 1e3,
                "reservation batch"
            );
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(answer);
            }
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
    match grant(db, memory, now, &attempts, mode).await {
        Ok(answers) => answers,
        Err(e) => {
            let e = format!("{e:#}");
            tracing::error!(error = %e, batch.size = attempts.len(), "reservation batch failed");
            attempts
                .iter()
                .map(|_| {
                    Err(ShopError::internal(anyhow::anyhow!(
                        "reservation batch failed: {e}"
                    )))
                })
                .collect()
        }
    }
}

/// The state of the batch's flash sales while it is granted.
struct SaleState {
    row: FlashSaleRow,
    purchased: HashMap<Uuid, i64>,
    taken: i64,
}

async fn grant(
    db: &Db,
    memory: &Memory,
    now: DateTime<Utc>,
    attempts: &[Attempt],
    mode: EngineMode,
) -> Result<Vec<Reply>, ShopError> {
    // The naive design commits every attempt on its own; the engine's batches share the
    // store's group commit with the node's other writes.
    let mut tx = match mode {
        EngineMode::Naive => db.begin_solo().await?,
        EngineMode::Batched => db.begin().await?,
    };
    let mut variants: Vec<Uuid> = attempts
        .iter()
        .flat_map(|a| match a {
            Attempt::Stock { lines, .. } => lines.iter().map(|l| l.0).collect::<Vec<_>>(),
            Attempt::Flash { sale, .. } => vec![sale.variant_id],
        })
        .collect();
    variants.sort_unstable();
    variants.dedup();
    // Locking the stock rows first serializes every batch that touches these SKUs, on any
    // node, so holds and levels read below stay true until commit.
    let mut stock = Availability::default();
    for level in store::lock_levels(&mut tx, &variants).await? {
        stock.add(
            level.variant_id,
            level.location_id,
            level.on_hand - level.reserved,
        );
    }
    let had: Vec<(Uuid, i64)> = variants.iter().map(|v| (*v, stock.total(*v))).collect();
    let pairs: Vec<(Uuid, Uuid)> = attempts
        .iter()
        .flat_map(|a| match a {
            Attempt::Stock { user, lines, .. } => {
                lines.iter().map(|l| (user.0, l.0)).collect::<Vec<_>>()
            }
            Attempt::Flash { user, sale, .. } => vec![(user.0, sale.variant_id)],
        })
        .collect();
    let mut holds: HashMap<(Uuid, Uuid), Uuid> = store::find_holds(&mut tx, &pairs)
        .await?
        .into_iter()
        .map(|h| ((h.user_id, h.variant_id), h.reservation_id))
        .collect();
    let mut sales = lock_sales(&mut tx, attempts).await?;

    let mut answers = Vec::with_capacity(attempts.len());
    let mut reservations = Vec::new();
    let mut lines = Vec::new();
    let mut reserved: HashMap<(Uuid, Uuid), i64> = HashMap::new();
    for attempt in attempts {
        let user = match attempt {
            Attempt::Stock { user, .. } | Attempt::Flash { user, .. } => user.0,
        };
        let held = match attempt {
            Attempt::Stock { lines, .. } => lines
                .iter()
                .find_map(|l| holds.get(&(user, l.0)).map(|r| (l.1.clone(), *r))),
            Attempt::Flash { sale, sku, .. } => holds
                .get(&(user, sale.variant_id))
                .map(|r| (sku.clone(), *r)),
        };
        if let Some((sku, existing)) = held {
            answers.push(Err(ShopError::conflict_with(
                "already_reserved",
                format!("you already hold an active reservation of {sku}"),
                serde_json::json!({ "sku": sku, "reservation_id": existing }),
            )));
            continue;
        }
        let id = Uuid::now_v7();
        let (ttl, flash_sale_id, new_lines) = match attempt {
            Attempt::Stock {
                lines: wanted, ttl, ..
            } => {
                let wants: Vec<Want> = wanted
                    .iter()
                    .map(|l| Want {
                        variant: l.0,
                        quantity: l.2,
                    })
                    .collect();
                match stock.take_all(&wants) {
                    Err((variant, available)) => {
                        let sku = wanted
                            .iter()
                            .find(|l| l.0 == variant)
                            .map(|l| l.1.clone())
                            .unwrap_or_default();
                        answers.push(Err(ShopError::conflict_with(
                            "out_of_stock",
                            format!("{sku}: only {available} available"),
                            serde_json::json!({ "sku": sku, "available": available }),
                        )));
                        continue;
                    }
                    Ok(takes) => {
                        let rows: Vec<LineRow> = takes
                            .iter()
                            .map(|t| {
                                *reserved.entry((t.variant, t.location)).or_default() += t.quantity;
                                LineRow {
                                    user_id: user,
                                    reservation_id: id,
                                    variant_id: t.variant,
                                    location_id: t.location,
                                    quantity: t.quantity,
                                    unit_price_minor: None,
                                    currency: None,
                                }
                            })
                            .collect();
                        (*ttl, None, rows)
                    }
                }
            }
            Attempt::Flash {
                sale,
                quantity,
                ttl,
                ..
            } => {
                let Some(state) = sales.get_mut(&sale.id) else {
                    answers.push(Err(ShopError::NotFound("flash_sale")));
                    continue;
                };
                if let Err(e) = take_from_sale(state, user, *quantity, now) {
                    answers.push(Err(e));
                    continue;
                }
                let line = LineRow {
                    user_id: user,
                    reservation_id: id,
                    variant_id: state.row.variant_id,
                    location_id: state.row.location_id,
                    quantity: *quantity,
                    unit_price_minor: Some(state.row.price_minor),
                    currency: Some(state.row.currency.clone()),
                };
                (*ttl, Some(sale.id), vec![line])
            }
        };
        for line in &new_lines {
            holds.insert((user, line.variant_id), id);
        }
        let row = ReservationRow {
            user_id: user,
            id,
            status: "active".to_owned(),
            flash_sale_id,
            expires_at: now + ttl,
            created_at: now,
            updated_at: now,
        };
        let skus = sku_names(attempt);
        answers.push(Ok(view(&row, &new_lines, |v| {
            skus.get(&v).cloned().unwrap_or_default()
        })));
        reservations.push(row);
        lines.extend(new_lines);
    }

    let mut keys: Vec<_> = reserved.into_iter().collect();
    keys.sort_unstable();
    for ((variant, location), quantity) in keys {
        if !store::add_reserved(&mut tx, variant, location, quantity).await? {
            return Err(ShopError::internal(anyhow::anyhow!(
                "stock of {variant} changed under lock"
            )));
        }
    }
    for state in sales.values().filter(|s| s.taken > 0) {
        if !store::add_sale_remaining(&mut tx, state.row.id, -state.taken).await? {
            return Err(ShopError::internal(anyhow::anyhow!(
                "flash sale {} changed under lock",
                state.row.id
            )));
        }
        let deltas: Vec<(Uuid, i64)> = lines
            .iter()
            .filter(|l| {
                reservations
                    .iter()
                    .any(|r| r.id == l.reservation_id && r.flash_sale_id == Some(state.row.id))
            })
            .map(|l| (l.user_id, l.quantity))
            .collect();
        store::add_sale_purchases(&mut tx, state.row.id, &deltas).await?;
    }
    store::insert_reservations(&mut tx, &reservations, &lines).await?;
    // Search and the catalog show whether a product is in stock: tell them when this batch
    // took a SKU's last available units (and only then, to keep batches cheap).
    for (variant, before) in had {
        if before > 0 && stock.total(variant) == 0 {
            let payload = serde_json::json!({ "variant_id": variant, "available": 0 });
            crate::events::emit(
                &mut tx,
                Uuid::nil(),
                crate::events::STOCK_CHANGED,
                payload,
                now,
            )
            .await?;
        }
    }
    tx.commit().await?;
    for state in sales.values().filter(|s| s.row.remaining == 0) {
        memory.mark_sold_out(state.row.id);
    }
    if let Some(first) = reservations.iter().map(|r| r.expires_at).min() {
        memory.deadline(first);
    }
    Ok(answers)
}

async fn lock_sales(
    tx: &mut emporium_store::Tx,
    attempts: &[Attempt],
) -> Result<HashMap<Uuid, SaleState>, ShopError> {
    let mut ids: Vec<Uuid> = attempts
        .iter()
        .filter_map(|a| {
            if let Attempt::Flash { sale, .. } = a {
                Some(sale.id)
            } else {
                None
            }
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut sales = HashMap::new();
    for id in ids {
        let Some(row) = store::lock_flash_sale(tx, id).await? else {
            continue;
        };
        let users: Vec<Uuid> = attempts
            .iter()
            .filter_map(|a| match a {
                Attempt::Flash { user, sale, .. } if sale.id == id => Some(user.0),
                _ => None,
            })
            .collect();
        let purchased = store::sale_purchases(tx, id, &users)
            .await?
            .into_iter()
            .collect();
        sales.insert(
            id,
            SaleState {
                row,
                purchased,
                taken: 0,
            },
        );
    }
    Ok(sales)
}

/// Grants `quantity` units of a sale to `user` in memory, or says why not.
fn take_from_sale(
    state: &mut SaleState,
    user: Uuid,
    quantity: i64,
    now: DateTime<Utc>,
) -> Result<(), ShopError> {
    let sale = &state.row;
    if now < sale.starts_at {
        return Err(ShopError::conflict_with(
            "sale_not_started",
            "the sale has not started",
            serde_json::json!({ "starts_at": sale.starts_at }),
        ));
    }
    if now >= sale.ends_at || sale.closed_at.is_some() {
        return Err(ShopError::conflict_with(
            "sale_ended",
            "the sale has ended",
            serde_json::json!({ "ended_at": sale.ends_at }),
        ));
    }
    let bought = state.purchased.get(&user).copied().unwrap_or(0);
    if bought + quantity > sale.per_customer_limit {
        return Err(ShopError::conflict_with(
            "purchase_limit_exceeded",
            format!("at most {} per customer", sale.per_customer_limit),
            serde_json::json!({ "limit": sale.per_customer_limit, "already": bought }),
        ));
    }
    if sale.remaining < quantity {
        return Err(ShopError::conflict_with(
            "sold_out",
            "the sale is sold out",
            serde_json::json!({ "remaining": sale.remaining }),
        ));
    }
    state.row.remaining -= quantity;
    state.taken += quantity;
    state.purchased.insert(user, bought + quantity);
    Ok(())
}

fn sku_names(attempt: &Attempt) -> HashMap<Uuid, String> {
    match attempt {
        Attempt::Stock { lines, .. } => lines.iter().map(|l| (l.0, l.1.clone())).collect(),
        Attempt::Flash { sale, sku, .. } => HashMap::from([(sale.variant_id, sku.clone())]),
    }
}
