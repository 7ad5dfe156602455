//! What the collector reads of every matching product, per segment, in plain arrays: the
//! facet columns (brand, category, attributes) as ordinals with their values, and the
//! business and sort signals (prices, rating, reviews, sales, stock, creation time).
//!
//! Tantivy's columns are compact but each read walks an optional index and a codec, and a
//! string column turns an ordinal into its value by decompressing a dictionary block: for a
//! broad query that is most of the cost of a search. Segments never change, so their values
//! are read once, when a snapshot first sees the segment, and reused by later snapshots
//! (about 60 bytes per product).

use std::ops::Range;
use std::sync::Arc;

use emporium_domain::money::Currency;
use tantivy::columnar::{Column, MonotonicallyMappableToU64, StrColumn};
use tantivy::index::SegmentId;
use tantivy::{DocId, Searcher, SegmentReader};

use crate::schema::price_column;

/// Marks a product without a price in a currency.
pub const NO_PRICE: u64 = u64::MAX;

/// One string column of one segment: its values in ordinal (byte) order and each
/// document's ordinals.
#[derive(Debug, Default)]
pub struct ColumnValues {
    values: Vec<String>,
    /// Document `d`'s ordinals are `ords[starts[d]..starts[d + 1]]`.
    starts: Vec<u32>,
    ords: Vec<u32>,
}

impl ColumnValues {
    fn read(column: Option<StrColumn>, max_doc: DocId) -> tantivy::Result<Self> {
        let Some(column) = column else {
            return Ok(Self {
                starts: vec![0; max_doc as usize + 1],
                ..Self::default()
            });
        };
        let dictionary = column.dictionary();
        let mut values = Vec::with_capacity(dictionary.num_terms());
        let mut stream = dictionary.stream()?;
        while stream.advance() {
            values.push(String::from_utf8_lossy(stream.key()).into_owned());
        }
        let mut starts = Vec::with_capacity(max_doc as usize + 1);
        let mut ords = Vec::with_capacity(max_doc as usize);
        starts.push(0);
        for doc in 0..max_doc {
            ords.extend(column.term_ords(doc).map(|o| o as u32));
            starts.push(ords.len() as u32);
        }
        Ok(Self {
            values,
            starts,
            ords,
        })
    }

    /// Distinct values in the segment.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value of an ordinal.
    pub fn get(&self, ord: u32) -> Option<&str> {
        self.values.get(ord as usize).map(String::as_str)
    }

    /// The ordinal of a value.
    pub fn ord(&self, value: &str) -> Option<u32> {
        self.values
            .binary_search_by(|v| v.as_str().cmp(value))
            .ok()
            .map(|i| i as u32)
    }

    /// Ordinals of the values that start with `prefix`.
    pub fn prefix_range(&self, prefix: &str) -> Range<u32> {
        let start = self.values.partition_point(|v| v.as_str() < prefix);
        let len = self.values[start..].partition_point(|v| v.starts_with(prefix));
        start as u32..(start + len) as u32
    }

    /// A document's ordinals.
    #[inline]
    pub fn of(&self, doc: DocId) -> &[u32] {
        let d = doc as usize;
        match (self.starts.get(d), self.starts.get(d + 1)) {
            (Some(&a), Some(&b)) => &self.ords[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// Everything the collector reads of one segment.
#[derive(Debug)]
pub struct SegmentValues {
    pub segment: SegmentId,
    pub brand: ColumnValues,
    pub category: ColumnValues,
    pub attrs: ColumnValues,
    /// Lowest prices per price column (by name), minor units, [`NO_PRICE`] when absent.
    pub prices: Vec<(String, Vec<u64>)>,
    pub rating: Vec<f64>,
    pub reviews: Vec<u64>,
    pub sales: Vec<u64>,
    pub in_stock: Vec<bool>,
    pub created: Vec<i64>,
    pub max_sales: u64,
}

fn read_column<T>(column: Option<Column<T>>, max_doc: DocId, missing: T) -> Vec<T>
where
    T: MonotonicallyMappableToU64 + PartialOrd + Copy + Send + Sync + 'static,
{
    match column {
        Some(c) => (0..max_doc)
            .map(|d| c.first(d).unwrap_or(missing))
            .collect(),
        None => vec![missing; max_doc as usize],
    }
}

impl SegmentValues {
    pub(crate) fn read(reader: &SegmentReader) -> tantivy::Result<Self> {
        let ff = reader.fast_fields();
        let n = reader.max_doc();
        let mut prices = Vec::new();
        for currency in Currency::known() {
            let name = price_column(currency);
            let column = ff.column_opt::<u64>(&name)?;
            prices.push((name, read_column(column, n, NO_PRICE)));
        }
        let sales = read_column(ff.column_opt::<u64>("sales")?, n, 0);
        Ok(Self {
            segment: reader.segment_id(),
            brand: ColumnValues::read(ff.str("brand")?, n)?,
            category: ColumnValues::read(ff.str("category")?, n)?,
            attrs: ColumnValues::read(ff.str("attrs")?, n)?,
            prices,
            rating: read_column(ff.column_opt::<f64>("rating")?, n, 0.0),
            reviews: read_column(ff.column_opt::<u64>("reviews")?, n, 0),
            max_sales: sales.iter().copied().max().unwrap_or(0),
            sales,
            in_stock: read_column(ff.column_opt::<u64>("in_stock")?, n, 0)
                .into_iter()
                .map(|v| v == 1)
                .collect(),
            created: read_column(ff.column_opt::<i64>("created")?, n, 0),
        })
    }
}

/// Per segment ordinal of a searcher; segments already read by `previous` are reused.
pub fn read_all(
    searcher: &Searcher,
    previous: &[Arc<SegmentValues>],
) -> tantivy::Result<Vec<Arc<SegmentValues>>> {
    searcher
        .segment_readers()
        .iter()
        .map(
            |r| match previous.iter().find(|v| v.segment == r.segment_id()) {
                Some(v) => Ok(v.clone()),
                None => SegmentValues::read(r).map(Arc::new),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_prefixes_and_values_agree() {
        let values = ColumnValues {
            values: ["colour\u{1f}red", "colour\u{1f}white", "size\u{1f}l"]
                .map(String::from)
                .to_vec(),
            starts: vec![0, 2, 2, 3],
            ords: vec![0, 2, 1],
        };
        assert_eq!(values.ord("colour\u{1f}white"), Some(1));
        assert_eq!(values.ord("colour\u{1f}blue"), None);
        assert_eq!(values.prefix_range("colour\u{1f}"), 0..2);
        assert_eq!(values.prefix_range("weight\u{1f}"), 3..3);
        assert_eq!(values.get(2), Some("size\u{1f}l"));
        assert_eq!(values.of(0), &[0, 2]);
        assert_eq!(values.of(1), &[] as &[u32]);
        assert_eq!(values.of(2), &[1]);
        assert_eq!(values.of(9), &[] as &[u32]);
    }
}
