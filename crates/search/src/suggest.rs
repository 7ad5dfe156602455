//! Suggestions as the shopper types: completions from past queries and from the word list
//! (both in-memory FSTs), and the top products for the text so far.

use std::collections::BTreeMap;
use std::sync::Arc;

use fst::{Automaton, IntoStreamer, Streamer};
use serde::Serialize;

use crate::analysis;
use crate::cache::Cached;
use crate::index::{SearchError, SearchIndex};
use crate::search::SearchRequest;

/// Past queries scanned per suggestion.
const SCAN_LIMIT: usize = 2000;
/// Products suggested.
const PRODUCTS: usize = 5;

/// Past queries that found something, with how often they were searched.
#[derive(Default)]
pub struct PopularQueries {
    map: fst::Map<Vec<u8>>,
}

impl PopularQueries {
    pub fn new(queries: impl IntoIterator<Item = (String, u64)>) -> Self {
        let mut sorted: BTreeMap<String, u64> = BTreeMap::new();
        for (q, n) in queries {
            let normalized = analysis::words(&q).join(" ");
            if !normalized.is_empty() {
                *sorted.entry(normalized).or_default() += n;
            }
        }
        Self {
            map: fst::Map::from_iter(sorted).unwrap_or_default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn starting_with(&self, prefix: &str, limit: usize) -> Vec<(String, u64)> {
        let automaton = fst::automaton::Str::new(prefix).starts_with();
        let mut stream = self.map.search(automaton).into_stream();
        let mut out = Vec::new();
        while let Some((key, n)) = stream.next() {
            if let Ok(q) = std::str::from_utf8(key) {
                out.push((q.to_owned(), n));
            }
            if out.len() >= SCAN_LIMIT {
                break;
            }
        }
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(limit);
        out
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SuggestedProduct {
    pub id: String,
    pub slug: String,
    pub title: String,
    pub title_html: String,
    pub image: Option<String>,
    pub prices: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Suggestions {
    pub completions: Vec<String>,
    pub products: Vec<SuggestedProduct>,
}

impl SearchIndex {
    /// The suggestions for `text` if this snapshot already gave them (see `cached_search`).
    pub fn cached_suggest(
        &self,
        text: &str,
        locales: &[String],
        limit: usize,
    ) -> Option<Arc<Suggestions>> {
        let key = format!("s{}|{limit}|{locales:?}|{text}", self.snapshot().generation);
        match self.cache.get(&key) {
            Some(Cached::Suggest(hit)) => Some(hit),
            _ => None,
        }
    }

    pub fn suggest(
        &self,
        text: &str,
        locales: &[String],
        limit: usize,
    ) -> Result<Arc<Suggestions>, SearchError> {
        let snap = self.snapshot();
        let key = format!("s{}|{limit}|{locales:?}|{text}", snap.generation);
        if let Some(Cached::Suggest(hit)) = self.cache.get(&key) {
            return Ok(hit);
        }
        let words = analysis::words(text);
        let mut completions: Vec<String> = Vec::new();
        if let Some(last) = words.last() {
            let mut typed = words.join(" ");
            if text.ends_with(char::is_whitespace) {
                typed.push(' ');
            }
            let popular = self.popular.read().clone();
            for (q, _) in popular.starting_with(&typed, limit) {
                completions.push(q);
            }
            if !text.ends_with(char::is_whitespace) {
                let head = words[..words.len() - 1].join(" ");
                for (w, _) in snap.vocab.completions(last, limit) {
                    let candidate = if head.is_empty() {
                        w
                    } else {
                        format!("{head} {w}")
                    };
                    if !completions.contains(&candidate) {
                        completions.push(candidate);
                    }
                }
            }
            completions.truncate(limit);
        }
        let mut req = SearchRequest::text(text, PRODUCTS);
        req.locales = locales.to_vec();
        let found = self.search(&req)?;
        let products = found
            .hits
            .iter()
            .map(|h| SuggestedProduct {
                id: h.product.id.clone(),
                slug: h.product.slug.clone(),
                title: h.title.clone(),
                title_html: h.title_html.clone(),
                image: h.product.image.clone(),
                prices: h.product.prices.clone(),
            })
            .collect();
        let out = Arc::new(Suggestions {
            completions,
            products,
        });
        self.cache.put(key, Cached::Suggest(out.clone()));
        Ok(out)
    }
}
