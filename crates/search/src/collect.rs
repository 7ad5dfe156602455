//! One pass over the documents that match the text: filters, disjunctive facet counts,
//! the business blend and the top k by the requested sort.
//!
//! Disjunctive faceting: a document that fails exactly one filter dimension still counts in
//! that dimension's facet, so selecting a brand keeps the other brands' counts. Documents
//! failing two or more dimensions count nowhere.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::dims::{IdFilter, StrDim};
use crate::ranking::RankingConfig;
pub use crate::request::{
    ATTR_SHIFT, BRAND, CATEGORY, Collected, Counts, Entry, Filters, MAX_ATTR_FILTERS, PRICE,
    PRICE_BOUNDS, RATING, RATING_STEPS, Sort,
};
use crate::schema::ATTR_SEP;
use crate::values::{NO_PRICE, SegmentValues};

pub struct SearchCollector<'a> {
    pub filters: &'a Filters,
    pub sort: Sort,
    pub k: usize,
    pub price_column: String,
    /// Minor units per major unit of the search's currency.
    pub minor_per_major: u64,
    pub ranking: &'a RankingConfig,
    pub facets: bool,
    /// The facet columns' values per segment ordinal (see `values`).
    pub values: &'a [Arc<SegmentValues>],
}

impl Collector for SearchCollector<'_> {
    type Fruit = Collected;
    type Child = SegmentSearch;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentSearch> {
        SegmentSearch::new(self, segment_ord, reader)
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Collected>) -> tantivy::Result<Collected> {
        let mut out = Collected::default();
        for f in fruits {
            out.total += f.total;
            out.top.extend(f.top);
            for (k, v) in f.counts.categories {
                *out.counts.categories.entry(k).or_default() += v;
            }
            for (k, v) in f.counts.brands {
                *out.counts.brands.entry(k).or_default() += v;
            }
            for (k, v) in f.counts.attributes {
                *out.counts.attributes.entry(k).or_default() += v;
            }
            for (a, b) in out.counts.price.iter_mut().zip(f.counts.price) {
                *a += b;
            }
            for (a, b) in out.counts.rating.iter_mut().zip(f.counts.rating) {
                *a += b;
            }
        }
        out.top.sort_by(|a, b| b.cmp(a));
        out.top.truncate(self.k);
        Ok(out)
    }
}

pub struct SegmentSearch {
    segment_ord: SegmentOrdinal,
    sort: Sort,
    k: usize,
    ranking: RankingConfig,
    facets: bool,
    minor_per_major: u64,
    price_filter: Option<(u64, u64)>,
    rating_min: Option<f64>,
    in_stock_filter: Option<bool>,
    ids: Option<IdFilter>,
    v: Arc<SegmentValues>,
    /// Where the search currency's prices are in `v.prices`.
    price_at: Option<usize>,
    category: StrDim,
    brand: StrDim,
    attrs: StrDim,
    /// Per attribute filter: accepted ordinals and the ordinal range of the attribute.
    attr_filters: Vec<(Vec<u32>, std::ops::Range<u32>)>,
    total: u64,
    /// The largest business part any document of the segment can have.
    max_business: f32,
    heap: BinaryHeap<Reverse<Entry>>,
    price_counts: [u64; PRICE_BOUNDS.len() + 1],
    rating_counts: [u64; RATING_STEPS.len()],
}

impl SegmentSearch {
    fn new(
        c: &SearchCollector<'_>,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Self> {
        let f = c.filters;
        let ids = match &f.ids {
            Some(ids) => Some(IdFilter::open(reader, ids)?),
            None => None,
        };
        // Read here when the snapshot did not (a collector used on another searcher).
        let v = match c.values.get(segment_ord as usize) {
            Some(v) if v.segment == reader.segment_id() => v.clone(),
            _ => Arc::new(SegmentValues::read(reader)?),
        };
        let category_wanted: Vec<String> = f.category.iter().cloned().collect();
        let attr_values: Vec<String> = f
            .attributes
            .iter()
            .take(MAX_ATTR_FILTERS)
            .flat_map(|(name, values)| values.iter().map(move |v| format!("{name}{ATTR_SEP}{v}")))
            .collect();
        let mut attr_filters = Vec::new();
        for (name, wanted) in f.attributes.iter().take(MAX_ATTR_FILTERS) {
            let prefix = format!("{name}{ATTR_SEP}");
            let accepted = wanted
                .iter()
                .filter_map(|w| v.attrs.ord(&format!("{prefix}{w}")))
                .collect();
            attr_filters.push((accepted, v.attrs.prefix_range(&prefix)));
        }
        let max_business = c
            .ranking
            .business(true, 5.0, u64::MAX / 2, v.max_sales)
            .max(0.0);
        let price_filter = (f.price_min.is_some() || f.price_max.is_some())
            .then(|| (f.price_min.unwrap_or(0), f.price_max.unwrap_or(u64::MAX)));
        Ok(Self {
            segment_ord,
            sort: c.sort,
            k: c.k,
            ranking: c.ranking.clone(),
            facets: c.facets,
            minor_per_major: c.minor_per_major.max(1),
            price_filter,
            rating_min: f.rating_min,
            in_stock_filter: f.in_stock,
            ids,
            category: StrDim::new(&v.category, &category_wanted, c.facets),
            brand: StrDim::new(&v.brand, &f.brands, c.facets),
            attrs: StrDim::new(&v.attrs, &attr_values, c.facets),
            price_at: v
                .prices
                .iter()
                .position(|(name, _)| *name == c.price_column),
            v,
            attr_filters,
            total: 0,
            max_business,
            heap: BinaryHeap::with_capacity(c.k + 1),
            price_counts: Default::default(),
            rating_counts: Default::default(),
        })
    }

    #[inline]
    fn price(&self, doc: DocId) -> Option<u64> {
        let p = self.v.prices.get(self.price_at?)?.1[doc as usize];
        (p != NO_PRICE).then_some(p)
    }

    /// Which filter dimensions the document fails (bits), or `None` when a hard filter
    /// (stock, ids) excludes it.
    #[inline]
    fn failed(&self, doc: DocId, price: Option<u64>, rating: f64) -> Option<u64> {
        if let Some(want) = self.in_stock_filter
            && self.v.in_stock[doc as usize] != want
        {
            return None;
        }
        if self.ids.as_ref().is_some_and(|d| !d.passes(doc)) {
            return None;
        }
        let mut mask = 0;
        if !self.category.passes(self.v.category.of(doc)) {
            mask |= CATEGORY;
        }
        if !self.brand.passes(self.v.brand.of(doc)) {
            mask |= BRAND;
        }
        if let Some((lo, hi)) = self.price_filter
            && !price.is_some_and(|p| p >= lo && p <= hi)
        {
            mask |= PRICE;
        }
        if self.rating_min.is_some_and(|min| rating < min) {
            mask |= RATING;
        }
        if !self.attr_filters.is_empty() {
            let ords = self.v.attrs.of(doc);
            for (i, (accepted, _)) in self.attr_filters.iter().enumerate() {
                if !ords.iter().any(|o| accepted.contains(o)) {
                    mask |= 1 << (ATTR_SHIFT + i);
                }
            }
        }
        Some(mask)
    }

    fn count_facets(&mut self, doc: DocId, mask: u64, price: Option<u64>, rating: f64) {
        let only = |bit: u64| mask & !bit == 0;
        if only(CATEGORY) {
            for o in self.v.category.of(doc) {
                self.category.count(*o);
            }
        }
        if only(BRAND) {
            for o in self.v.brand.of(doc) {
                self.brand.count(*o);
            }
        }
        if only(PRICE)
            && let Some(p) = price
        {
            let major = p / self.minor_per_major;
            let bucket = PRICE_BOUNDS
                .iter()
                .position(|b| major < *b)
                .unwrap_or(PRICE_BOUNDS.len());
            self.price_counts[bucket] += 1;
        }
        if only(RATING) {
            for (i, step) in RATING_STEPS.iter().enumerate() {
                if rating >= *step {
                    self.rating_counts[i] += 1;
                }
            }
        }
        for o in self.v.attrs.of(doc) {
            let bit = if self.attr_filters.is_empty() {
                0
            } else {
                self.attr_filters
                    .iter()
                    .position(|(_, range)| range.contains(o))
                    .map_or(0, |i| 1 << (ATTR_SHIFT + i))
            };
            if mask & !bit == 0 {
                self.attrs.count(*o);
            }
        }
    }

    fn primary(&self, doc: DocId, price: Option<u64>, rating: f64) -> f64 {
        let d = doc as usize;
        match self.sort {
            Sort::Relevance => 0.0,
            Sort::PriceAsc => price.map_or(f64::NEG_INFINITY, |p| -(p as f64)),
            Sort::PriceDesc => price.map_or(f64::NEG_INFINITY, |p| p as f64),
            Sort::Rating => self.ranking.bayes_rating(rating, self.v.reviews[d]),
            Sort::Newest => self.v.created[d] as f64,
            Sort::BestSelling => self.v.sales[d] as f64,
        }
    }
}

impl SegmentCollector for SegmentSearch {
    type Fruit = Collected;

    fn collect(&mut self, doc: DocId, text_score: Score) {
        let d = doc as usize;
        let price = self.price(doc);
        let rating = self.v.rating[d];
        let Some(mask) = self.failed(doc, price, rating) else {
            return;
        };
        if self.facets {
            self.count_facets(doc, mask, price, rating);
        }
        if mask != 0 {
            return;
        }
        self.total += 1;
        // Relevance order: a document whose text score cannot reach the heap even with the
        // best business signals of the segment is not scored further.
        if self.sort == Sort::Relevance
            && self.heap.len() >= self.k
            && self
                .heap
                .peek()
                .is_some_and(|Reverse(worst)| text_score + self.max_business < worst.score)
        {
            return;
        }
        let business = self.ranking.business(
            self.v.in_stock[d],
            rating,
            self.v.reviews[d],
            self.v.sales[d],
        );
        let entry = Entry {
            primary: self.primary(doc, price, rating),
            score: text_score + business,
            address: DocAddress::new(self.segment_ord, doc),
        };
        if self.heap.len() < self.k {
            self.heap.push(Reverse(entry));
        } else if self
            .heap
            .peek()
            .is_some_and(|Reverse(worst)| entry > *worst)
        {
            self.heap.pop();
            self.heap.push(Reverse(entry));
        }
    }

    fn harvest(self) -> Collected {
        let mut counts = Counts {
            price: self.price_counts,
            rating: self.rating_counts,
            ..Counts::default()
        };
        let mut attrs = HashMap::new();
        // Per segment, the values a facet can show (attributes share one column).
        let keep = crate::results::MAX_FACET_VALUES * 2;
        if self.facets {
            self.category
                .harvest(&self.v.category, &mut counts.categories, 10 * keep);
            self.brand.harvest(&self.v.brand, &mut counts.brands, keep);
            self.attrs.harvest(&self.v.attrs, &mut attrs, 10 * keep);
        }
        counts.attributes = attrs
            .into_iter()
            .filter_map(|(k, v)| {
                let (name, value) = k.split_once(ATTR_SEP)?;
                Some(((name.to_owned(), value.to_owned()), v))
            })
            .collect();
        Collected {
            total: self.total,
            top: self.heap.into_iter().map(|Reverse(e)| e).collect(),
            counts,
        }
    }
}
