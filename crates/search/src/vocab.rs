//! The word list of the index: every unstemmed word of titles, brands, categories and
//! attributes with the number of products that contain it. Typo candidates, prefix
//! completions and "did you mean" come from here, in memory, never from tantivy.
//!
//! Rebuilt after every commit from the term dictionaries of the `words` field (counts of
//! deleted products linger until segments merge; a stale word only costs a useless
//! candidate).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use fst::{Automaton, IntoStreamer, Streamer};
use levenshtein_automata::{DFA, Distance, LevenshteinAutomatonBuilder, SINK_STATE};
use parking_lot::Mutex;
use tantivy::Searcher;
use tantivy::schema::Field;

/// Prefixes up to this many bytes have their best completions precomputed: their ranges in
/// the word list are too long to scan per keystroke.
const SHORT_PREFIX: usize = 2;
/// Longest range of the word list scanned for completions of a longer prefix.
const SCAN_LIMIT: usize = 4000;
const PRECOMPUTED: usize = 10;
/// Typo lists remembered before the memo starts over.
const TYPO_MEMO: usize = 50_000;

/// A word's typo candidates: (word, edits, count).
type Candidates = Arc<Vec<(String, u8, u64)>>;

#[derive(Default)]
pub struct Vocabulary {
    map: fst::Map<Vec<u8>>,
    short: HashMap<Vec<u8>, Vec<(String, u64)>>,
    /// Typo candidates already looked up, by (word, edits, limit). Shoppers' queries share
    /// most of their words, and building a two-edit automaton for a word costs more than the
    /// rest of planning; the memo lives as long as this word list.
    memo: Mutex<HashMap<(String, u8, usize), Candidates>>,
}

/// Levenshtein automaton builders for one and two edits (transpositions count as one),
/// built once: building them is the expensive part.
pub struct Typos {
    one: LevenshteinAutomatonBuilder,
    two: LevenshteinAutomatonBuilder,
}

impl Default for Typos {
    fn default() -> Self {
        Self {
            one: LevenshteinAutomatonBuilder::new(1, true),
            two: LevenshteinAutomatonBuilder::new(2, true),
        }
    }
}

struct Dfa<'a>(&'a DFA);

impl Automaton for Dfa<'_> {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(self.0.distance(*state), Distance::Exact(_))
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.transition(*state, byte)
    }
}

impl Vocabulary {
    /// Merges the `words` term dictionaries of every segment.
    pub fn build(searcher: &Searcher, field: Field) -> tantivy::Result<Self> {
        let mut counts: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(field)?;
            let mut stream = inverted.terms().stream()?;
            while stream.advance() {
                *counts.entry(stream.key().to_vec()).or_default() +=
                    u64::from(stream.value().doc_freq);
            }
        }
        Ok(Self::from_sorted(counts))
    }

    pub fn from_sorted(counts: BTreeMap<Vec<u8>, u64>) -> Self {
        let mut short: HashMap<Vec<u8>, Vec<(String, u64)>> = HashMap::new();
        for (word, count) in &counts {
            let Ok(text) = std::str::from_utf8(word) else {
                continue;
            };
            for len in 1..=SHORT_PREFIX.min(word.len()) {
                let list = short.entry(word[..len].to_vec()).or_default();
                list.push((text.to_owned(), *count));
                if list.len() > PRECOMPUTED * 4 {
                    keep_best(list, PRECOMPUTED);
                }
            }
        }
        for list in short.values_mut() {
            keep_best(list, PRECOMPUTED);
        }
        let map = fst::Map::from_iter(counts).unwrap_or_default();
        Self {
            map,
            short,
            memo: Mutex::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// How many products contain the word (0: unknown).
    pub fn count(&self, word: &str) -> u64 {
        self.map.get(word).unwrap_or(0)
    }

    /// Known words within `max_edits` of `word` (not the word itself): (word, edits, count),
    /// fewest edits first, then most frequent.
    pub fn typos(&self, typos: &Typos, word: &str, max_edits: u8, limit: usize) -> Candidates {
        let key = (word.to_owned(), max_edits, limit);
        if let Some(found) = self.memo.lock().get(&key) {
            return found.clone();
        }
        let found = Arc::new(self.find_typos(typos, word, max_edits, limit));
        let mut memo = self.memo.lock();
        if memo.len() >= TYPO_MEMO {
            memo.clear();
        }
        memo.insert(key, found.clone());
        found
    }

    fn find_typos(
        &self,
        typos: &Typos,
        word: &str,
        max_edits: u8,
        limit: usize,
    ) -> Vec<(String, u8, u64)> {
        let builder = match max_edits {
            0 => return Vec::new(),
            1 => &typos.one,
            _ => &typos.two,
        };
        let dfa = builder.build_dfa(word);
        let mut stream = self.map.search(Dfa(&dfa)).into_stream();
        let mut out = Vec::new();
        while let Some((key, count)) = stream.next() {
            if key == word.as_bytes() {
                continue;
            }
            if let (Ok(text), Distance::Exact(d)) = (std::str::from_utf8(key), dfa.eval(key)) {
                out.push((text.to_owned(), d, count));
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
        out.truncate(limit);
        out
    }

    /// Known words that start with `prefix`, most frequent first.
    pub fn completions(&self, prefix: &str, limit: usize) -> Vec<(String, u64)> {
        if prefix.is_empty() {
            return Vec::new();
        }
        if prefix.len() <= SHORT_PREFIX {
            let mut list = self
                .short
                .get(prefix.as_bytes())
                .cloned()
                .unwrap_or_default();
            list.truncate(limit);
            return list;
        }
        let automaton = fst::automaton::Str::new(prefix).starts_with();
        let mut stream = self.map.search(automaton).into_stream();
        let mut out = Vec::new();
        while let Some((key, count)) = stream.next() {
            if let Ok(text) = std::str::from_utf8(key) {
                out.push((text.to_owned(), count));
            }
            if out.len() >= SCAN_LIMIT {
                break;
            }
        }
        keep_best(&mut out, limit);
        out
    }
}

fn keep_best(list: &mut Vec<(String, u64)>, n: usize) {
    list.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(a.0.len().cmp(&b.0.len()))
            .then(a.0.cmp(&b.0))
    });
    list.truncate(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(words: &[(&str, u64)]) -> Vocabulary {
        Vocabulary::from_sorted(
            words
                .iter()
                .map(|(w, c)| (w.as_bytes().to_vec(), *c))
                .collect(),
        )
    }

    #[test]
    fn typos_come_fewest_edits_first() {
        let v = vocab(&[
            ("toilet", 50),
            ("toilets", 5),
            ("tablet", 9),
            ("outlet", 20),
        ]);
        let found = v.typos(&Typos::default(), "toliet", 2, 10);
        assert_eq!(found[0].0, "toilet");
        assert_eq!(found[0].1, 1, "a transposition is one edit");
    }

    #[test]
    fn remembered_typos_answer_like_fresh_ones() {
        let v = vocab(&[("toilet", 50), ("tablet", 9), ("outlet", 20)]);
        let typos = Typos::default();
        let first = v.typos(&typos, "toliet", 2, 10);
        let again = v.typos(&typos, "toliet", 2, 10);
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second lookup is remembered"
        );
        assert_eq!(*first, v.find_typos(&typos, "toliet", 2, 10));
        // The budget and the limit are part of what is remembered.
        assert_eq!(v.typos(&typos, "toliet", 2, 1).len(), 1);
        assert!(v.typos(&typos, "toliet", 1, 10).iter().all(|t| t.1 <= 1));
    }

    #[test]
    fn completions_prefer_frequent_words() {
        let v = vocab(&[("drill", 40), ("drip", 3), ("drive", 10), ("dryer", 12)]);
        let c: Vec<String> = v
            .completions("dri", 2)
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        assert_eq!(c, ["drill", "drive"]);
        let c: Vec<String> = v.completions("d", 1).into_iter().map(|(w, _)| w).collect();
        assert_eq!(c, ["drill"]);
    }
}
