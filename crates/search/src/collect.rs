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
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::ranking::RankingConfig;
pub use crate::request::{
    ATTR_SHIFT, BRAND, CATEGORY, Collected, Counts, Entry, Filters, MAX_ATTR_FILTERS, PRICE,
    PRICE_BOUNDS, RATING, RATING_STEPS, Sort,
};
use crate::schema::ATTR_SEP;
use crate::values::{ColumnValues, SegmentValues};

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

/// Picks one column's values out of a segment's.
type Pick = fn(&SegmentValues) -> &ColumnValues;

/// A string column and, when filtered, the accepted ordinals.
struct StrDim {
    column: StrColumn,
    accepted: Option<Vec<u64>>,
    counts: Vec<u64>,
    /// The column's values read with the snapshot; `None`: ask the dictionary.
    values: Option<(Arc<SegmentValues>, Pick)>,
}

impl StrDim {
    fn open(
        reader: &SegmentReader,
        name: &str,
        wanted: &[String],
        facets: bool,
        values: Option<(Arc<SegmentValues>, Pick)>,
    ) -> tantivy::Result<Option<Self>> {
        let Some(column) = reader.fast_fields().str(name)? else {
            return Ok(None);
        };
        let accepted = if wanted.is_empty() {
            None
        } else {
            let mut ords = Vec::new();
            for w in wanted {
                let ord = match &values {
                    Some((v, pick)) => pick(v).ord(w),
                    None => column.dictionary().term_ord(w)?,
                };
                ords.extend(ord);
            }
            Some(ords)
        };
        let counts = if facets {
            vec![0; column.dictionary().num_terms()]
        } else {
            Vec::new()
        };
        Ok(Some(Self {
            column,
            accepted,
            counts,
            values,
        }))
    }

    fn passes(&self, doc: DocId) -> bool {
        match &self.accepted {
            None => true,
            Some(ords) => self.column.term_ords(doc).any(|o| ords.contains(&o)),
        }
    }

    /// Resolves the most frequent values to strings (a broad query can touch thousands of
    /// brands).
    fn harvest(&self, out: &mut HashMap<String, u64>, keep: usize) -> tantivy::Result<()> {
        let mut nonzero: Vec<(u64, u64)> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(ord, n)| (ord as u64, *n))
            .collect();
        if nonzero.len() > keep {
            nonzero.select_nth_unstable_by(keep, |a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            nonzero.truncate(keep);
        }
        nonzero.sort_unstable();
        let mut s = String::new();
        for (ord, n) in nonzero {
            let value = match &self.values {
                Some((v, pick)) => pick(v).get(ord).unwrap_or_default(),
                None => {
                    self.column.ord_to_str(ord, &mut s)?;
                    &s
                }
            };
            match out.get_mut(value) {
                Some(count) => *count += n,
                None => {
                    out.insert(value.to_owned(), n);
                }
            }
        }
        Ok(())
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
    ids: Option<StrDim>,
    category: Option<StrDim>,
    /// Filtered with an absent column: nothing passes.
    category_missing: bool,
    brand: Option<StrDim>,
    brand_missing: bool,
    attrs: Option<StrDim>,
    /// Per attribute filter: accepted ordinals and the ordinal range of the attribute.
    attr_filters: Vec<(Vec<u64>, std::ops::Range<u64>)>,
    price: Option<Column<u64>>,
    rating: Option<Column<f64>>,
    reviews: Option<Column<u64>>,
    sales: Option<Column<u64>>,
    in_stock: Option<Column<u64>>,
    created: Option<Column<i64>>,
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
        let ff = reader.fast_fields();
        let ids = match &f.ids {
            Some(ids) => Some(
                StrDim::open(reader, "id", ids, false, None)?
                    .ok_or_else(|| tantivy::TantivyError::FieldNotFound("id".into()))?,
            ),
            None => None,
        };
        let category_wanted: Vec<String> = f.category.iter().cloned().collect();
        // Read here when the snapshot did not (a collector used on another searcher).
        let values = match c.values.get(segment_ord as usize) {
            Some(v) => v.clone(),
            None => Arc::new(SegmentValues::read(reader)?),
        };
        let with = |pick: Pick| Some((values.clone(), pick));
        let category = StrDim::open(
            reader,
            "category",
            &category_wanted,
            c.facets,
            with(|v| &v.category),
        )?;
        let brand = StrDim::open(reader, "brand", &f.brands, c.facets, with(|v| &v.brand))?;
        let attr_values: Vec<String> = f
            .attributes
            .iter()
            .take(MAX_ATTR_FILTERS)
            .flat_map(|(name, values)| values.iter().map(move |v| format!("{name}{ATTR_SEP}{v}")))
            .collect();
        let attrs = StrDim::open(reader, "attrs", &attr_values, c.facets, with(|v| &v.attrs))?;
        let mut attr_filters = Vec::new();
        for (name, wanted) in f.attributes.iter().take(MAX_ATTR_FILTERS) {
            let prefix = format!("{name}{ATTR_SEP}");
            let accepted = wanted
                .iter()
                .filter_map(|w| values.attrs.ord(&format!("{prefix}{w}")))
                .collect();
            attr_filters.push((accepted, values.attrs.prefix_range(&prefix)));
        }
        let sales = ff.column_opt::<u64>("sales")?;
        let max_sales = sales.as_ref().map_or(0, |c| c.max_value());
        let max_business = c
            .ranking
            .business(true, 5.0, u64::MAX / 2, max_sales)
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
            category_missing: category.is_none() && f.category.is_some(),
            category,
            brand_missing: brand.is_none() && !f.brands.is_empty(),
            brand,
            attrs,
            attr_filters,
            price: ff.column_opt::<u64>(&c.price_column)?,
            rating: ff.column_opt::<f64>("rating")?,
            reviews: ff.column_opt::<u64>("reviews")?,
            sales,
            in_stock: ff.column_opt::<u64>("in_stock")?,
            created: ff.column_opt::<i64>("created")?,
            total: 0,
            max_business,
            heap: BinaryHeap::with_capacity(c.k + 1),
            price_counts: Default::default(),
            rating_counts: Default::default(),
        })
    }

    /// Which filter dimensions the document fails (bits), or `None` when a hard filter
    /// (stock, ids) excludes it.
    fn failed(&self, doc: DocId, price: Option<u64>, rating: f64) -> Option<u64> {
        if let Some(want) = self.in_stock_filter {
            let have = self
                .in_stock
                .as_ref()
                .and_then(|c| c.first(doc))
                .unwrap_or(0)
                == 1;
            if have != want {
                return None;
            }
        }
        if self.ids.as_ref().is_some_and(|d| !d.passes(doc)) {
            return None;
        }
        let mut mask = 0;
        if self.category_missing || self.category.as_ref().is_some_and(|d| !d.passes(doc)) {
            mask |= CATEGORY;
        }
        if self.brand_missing || self.brand.as_ref().is_some_and(|d| !d.passes(doc)) {
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
        for (i, (accepted, _)) in self.attr_filters.iter().enumerate() {
            let ok = self
                .attrs
                .as_ref()
                .is_some_and(|d| d.column.term_ords(doc).any(|o| accepted.contains(&o)));
            if !ok {
                mask |= 1 << (ATTR_SHIFT + i);
            }
        }
        Some(mask)
    }

    fn count_facets(&mut self, doc: DocId, mask: u64, price: Option<u64>, rating: f64) {
        let only = |bit: u64| mask & !bit == 0;
        if only(CATEGORY)
            && let Some(d) = &mut self.category
        {
            for o in d.column.term_ords(doc) {
                d.counts[o as usize] += 1;
            }
        }
        if only(BRAND)
            && let Some(d) = &mut self.brand
        {
            for o in d.column.term_ords(doc) {
                d.counts[o as usize] += 1;
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
        if let Some(d) = &mut self.attrs {
            for o in d.column.term_ords(doc) {
                let bit = self
                    .attr_filters
                    .iter()
                    .position(|(_, range)| range.contains(&o))
                    .map_or(0, |i| 1 << (ATTR_SHIFT + i));
                if mask & !bit == 0 {
                    d.counts[o as usize] += 1;
                }
            }
        }
    }

    fn primary(
        &self,
        doc: DocId,
        price: Option<u64>,
        rating: f64,
        reviews: u64,
        sales: u64,
    ) -> f64 {
        match self.sort {
            Sort::Relevance => 0.0,
            Sort::PriceAsc => price.map_or(f64::NEG_INFINITY, |p| -(p as f64)),
            Sort::PriceDesc => price.map_or(f64::NEG_INFINITY, |p| p as f64),
            Sort::Rating => self.ranking.bayes_rating(rating, reviews),
            Sort::Newest => self
                .created
                .as_ref()
                .and_then(|c| c.first(doc))
                .unwrap_or(0) as f64,
            Sort::BestSelling => sales as f64,
        }
    }
}

impl SegmentCollector for SegmentSearch {
    type Fruit = Collected;

    fn collect(&mut self, doc: DocId, text_score: Score) {
        let price = self.price.as_ref().and_then(|c| c.first(doc));
        let rating = self
            .rating
            .as_ref()
            .and_then(|c| c.first(doc))
            .unwrap_or(0.0);
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
        let reviews = self
            .reviews
            .as_ref()
            .and_then(|c| c.first(doc))
            .unwrap_or(0);
        let sales = self.sales.as_ref().and_then(|c| c.first(doc)).unwrap_or(0);
        let in_stock = self
            .in_stock
            .as_ref()
            .and_then(|c| c.first(doc))
            .unwrap_or(0)
            == 1;
        let score = text_score + self.ranking.business(in_stock, rating, reviews, sales);
        let entry = Entry {
            primary: self.primary(doc, price, rating, reviews, sales),
            score,
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
        // A dictionary read cannot fail on an index that just served the segment; should it,
        // the facet is left out rather than failing the search.
        // Per segment, the values a facet can show (attributes share one column).
        let keep = crate::results::MAX_FACET_VALUES * 2;
        for (dim, out, keep) in [
            (&self.category, &mut counts.categories, 10 * keep),
            (&self.brand, &mut counts.brands, keep),
            (&self.attrs, &mut attrs, 10 * keep),
        ] {
            if let Some(d) = dim
                && let Err(e) = d.harvest(out, keep)
            {
                tracing::warn!(error = %e, "facet values unreadable");
            }
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
