//! Search analytics: each search adds to an in-memory tally (a map update under a short
//! lock, nothing on the request's path touches the database); the worker flushes the tally
//! in one transaction about every second. Admins read the most searched and the zero-result
//! queries; suggestions complete from the most searched queries that found something.

use std::collections::HashMap;

use emporium_search::{PopularQueries, analysis};
use emporium_store::search::{self as store, QueryStatsRow, QueryTally};
use parking_lot::Mutex;
use serde::Serialize;

use crate::identity::Actor;
use crate::{Shop, ShopError};

/// Distinct queries kept between flushes; beyond, new queries are dropped (a flood of
/// random queries must not grow memory without bound).
const MAX_PENDING: usize = 50_000;
/// Past queries suggestions complete from.
const POPULAR: u32 = 20_000;
/// Longest query recorded, in characters.
const MAX_CHARS: usize = 200;

#[derive(Default)]
pub struct Analytics {
    pending: Mutex<HashMap<String, QueryTally>>,
}

impl Analytics {
    /// Counts one search of `text` that found `results` products.
    pub fn record(&self, text: &str, results: u64) {
        let query: String = analysis::words(text)
            .join(" ")
            .chars()
            .take(MAX_CHARS)
            .collect();
        if query.is_empty() {
            return;
        }
        let results = i64::try_from(results).unwrap_or(i64::MAX);
        let mut pending = self.pending.lock();
        if pending.len() >= MAX_PENDING && !pending.contains_key(&query) {
            return;
        }
        let tally = pending.entry(query.clone()).or_insert(QueryTally {
            query,
            searches: 0,
            zero_results: 0,
            last_results: 0,
        });
        tally.searches += 1;
        tally.zero_results += i64::from(results == 0);
        tally.last_results = results;
    }

    /// Writes the tally to the database; returns how many queries it held.
    pub async fn flush(&self, shop: &Shop) -> Result<usize, ShopError> {
        let batch: Vec<QueryTally> = std::mem::take(&mut *self.pending.lock())
            .into_values()
            .collect();
        if batch.is_empty() {
            return Ok(0);
        }
        let mut tx = shop.db.begin().await?;
        store::record_queries(&mut tx, &batch, shop.now()).await?;
        tx.commit().await?;
        Ok(batch.len())
    }
}

/// Reloads the past queries suggestions complete from.
pub async fn refresh_popular(shop: &Shop) -> Result<(), ShopError> {
    let rows = store::popular_queries(&shop.db, POPULAR).await?;
    let popular = PopularQueries::new(
        rows.into_iter()
            .map(|(q, n)| (q, u64::try_from(n).unwrap_or(0))),
    );
    shop.search.index()?.set_popular_queries(popular);
    Ok(())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueryStats {
    pub query: String,
    pub searches: i64,
    pub zero_results: i64,
    pub last_results: i64,
    pub last_searched_at: chrono::DateTime<chrono::Utc>,
}

/// Which queries an admin asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryReport {
    Top,
    ZeroResults,
}

pub async fn report(
    shop: &Shop,
    actor: &Actor,
    which: QueryReport,
    limit: u32,
) -> Result<Vec<QueryStats>, ShopError> {
    if !actor.is_admin() {
        return Err(ShopError::Forbidden(
            "forbidden",
            "only admins read search analytics",
        ));
    }
    let rows = match which {
        QueryReport::Top => store::top_queries(&shop.db, limit).await?,
        QueryReport::ZeroResults => store::zero_result_queries(&shop.db, limit).await?,
    };
    Ok(rows
        .into_iter()
        .map(|r: QueryStatsRow| QueryStats {
            query: r.query,
            searches: r.searches,
            zero_results: r.zero_results,
            last_results: r.last_results,
            last_searched_at: r.last_searched_at,
        })
        .collect())
}
