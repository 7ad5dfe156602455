//! Background work of a node, written as `run_once() -> Outcome` steps that tests call
//! directly and that `run` loops over until shutdown.
//!
//! - [`Dispatcher`] delivers outbox rows in id order and marks them delivered. Consumers
//!   (search indexing, notifications, webhooks) hook in here as they are built.
//! - [`CatalogWatch`] notices catalog writes made by any node sharing the database and moves
//!   this node's catalog version, so its read cache never serves a stale product for longer
//!   than one poll interval.

use std::time::Duration;

use emporium_shop::{Shop, ShopError, events};
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
        let mut tx = self.shop.db.begin().await?;
        for event in &pending {
            tracing::debug!(topic = %event.topic, event.id = %event.id, "delivering event");
            if events::CATALOG_TOPICS.contains(&event.topic.as_str()) {
                self.shop.catalog_version.bump();
            }
            outbox::mark_delivered(&mut tx, event.user_id, event.id, now).await?;
        }
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

/// Runs the node's background steps until `shutdown` turns true.
pub async fn run(shop: Shop, mut shutdown: watch::Receiver<bool>) {
    let dispatcher = Dispatcher::new(shop.clone());
    let mut watch = CatalogWatch::new(shop);
    // Short enough that other nodes' catalog writes show within a quarter second.
    let idle = Duration::from_millis(250);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let delivered = dispatcher.run_once().await;
        let watched = watch.run_once().await;
        for result in [&delivered, &watched] {
            if let Err(e) = result {
                tracing::warn!(error = format!("{e:#}"), "background step failed");
            }
        }
        if matches!(delivered, Ok(Outcome::Worked(_))) {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(idle) => {}
            _ = shutdown.changed() => {}
        }
    }
}
