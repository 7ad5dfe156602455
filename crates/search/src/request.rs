//! What a search asks for (filters, sort) and what the collector hands back (top entries,
//! facet counts).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use tantivy::DocAddress;

/// Filters of a search. Within a dimension values are alternatives (brand a OR b); across
/// dimensions all must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// A category path; products of its descendants are included.
    pub category: Option<String>,
    pub brands: Vec<String>,
    /// Minor units of the search's currency, inclusive.
    pub price_min: Option<u64>,
    pub price_max: Option<u64>,
    pub rating_min: Option<f64>,
    pub in_stock: Option<bool>,
    /// Attribute name → accepted values.
    pub attributes: BTreeMap<String, Vec<String>>,
    /// Only these product ids (evaluation reranks judged products with it).
    pub ids: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Sort {
    #[default]
    Relevance,
    PriceAsc,
    PriceDesc,
    Rating,
    Newest,
    BestSelling,
}

/// Upper bounds of price buckets in major units; the last bucket is open.
pub const PRICE_BOUNDS: [u64; 7] = [10, 25, 50, 100, 250, 500, 1000];
/// Rating facet: products rated at least this.
pub const RATING_STEPS: [f64; 4] = [4.0, 3.0, 2.0, 1.0];

pub const CATEGORY: u64 = 1;
pub const BRAND: u64 = 2;
pub const PRICE: u64 = 4;
pub const RATING: u64 = 8;
pub const ATTR_SHIFT: usize = 4;
/// Most attribute filters in one search (the rest of the mask bits).
pub const MAX_ATTR_FILTERS: usize = 16;

#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The sort value; larger is better.
    pub primary: f64,
    /// The blended relevance score.
    pub score: f32,
    pub address: DocAddress,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Better entries are greater; earlier documents win ties, so results are stable.
    fn cmp(&self, other: &Self) -> Ordering {
        self.primary
            .total_cmp(&other.primary)
            .then(self.score.total_cmp(&other.score))
            .then(other.address.segment_ord.cmp(&self.address.segment_ord))
            .then(other.address.doc_id.cmp(&self.address.doc_id))
    }
}

/// Facet counts by value.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub categories: HashMap<String, u64>,
    pub brands: HashMap<String, u64>,
    pub attributes: HashMap<(String, String), u64>,
    pub price: [u64; PRICE_BOUNDS.len() + 1],
    pub rating: [u64; RATING_STEPS.len()],
}

#[derive(Debug, Clone, Default)]
pub struct Collected {
    pub total: u64,
    /// Best first.
    pub top: Vec<Entry>,
    pub counts: Counts,
}
