//! Keeps this node's index in step with the database: a full rebuild when the index is new
//! (or of an older schema version), then the search topics of the outbox, read by this node
//! on its own (not through delivery), so every node's index replica sees every change.
//!
//! The index remembers the id of the last event it applied (in its commit). Event ids are
//! UUIDv7, ordered by the time they were written, but a transaction may commit a little
//! after a later one: each step also rereads the last [`LOOKBACK_MS`] before the cursor
//! and applies what it had not seen. Applying an event reloads its products from the
//! database, so applying one twice does no harm.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use emporium_search::SearchIndex;
use emporium_store::{outbox, search as store};
use uuid::Uuid;

use super::documents;
use crate::{Shop, ShopError, events};

/// How late a commit may land after its event id was taken and still be applied.
pub const LOOKBACK_MS: u128 = 2_000;
/// Products read from the database per rebuild step.
const REBUILD_PAGE: u32 = 1_000;
/// Events applied per step.
const BATCH: u32 = 512;

/// The cursor of an index built before any event existed.
const START: Uuid = Uuid::nil();

#[derive(Default)]
pub struct Feed {
    /// Events applied within the look-back window.
    applied: HashSet<Uuid>,
    started: bool,
}

impl Feed {
    /// One step: rebuild if needed, else apply new events. Returns what it applied.
    pub async fn run_once(&mut self, shop: &Shop) -> Result<usize, ShopError> {
        let index = shop.search.index()?;
        if !self.started {
            super::synonyms::reload(shop).await?;
            super::analytics::refresh_popular(shop).await?;
            self.started = true;
        }
        let Some(cursor) = index.cursor().and_then(|c| Uuid::try_parse(&c).ok()) else {
            return rebuild(shop).await;
        };
        let floor = Uuid::from_u128(((cursor.as_u128() >> 80).saturating_sub(LOOKBACK_MS)) << 80);
        let mut pending =
            outbox::after_of_topics(&shop.db, events::SEARCH_TOPICS, cursor, BATCH).await?;
        if cursor != START {
            let late = outbox::after_of_topics(&shop.db, events::SEARCH_TOPICS, floor, 4 * BATCH)
                .await?
                .into_iter()
                .filter(|e| e.id <= cursor && !self.applied.contains(&e.id));
            pending.extend(late);
        }
        if pending.is_empty() {
            return Ok(0);
        }
        let mut products: BTreeSet<Uuid> = BTreeSet::new();
        let mut variants: Vec<Uuid> = Vec::new();
        let mut synonyms = false;
        for event in &pending {
            let payload = &event.payload.0;
            let id_of = |key: &str| payload[key].as_str().and_then(|s| Uuid::try_parse(s).ok());
            if event.topic == events::SYNONYMS_CHANGED {
                synonyms = true;
            } else if let Some(p) = id_of("product_id") {
                products.insert(p);
            } else if let Some(v) = id_of("variant_id") {
                variants.push(v);
            }
        }
        products.extend(store::products_of_variants(&shop.db, &variants).await?);
        if synonyms {
            super::synonyms::reload(shop).await?;
        }
        let ids: Vec<Uuid> = products.into_iter().collect();
        let docs = documents::load(shop, store::products_by_ids(&shop.db, &ids).await?).await?;
        let newest = pending
            .iter()
            .map(|e| e.id)
            .max()
            .unwrap_or(cursor)
            .max(cursor);
        let applied = pending.len();
        write(index, ids, docs, newest).await?;
        self.applied.extend(pending.iter().map(|e| e.id));
        self.applied.retain(|id| *id > floor);
        tracing::debug!(events = applied, "search index updated");
        Ok(applied)
    }
}

/// Replaces the given products in the index (those without a document are removed) and
/// commits with the new cursor, off the async threads.
async fn write(
    index: Arc<SearchIndex>,
    ids: Vec<Uuid>,
    docs: Vec<emporium_search::ProductDoc>,
    cursor: Uuid,
) -> Result<(), ShopError> {
    tokio::task::spawn_blocking(move || {
        let kept: HashSet<&str> = docs.iter().map(|d| d.id.as_str()).collect();
        for id in &ids {
            let id = id.to_string();
            if !kept.contains(id.as_str()) {
                index.remove(&id);
            }
        }
        for doc in &docs {
            index.upsert(doc)?;
        }
        index.commit(Some(&cursor.to_string()))
    })
    .await?
    .map_err(ShopError::internal)
}

/// Rebuilds the index from the database: every active product. Returns how many.
pub async fn rebuild(shop: &Shop) -> Result<usize, ShopError> {
    let index = shop.search.index()?;
    let started = std::time::Instant::now();
    // Taken first: events written during the rebuild are applied again afterwards.
    let cursor = outbox::newest_id(&shop.db).await?.unwrap_or(START);
    index.clear().map_err(ShopError::internal)?;
    let mut after = None;
    let mut count = 0;
    loop {
        let rows = store::active_products_after(&shop.db, after, REBUILD_PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.id);
        let docs = documents::load(shop, rows).await?;
        count += docs.len();
        let index = index.clone();
        tokio::task::spawn_blocking(move || docs.iter().try_for_each(|d| index.upsert(d)))
            .await?
            .map_err(ShopError::internal)?;
    }
    let committing = index.clone();
    tokio::task::spawn_blocking(move || {
        committing.commit(Some(&cursor.to_string()))?;
        // Best effort: a rebuilt index is complete and searchable without it.
        if let Err(error) = committing.compact() {
            tracing::warn!(%error, "merging the rebuilt search index failed");
        }
        Ok::<_, emporium_search::SearchError>(())
    })
    .await?
    .map_err(ShopError::internal)?;
    tracing::info!(
        products = count,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "search index rebuilt"
    );
    Ok(count)
}
