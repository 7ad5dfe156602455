//! Background work of a node, written as `run_once() -> Outcome` steps that tests call
//! directly and that `run` loops over until shutdown.
//!
//! - [`Dispatcher`] delivers outbox rows in id order and marks them delivered. Consumers
//!   (search indexing, notifications, webhooks) hook in here as they are built.
//! - [`CatalogWatch`] notices catalog writes made by any node sharing the database and moves
//!   this node's catalog version, so its read cache never serves a stale product for longer
//!   than one poll interval.
//! - [`Reaper`] expires reservations and closes ended flash sales.
//! - [`KeyPurge`] deletes idempotency keys past their retention (24 hours by default).
//! - [`payments`] reconciles undecided payments and delivers the test gateway's webhooks.
//! - [`SearchFeed`] keeps this node's search index in step with the outbox (its own reader,
//!   not delivery: every node's index sees every change), flushes search analytics and
//!   refreshes the past queries suggestions complete from.

pub mod payments;

use std::time::Duration;

use emporium_shop::{Shop, ShopError, events, idempotency};
use emporium_store::outbox;
use tokio::sync::watch;

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Work was done; call again at once.
    Worked(usize),
    /// Nothing to do; wait before calling again.
    Idle,
}

pub struct Dispatcher {
    shop: Shop,
    batch: u32,
}

impl Dispatcher {
    pub fn new(shop: Shop) -> Self {
        Self { shop, batch: 256 }
    }

    /// Delivers up to one batch of pending events.
    pub async fn run_once(&self) -> Result<Outcome, ShopError> {
        let pending = outbox::pending(&self.shop.db, self.batch).await?;
        if pending.is_empty() {
            return Ok(Outcome::Idle);
        }
        let now = self.shop.now();
        for event in &pending {
            tracing::debug!(topic = %event.topic, event.id = %event.id, "delivering event");
            if events::CATALOG_TOPICS.contains(&event.topic.as_str()) {
                self.shop.catalog_version.bump();
            }
        }
        let delivered: Vec<_> = pending.iter().map(|e| (e.user_id, e.id)).collect();
        let mut tx = self.shop.db.begin().await?;
        outbox::mark_delivered(&mut tx, &delivered, now).await?;
        tx.commit().await?;
        Ok(Outcome::Worked(pending.len()))
    }
}

/// Watches the newest catalog event in the outbox (written by any node).
pub struct CatalogWatch {
    shop: Shop,
    last_seen: Option<uuid::Uuid>,
}

impl CatalogWatch {
    pub fn new(shop: Shop) -> Self {
        Self {
            shop,
            last_seen: None,
        }
    }

    pub async fn run_once(&mut self) -> Result<Outcome, ShopError> {
        let newest = outbox::newest_of_topics(&self.shop.db, events::CATALOG_TOPICS).await?;
        if newest != self.last_seen {
            if self.last_seen.is_some() {
                self.shop.catalog_version.bump();
            }
            self.last_seen = newest;
            return Ok(Outcome::Worked(1));
        }
        Ok(Outcome::Idle)
    }
}

/// This node's search upkeep.
pub struct SearchFeed {
    shop: Shop,
    feed: emporium_shop::search::feed::Feed,
    last_popular: std::time::Instant,
}

impl SearchFeed {
    /// How often suggestions pick up new past queries.
    const POPULAR_EVERY: Duration = Duration::from_secs(60);

    pub fn new(shop: Shop) -> Self {
        Self {
            shop,
            feed: Default::default(),
            last_popular: std::time::Instant::now(),
        }
    }

    pub async fn run_once(&mut self) -> Result<Outcome, ShopError> {
        let applied = self.feed.run_once(&self.shop).await?;
        let flushed = self.shop.search.analytics.flush(&self.shop).await?;
        if self.last_popular.elapsed() >= Self::POPULAR_EVERY {
            emporium_shop::search::analytics::refresh_popular(&self.shop).await?;
            self.last_popular = std::time::Instant::now();
        }
        Ok(if applied + flushed > 0 {
            Outcome::Worked(applied)
        } else {
            Outcome::Idle
        })
    }
}

/// Expires reservations and closes ended flash sales. It sleeps until the next deadline it
/// knows of (read from the database, so deadlines set by other nodes and overdue ones from
/// before a restart count too), and wakes early when this node's engine grants a
/// reservation that might expire sooner.
pub struct Reaper {
    shop: Shop,
}

impl Reaper {
    /// Most reservations released in one transaction.
    const BATCH: u32 = 500;
    /// Longest sleep: bounds how late a deadline set by another node can be noticed.
    const MAX_SLEEP: Duration = Duration::from_secs(30);

    pub fn new(shop: Shop) -> Self {
        Self { shop }
    }

    pub async fn run_once(&self) -> Result<Outcome, ShopError> {
        let expired =
            emporium_shop::inventory::reservations::expire_overdue(&self.shop, Self::BATCH).await?;
        let closed = emporium_shop::inventory::reservations::close_ended_sales(&self.shop).await?;
        Ok(if expired + closed > 0 {
            Outcome::Worked(expired + closed)
        } else {
            Outcome::Idle
        })
    }

    /// How long to sleep before the next deadline.
    pub async fn sleep_time(&self) -> Result<Duration, ShopError> {
        let next = emporium_shop::inventory::reservations::next_deadline(&self.shop).await?;
        Ok(match next {
            None => Self::MAX_SLEEP,
            Some(at) => (at - self.shop.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(Self::MAX_SLEEP),
        })
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.run_once().await {
                Ok(Outcome::Worked(n)) => {
                    tracing::info!(released = n, "reservations expired or sales closed");
                    continue;
                }
                Ok(Outcome::Idle) => {}
                Err(e) => tracing::warn!(error = format!("{e:#}"), "reaper step failed"),
            }
            let sleep = match self.sleep_time().await {
                Ok(d) => d,
                Err(_) => Duration::from_secs(1),
            };
            // A few milliseconds past the deadline, so the deadline has surely passed.
            let sleep = if sleep < Self::MAX_SLEEP {
                sleep + Duration::from_millis(5)
            } else {
                sleep
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.shop.engine.memory.deadline_changed.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Deletes expired idempotency keys, a batch per step. Every node runs it; concurrent
/// purges on PostgreSQL just find fewer rows.
pub struct KeyPurge {
    shop: Shop,
}

impl KeyPurge {
    /// Most keys deleted in one transaction, so a purge never holds the writer long.
    const BATCH: u32 = 1000;
    /// Keys outlive their retention by at most this much; nothing depends on it sooner.
    const INTERVAL: Duration = Duration::from_secs(60);

    pub fn new(shop: Shop) -> Self {
        Self { shop }
    }

    pub async fn run_once(&self) -> Result<Outcome, ShopError> {
        let purged = idempotency::purge_expired(&self.shop, Self::BATCH).await?;
        Ok(match usize::try_from(purged) {
            Ok(0) => Outcome::Idle,
            Ok(n) => Outcome::Worked(n),
            Err(_) => Outcome::Worked(usize::MAX),
        })
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.run_once().await {
                Ok(Outcome::Worked(n)) => {
                    tracing::debug!(purged = n, "expired idempotency keys deleted");
                    continue;
                }
                Ok(Outcome::Idle) => {}
                Err(e) => tracing::warn!(error = format!("{e:#}"), "key purge failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Self::INTERVAL) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Runs the node's background steps until `shutdown` turns true.
pub async fn run(shop: Shop, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(Reaper::new(shop.clone()).run(shutdown.clone()));
    tokio::spawn(payments::reconcile(shop.clone(), shutdown.clone()));
    tokio::spawn(KeyPurge::new(shop.clone()).run(shutdown.clone()));
    let dispatcher = Dispatcher::new(shop.clone());
    let mut search = SearchFeed::new(shop.clone());
    let mut watch = CatalogWatch::new(shop);
    // Short enough that other nodes' catalog writes show within a quarter second.
    let idle = Duration::from_millis(250);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let delivered = dispatcher.run_once().await;
        let watched = watch.run_once().await;
        let searched = search.run_once().await;
        for result in [&delivered, &watched, &searched] {
            if let Err(e) = result {
                tracing::warn!(error = format!("{e:#}"), "background step failed");
            }
        }
        if matches!(delivered, Ok(Outcome::Worked(_)))
            || matches!(searched, Ok(Outcome::Worked(n)) if n > 0)
        {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(idle) => {}
            _ = shutdown.changed() => {}
        }
    }
}
