//! Answers of recent searches and suggestions, dropped on every commit. Shoppers repeat
//! queries (and facet clicks repeat a query with filters), so this saves the text match and
//! the facet pass for most requests.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::results::SearchResults;
use crate::suggest::Suggestions;

/// Entries kept before the cache starts over: bounded memory without LRU bookkeeping.
const CAPACITY: usize = 20_000;

#[derive(Clone)]
pub enum Cached {
    Search(Arc<SearchResults>),
    Suggest(Arc<Suggestions>),
}

#[derive(Default)]
pub struct ResultCache {
    entries: Mutex<HashMap<String, Cached>>,
}

impl ResultCache {
    pub fn get(&self, key: &str) -> Option<Cached> {
        self.entries.lock().get(key).cloned()
    }

    pub fn put(&self, key: String, value: Cached) {
        let mut entries = self.entries.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, value);
    }

    pub fn clear(&self) {
        self.entries.lock().clear();
    }
}
