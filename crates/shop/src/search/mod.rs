//! Product search: the shop's side of the search engine.
//!
//! Layout: `documents` (products as search sees them, from the database), `feed` (rebuild
//! and the outbox feed that keeps this node's index current), `synonyms` (admin rules),
//! `analytics` (query tallies, top and zero-result queries), `view` (what the API
//! answers). Searches run on the blocking pool: they are CPU work of a millisecond or more.

pub mod analytics;
pub mod documents;
pub mod feed;
pub mod synonyms;
pub mod view;

use std::collections::BTreeMap;
use std::sync::Arc;

use emporium_domain::Invalid;
use emporium_domain::catalog::Locale;
use emporium_domain::money::Currency;
use emporium_search::{Filters, SearchIndex, SearchRequest, Sort};
use parking_lot::{Mutex, RwLock};

pub use view::{SearchPage, SuggestPage};

use crate::{Shop, ShopError};

/// Longest accepted query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Deepest result reachable by paging.
pub const MAX_DEPTH: usize = 1_000;

/// This node's search: its index (attached at start) and analytics.
#[derive(Default)]
pub struct SearchService {
    index: RwLock<Option<Arc<SearchIndex>>>,
    pub analytics: analytics::Analytics,
    /// Category path → name, and slug → path, at a catalog version.
    categories: Mutex<Option<(u64, Arc<view::CategoryNames>)>>,
}

impl SearchService {
    pub fn attach(&self, index: Arc<SearchIndex>) {
        *self.index.write() = Some(index);
    }

    pub fn index(&self) -> Result<Arc<SearchIndex>, ShopError> {
        self.index
            .read()
            .clone()
            .ok_or_else(|| ShopError::internal(anyhow::anyhow!("no search index attached")))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SearchSort {
    #[default]
    Relevance,
    PriceAsc,
    PriceDesc,
    Rating,
    Newest,
    BestSelling,
}

impl SearchSort {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Ok(match raw {
            "relevance" => Self::Relevance,
            "price_asc" => Self::PriceAsc,
            "price_desc" => Self::PriceDesc,
            "rating" => Self::Rating,
            "newest" => Self::Newest,
            "best_selling" => Self::BestSelling,
            _ => {
                return Err(Invalid::new(
                    "sort",
                    "relevance, price_asc, price_desc, rating, newest or best_selling",
                ));
            }
        })
    }
}

/// A search as the API parsed it.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub text: String,
    /// A category slug or path.
    pub category: Option<String>,
    pub brands: Vec<String>,
    pub price_min: Option<u64>,
    pub price_max: Option<u64>,
    pub currency: Option<Currency>,
    pub rating_min: Option<f64>,
    pub in_stock: Option<bool>,
    pub attributes: BTreeMap<String, Vec<String>>,
    pub sort: SearchSort,
    pub offset: usize,
    pub limit: usize,
    pub locales: Vec<Locale>,
}

pub async fn search(shop: &Shop, q: SearchQuery) -> Result<SearchPage, ShopError> {
    if q.text.chars().count() > MAX_QUERY_CHARS {
        return Err(Invalid::new("q", "at most 200 characters").into());
    }
    if let (Some(min), Some(max)) = (q.price_min, q.price_max)
        && min > max
    {
        return Err(Invalid::new("price_min", "must not be above price_max").into());
    }
    if q.offset.saturating_add(q.limit) > MAX_DEPTH {
        return Err(Invalid::new("cursor", "results beyond the first 1000 are not paged").into());
    }
    let index = shop.search.index()?;
    let names = category_names(shop).await?;
    let category = match &q.category {
        None => None,
        Some(c) => Some(
            names
                .path_of(c)
                .ok_or_else(|| Invalid::new("category", "no category has this slug or path"))?,
        ),
    };
    let currency = q.currency.unwrap_or(Currency::GBP);
    let req = SearchRequest {
        text: q.text.clone(),
        filters: Filters {
            category,
            brands: q.brands,
            price_min: q.price_min,
            price_max: q.price_max,
            rating_min: q.rating_min,
            in_stock: q.in_stock,
            attributes: q.attributes,
            ids: None,
        },
        sort: match q.sort {
            SearchSort::Relevance => Sort::Relevance,
            SearchSort::PriceAsc => Sort::PriceAsc,
            SearchSort::PriceDesc => Sort::PriceDesc,
            SearchSort::Rating => Sort::Rating,
            SearchSort::Newest => Sort::Newest,
            SearchSort::BestSelling => Sort::BestSelling,
        },
        currency,
        offset: q.offset,
        limit: q.limit,
        locales: q.locales.iter().map(|l| l.as_str().to_owned()).collect(),
        facets: true,
    };
    // Repeated searches are answered from the snapshot's cache without a thread hand-off.
    let results = match index.cached_search(&req) {
        Some(hit) => hit,
        None => tokio::task::spawn_blocking(move || index.search(&req))
            .await?
            .map_err(ShopError::internal)?,
    };
    if q.offset == 0 {
        shop.search.analytics.record(&q.text, results.total);
    }
    Ok(view::page(&results, &names, currency))
}

/// Completions and top products shown for what the shopper typed.
const SUGGESTIONS: usize = 8;

/// Completions and top products for what the shopper typed so far.
pub async fn suggest(
    shop: &Shop,
    text: &str,
    locales: &[Locale],
) -> Result<SuggestPage, ShopError> {
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(Invalid::new("q", "at most 200 characters").into());
    }
    let index = shop.search.index()?;
    let text = text.to_owned();
    let locales: Vec<String> = locales.iter().map(|l| l.as_str().to_owned()).collect();
    let found = match index.cached_suggest(&text, &locales, SUGGESTIONS) {
        Some(hit) => hit,
        None => tokio::task::spawn_blocking(move || index.suggest(&text, &locales, SUGGESTIONS))
            .await?
            .map_err(ShopError::internal)?,
    };
    Ok(view::suggestions(&found))
}

async fn category_names(shop: &Shop) -> Result<Arc<view::CategoryNames>, ShopError> {
    let version = shop.catalog_version.get();
    if let Some((at, names)) = shop.search.categories.lock().as_ref()
        && *at == version
    {
        return Ok(names.clone());
    }
    let rows = emporium_store::catalog::list_categories(&shop.db).await?;
    let names = Arc::new(view::CategoryNames::new(rows));
    *shop.search.categories.lock() = Some((version, names.clone()));
    Ok(names)
}
