//! The judgments file: `id, product_uid, product_title, search_term, relevance`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use super::EvalError;

/// One query with its judged products and their grades (1 to 3).
#[derive(Debug, Clone)]
pub struct Judged {
    pub text: String,
    pub judged: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Default)]
pub struct EvalData {
    /// Product id → title (the first title of a product seen twice).
    pub titles: BTreeMap<String, String>,
    /// In order of first appearance.
    pub queries: Vec<Judged>,
    /// Every word of every title (tantivy's default tokenization): a query with a word
    /// outside it is "misspelled".
    title_words: HashSet<String>,
}

impl EvalData {
    pub fn read(path: &Path) -> Result<Self, EvalError> {
        let mut reader = csv::Reader::from_path(path)?;
        let mut data = EvalData::default();
        let mut by_query: BTreeMap<String, usize> = BTreeMap::new();
        for record in reader.records() {
            let record = record?;
            let field = |i: usize| record.get(i).unwrap_or_default();
            let (uid, title, query) = (field(1), field(2), field(3));
            let grade: f64 = field(4)
                .parse()
                .map_err(|_| EvalError::Row(format!("relevance {:?}", field(4))))?;
            data.titles
                .entry(uid.to_owned())
                .or_insert_with(|| title.to_owned());
            let at = *by_query.entry(query.to_owned()).or_insert_with(|| {
                data.queries.push(Judged {
                    text: query.to_owned(),
                    judged: Vec::new(),
                });
                data.queries.len() - 1
            });
            data.queries[at].judged.push((uid.to_owned(), grade));
        }
        data.title_words = data.titles.values().flat_map(|t| tokens(t)).collect();
        Ok(data)
    }

    pub fn is_misspelled(&self, query: &str) -> bool {
        tokens(query).iter().any(|w| !self.title_words.contains(w))
    }
}

/// tantivy's default tokenization: alphanumeric runs, lowercased.
fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}
