//! What a search answers: hits with highlights, the total, facets and "did you mean".

use std::collections::BTreeMap;

use serde::Serialize;

use crate::collect::{Counts, PRICE_BOUNDS, RATING_STEPS};
use crate::document::ProductDoc;

#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub product: std::sync::Arc<ProductDoc>,
    /// The blended relevance score.
    pub score: f32,
    /// The locale of `title` and the highlights.
    pub locale: String,
    pub title: String,
    /// The title, HTML-escaped, matched words in `<em>`.
    pub title_html: String,
    /// A short part of the description around the first match, same markup.
    pub snippet_html: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ValueCount {
    pub value: String,
    pub count: u64,
}

/// A node of the category facet tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CategoryCount {
    /// Slugs from the root.
    pub path: String,
    pub count: u64,
    pub children: Vec<CategoryCount>,
}

/// Products priced in `[min_minor, max_minor)` (no upper bound for the last bucket).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PriceBucket {
    pub min_minor: u64,
    pub max_minor: Option<u64>,
    pub count: u64,
}

/// Products rated at least `min`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RatingBucket {
    pub min: f64,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Facets {
    pub categories: Vec<CategoryCount>,
    pub brands: Vec<ValueCount>,
    pub price: Vec<PriceBucket>,
    pub rating: Vec<RatingBucket>,
    pub attributes: BTreeMap<String, Vec<ValueCount>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SearchResults {
    pub total: u64,
    pub hits: Vec<Hit>,
    pub facets: Facets,
    pub did_you_mean: Option<String>,
    /// The offset of the next page, when there is one.
    pub next_offset: Option<usize>,
}

/// Most values listed per facet.
pub const MAX_FACET_VALUES: usize = 50;

impl Facets {
    pub fn from_counts(counts: Counts, minor_per_major: u64) -> Self {
        let mut attributes: BTreeMap<String, Vec<ValueCount>> = BTreeMap::new();
        for ((name, value), count) in counts.attributes {
            attributes
                .entry(name)
                .or_default()
                .push(ValueCount { value, count });
        }
        for values in attributes.values_mut() {
            sort_values(values);
        }
        let mut brands: Vec<ValueCount> = counts
            .brands
            .into_iter()
            .map(|(value, count)| ValueCount { value, count })
            .collect();
        sort_values(&mut brands);
        let price = counts
            .price
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| PriceBucket {
                min_minor: i
                    .checked_sub(1)
                    .map_or(0, |j| PRICE_BOUNDS[j] * minor_per_major),
                max_minor: PRICE_BOUNDS.get(i).map(|b| b * minor_per_major),
                count: *n,
            })
            .collect();
        let rating = RATING_STEPS
            .iter()
            .zip(counts.rating)
            .filter(|(_, n)| *n > 0)
            .map(|(min, count)| RatingBucket { min: *min, count })
            .collect();
        Self {
            categories: category_tree(counts.categories),
            brands,
            price,
            rating,
            attributes,
        }
    }
}

fn sort_values(values: &mut Vec<ValueCount>) {
    values.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
    values.truncate(MAX_FACET_VALUES);
}

/// Builds the tree from counts per path (every ancestor path has its own count).
fn category_tree(counts: std::collections::HashMap<String, u64>) -> Vec<CategoryCount> {
    let sorted: BTreeMap<String, u64> = counts.into_iter().collect();
    fn children(parent: &str, sorted: &BTreeMap<String, u64>, depth: usize) -> Vec<CategoryCount> {
        if depth > 16 {
            return Vec::new();
        }
        let mut out: Vec<CategoryCount> = sorted
            .iter()
            .filter(|(path, _)| match path.rsplit_once('/') {
                Some((p, _)) => p == parent,
                None => parent.is_empty(),
            })
            .map(|(path, count)| CategoryCount {
                path: path.clone(),
                count: *count,
                children: children(path, sorted, depth + 1),
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then(a.path.cmp(&b.path)));
        out
    }
    children("", &sorted, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_counts_become_a_tree() {
        let counts = [("a", 5), ("a/b", 3), ("a/c", 2), ("d", 1)]
            .into_iter()
            .map(|(p, n)| (p.to_owned(), n))
            .collect();
        let tree = category_tree(counts);
        assert_eq!(tree.len(), 2);
        assert_eq!(tree[0].path, "a");
        assert_eq!(tree[0].children.len(), 2);
        assert_eq!(tree[0].children[0].path, "a/b");
    }
}
