//! What carts need to know of a variant (its product, seller, SKU, title, status and
//! prices), kept in memory for a moment instead of being queried at every cart step.
//!
//! A checkout journey asked for the same few variants four times (adding an item by SKU,
//! its price, the cart view, the checkout), each a query on a reader connection. Catalog
//! writes on this node clear the copy at once; another node's are seen within
//! [`VariantCache::TTL`], as with the pricing tables. A cart locks its unit prices, so a
//! price change seen a moment late never alters a cart within its lock either way.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use emporium_store::Db;
use emporium_store::carts::{self as store, SellableRow};
use uuid::Uuid;

use crate::ShopError;

/// A variant as carts see it.
#[derive(Debug)]
pub struct Variant {
    pub facts: SellableRow,
    /// (currency code, amount in minor units).
    pub prices: Vec<(String, i64)>,
}

#[derive(Default)]
pub struct VariantCache {
    slots: parking_lot::Mutex<Slots>,
    /// Bumped by every change: a read that started before it is not kept.
    generation: AtomicU64,
}

#[derive(Default)]
struct Slots {
    by_id: HashMap<Uuid, (Arc<Variant>, Instant)>,
    by_sku: HashMap<String, Uuid>,
}

impl VariantCache {
    /// How long another node's change may take to be seen here.
    pub const TTL: Duration = Duration::from_secs(1);

    /// At most this many variants are kept; past it the copy starts again empty. A cart
    /// journey touches a handful, so this only bounds memory against a crawl.
    pub const CAPACITY: usize = 50_000;

    /// The variants among `ids` that exist; unknown ids are left out.
    pub async fn get(
        &self,
        db: &Db,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Arc<Variant>>, ShopError> {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let slots = self.slots.lock();
            for id in ids {
                match slots.by_id.get(id) {
                    Some((v, at)) if at.elapsed() < Self::TTL => {
                        found.insert(*id, v.clone());
                    }
                    _ => missing.push(*id),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        missing.sort_unstable();
        missing.dedup();
        let generation = self.generation.load(Ordering::Acquire);
        let facts = store::sellable(db, &missing).await?;
        let mut prices: HashMap<Uuid, Vec<(String, i64)>> = HashMap::new();
        for (variant, currency, amount) in store::prices(db, &missing).await? {
            prices.entry(variant).or_default().push((currency, amount));
        }
        let read: Vec<Arc<Variant>> = facts
            .into_iter()
            .map(|facts| {
                let prices = prices.remove(&facts.variant_id).unwrap_or_default();
                Arc::new(Variant { facts, prices })
            })
            .collect();
        self.keep(&read, generation);
        found.extend(read.into_iter().map(|v| (v.facts.variant_id, v)));
        Ok(found)
    }

    /// The variant with this SKU, if there is one.
    pub async fn by_sku(&self, db: &Db, sku: &str) -> Result<Option<Arc<Variant>>, ShopError> {
        let known = self.slots.lock().by_sku.get(sku).copied();
        if let Some(id) = known {
            if let Some(v) = self.get(db, &[id]).await?.remove(&id)
                && v.facts.sku == sku
            {
                return Ok(Some(v));
            }
            // The SKU moved to another variant since it was remembered.
            self.slots.lock().by_sku.remove(sku);
        }
        let Some(facts) = store::sellable_by_sku(db, sku).await? else {
            return Ok(None);
        };
        let id = facts.variant_id;
        Ok(self.get(db, &[id]).await?.remove(&id))
    }

    /// Forgets the copy after a catalog change committed on this node.
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let mut slots = self.slots.lock();
        slots.by_id.clear();
        slots.by_sku.clear();
    }

    fn keep(&self, read: &[Arc<Variant>], generation: u64) {
        let mut slots = self.slots.lock();
        // Checked under the lock: a change that cleared the copy after the read began wins.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if slots.by_id.len() + read.len() > Self::CAPACITY {
            slots.by_id.clear();
            slots.by_sku.clear();
        }
        let now = Instant::now();
        for v in read {
            slots.by_sku.insert(v.facts.sku.clone(), v.facts.variant_id);
            slots.by_id.insert(v.facts.variant_id, (v.clone(), now));
        }
    }
}
