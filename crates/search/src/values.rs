//! The values of the facet columns (brand, category, attributes) of every segment, by
//! ordinal, read once per snapshot.
//!
//! A column's dictionary is block-compressed: turning an ordinal into its string through it
//! decompresses a block, which made resolving the facet values of a search cost more than
//! the search. Segments never change, so their values are read in one stream when the
//! snapshot is taken and facet counting only indexes into these lists.

use std::ops::Range;
use std::sync::Arc;

use tantivy::columnar::StrColumn;
use tantivy::{Searcher, SegmentReader};

/// Values of one string column of one segment, in ordinal (byte) order.
#[derive(Debug, Default)]
pub struct ColumnValues {
    values: Vec<String>,
}

impl ColumnValues {
    fn read(column: Option<StrColumn>) -> tantivy::Result<Self> {
        let Some(column) = column else {
            return Ok(Self::default());
        };
        let dictionary = column.dictionary();
        let mut values = Vec::with_capacity(dictionary.num_terms());
        let mut stream = dictionary.stream()?;
        while stream.advance() {
            values.push(String::from_utf8_lossy(stream.key()).into_owned());
        }
        Ok(Self { values })
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value of an ordinal.
    pub fn get(&self, ord: u64) -> Option<&str> {
        self.values.get(ord as usize).map(String::as_str)
    }

    /// The ordinal of a value.
    pub fn ord(&self, value: &str) -> Option<u64> {
        self.values
            .binary_search_by(|v| v.as_str().cmp(value))
            .ok()
            .map(|i| i as u64)
    }

    /// Ordinals of the values that start with `prefix`.
    pub fn prefix_range(&self, prefix: &str) -> Range<u64> {
        let start = self.values.partition_point(|v| v.as_str() < prefix);
        let len = self.values[start..].partition_point(|v| v.starts_with(prefix));
        start as u64..(start + len) as u64
    }
}

/// The facet columns' values of one segment.
#[derive(Debug, Default)]
pub struct SegmentValues {
    pub brand: ColumnValues,
    pub category: ColumnValues,
    pub attrs: ColumnValues,
}

impl SegmentValues {
    pub(crate) fn read(reader: &SegmentReader) -> tantivy::Result<Self> {
        let ff = reader.fast_fields();
        Ok(Self {
            brand: ColumnValues::read(ff.str("brand")?)?,
            category: ColumnValues::read(ff.str("category")?)?,
            attrs: ColumnValues::read(ff.str("attrs")?)?,
        })
    }
}

/// Per segment ordinal of a searcher.
pub fn read_all(searcher: &Searcher) -> tantivy::Result<Vec<Arc<SegmentValues>>> {
    searcher
        .segment_readers()
        .iter()
        .map(|r| SegmentValues::read(r).map(Arc::new))
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
        };
        assert_eq!(values.ord("colour\u{1f}white"), Some(1));
        assert_eq!(values.ord("colour\u{1f}blue"), None);
        assert_eq!(values.prefix_range("colour\u{1f}"), 0..2);
        assert_eq!(values.prefix_range("weight\u{1f}"), 3..3);
        assert_eq!(values.get(2), Some("size\u{1f}l"));
    }
}
