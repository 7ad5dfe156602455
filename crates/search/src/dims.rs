//! The filter and facet dimensions of one segment's search: which ordinals a filter
//! accepts, and the counts per ordinal a facet collects.

use std::collections::HashMap;

use tantivy::columnar::StrColumn;
use tantivy::{DocId, SegmentReader};

use crate::values::ColumnValues;

/// The product ids a search is limited to (the evaluation's rerank protocol), read from the
/// column's dictionary: rare, so not worth keeping in memory.
pub(crate) struct IdFilter {
    column: StrColumn,
    accepted: Vec<u64>,
}

impl IdFilter {
    pub(crate) fn open(reader: &SegmentReader, ids: &[String]) -> tantivy::Result<Self> {
        let column = reader
            .fast_fields()
            .str("id")?
            .ok_or_else(|| tantivy::TantivyError::FieldNotFound("id".into()))?;
        let mut accepted = Vec::new();
        for id in ids {
            accepted.extend(column.dictionary().term_ord(id)?);
        }
        Ok(Self { column, accepted })
    }

    pub(crate) fn passes(&self, doc: DocId) -> bool {
        self.column
            .term_ords(doc)
            .any(|o| self.accepted.contains(&o))
    }
}

/// One string facet dimension of a segment: the accepted ordinals when filtered, and the
/// counts per ordinal.
pub(crate) struct StrDim {
    accepted: Option<Vec<u32>>,
    counts: Vec<u32>,
    /// Ordinals with a count, in first-seen order: harvesting walks these, not every value
    /// of the segment (thousands of brands for a search that found ten products).
    touched: Vec<u32>,
}

impl StrDim {
    pub(crate) fn new(column: &ColumnValues, wanted: &[String], facets: bool) -> Self {
        let accepted =
            (!wanted.is_empty()).then(|| wanted.iter().filter_map(|w| column.ord(w)).collect());
        Self {
            accepted,
            counts: if facets {
                vec![0; column.len()]
            } else {
                Vec::new()
            },
            touched: Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn count(&mut self, ord: u32) {
        if let Some(n) = self.counts.get_mut(ord as usize) {
            if *n == 0 {
                self.touched.push(ord);
            }
            *n += 1;
        }
    }

    #[inline]
    pub(crate) fn passes(&self, ords: &[u32]) -> bool {
        match &self.accepted {
            None => true,
            Some(accepted) => ords.iter().any(|o| accepted.contains(o)),
        }
    }

    /// Resolves the most frequent values to strings (a broad query can touch thousands of
    /// brands).
    pub(crate) fn harvest(
        &self,
        column: &ColumnValues,
        out: &mut HashMap<String, u64>,
        keep: usize,
    ) {
        let mut nonzero: Vec<(u32, u32)> = self
            .touched
            .iter()
            .map(|&ord| (ord, self.counts[ord as usize]))
            .collect();
        if nonzero.len() > keep {
            nonzero.select_nth_unstable_by(keep, |a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            nonzero.truncate(keep);
        }
        for (ord, n) in nonzero {
            let value = column.get(ord).unwrap_or_default();
            match out.get_mut(value) {
                Some(count) => *count += u64::from(n),
                None => {
                    out.insert(value.to_owned(), u64::from(n));
                }
            }
        }
    }
}
