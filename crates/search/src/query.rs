//! From the shopper's text to a tantivy query.
//!
//! The text is cut into normalized words (operators and quotes are just punctuation: no
//! query syntax reaches tantivy, so no input can make it fail). Each word gets its
//! *variants*: itself, its synonyms, completions when it is the last word, and known words
//! within its typo budget. Each variant is analyzed per field (stemmed per language, plain
//! for brand, categories, attributes and SKUs). The query is, per word, the best of its
//! variants as a constant "coverage" score, plus BM25 of every matched term; see `ranking`.

use std::collections::{BTreeMap, HashSet};

use tantivy::Term;
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, Occur, PhraseQuery, Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;

use crate::analysis::{self, Lang};
use crate::ranking::RankingConfig;
use crate::schema::Fields;
use crate::synonyms::Synonyms;
use crate::vocab::{Typos, Vocabulary};
use crate::word::word_query;

/// Words of a query beyond this are ignored.
pub const MAX_WORDS: usize = 12;

/// How a variant matches its query word, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    Exact,
    Synonym,
    Prefix,
    OneTypo,
    TwoTypos,
}

impl Tier {
    pub(crate) fn weight(self, r: &RankingConfig) -> f32 {
        match self {
            Tier::Exact => 1.0,
            Tier::Synonym => r.synonym,
            Tier::Prefix => r.prefix,
            Tier::OneTypo => r.one_typo,
            Tier::TwoTypos => r.two_typos,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Usually one word; a synonym may be a phrase, all of whose words must match.
    pub words: Vec<String>,
    pub tier: Tier,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedWord {
    pub word: String,
    pub variants: Vec<Variant>,
}

/// What a query means, before it meets the index's fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub words: Vec<PlannedWord>,
    /// The whole text when it could be a SKU code.
    pub sku: Option<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.sku.is_none()
    }
}

/// Everything planning reads.
pub struct Planner<'a> {
    pub vocab: &'a Vocabulary,
    pub typos: &'a Typos,
    pub synonyms: &'a Synonyms,
    pub ranking: &'a RankingConfig,
}

impl Planner<'_> {
    /// `prefix_last`: the shopper may still be typing the last word.
    pub fn plan(&self, text: &str, prefix_last: bool) -> Plan {
        let mut words = analysis::words(text);
        words.truncate(MAX_WORDS);
        let trimmed = text.trim();
        let sku = (!trimmed.is_empty()
            && trimmed.len() <= 64
            && !trimmed.contains(char::is_whitespace)
            && trimmed.contains(|c: char| c.is_ascii_digit()))
        .then(|| trimmed.to_lowercase());
        let mut planned: Vec<PlannedWord> = words
            .iter()
            .map(|w| PlannedWord {
                word: w.clone(),
                variants: vec![Variant {
                    words: vec![w.clone()],
                    tier: Tier::Exact,
                }],
            })
            .collect();
        self.add_synonyms(&words, &mut planned);
        let last = words.len().saturating_sub(1);
        for (i, p) in planned.iter_mut().enumerate() {
            if prefix_last && i == last && !text.ends_with(char::is_whitespace) {
                self.add_completions(p);
            }
            self.add_typos(p);
        }
        Plan {
            words: planned,
            sku,
        }
    }

    fn add_synonyms(&self, words: &[String], planned: &mut [PlannedWord]) {
        if self.synonyms.is_empty() {
            return;
        }
        for len in 1..=crate::synonyms::MAX_PHRASE_WORDS.min(words.len()) {
            for start in 0..=words.len() - len {
                for alt in self.synonyms.lookup(&words[start..start + len]) {
                    for p in &mut planned[start..start + len] {
                        push_variant(p, alt.clone(), Tier::Synonym);
                    }
                }
            }
        }
    }

    fn add_completions(&self, p: &mut PlannedWord) {
        if p.word.chars().count() < 2 {
            return;
        }
        for (word, _) in self
            .vocab
            .completions(&p.word, self.ranking.max_prefix_completions)
        {
            push_variant(p, vec![word], Tier::Prefix);
        }
    }

    fn add_typos(&self, p: &mut PlannedWord) {
        // Digits are measures and models: "2x4" is not a typo of "2x6".
        if p.word.contains(|c: char| c.is_ascii_digit())
            || self.vocab.count(&p.word) > self.ranking.typo_max_known_count
        {
            return;
        }
        let budget = self.ranking.max_typos(p.word.chars().count());
        let found = self.vocab.typos(
            self.typos,
            &p.word,
            budget,
            self.ranking.max_typo_candidates,
        );
        for (word, edits, _) in found.iter() {
            let tier = if *edits <= 1 {
                Tier::OneTypo
            } else {
                Tier::TwoTypos
            };
            push_variant(p, vec![word.clone()], tier);
        }
    }
}

fn push_variant(p: &mut PlannedWord, words: Vec<String>, tier: Tier) {
    if !p.variants.iter().any(|v| v.words == words) {
        p.variants.push(Variant { words, tier });
    }
}

/// The analyzers a query is built with (cloned per query: analyzers are stateful; cloning
/// shares their stop word lists, building them does not).
#[derive(Clone)]
pub struct Analyzers {
    lang: Vec<(Lang, TextAnalyzer)>,
    plain: TextAnalyzer,
}

impl Default for Analyzers {
    fn default() -> Self {
        Self {
            lang: Lang::ALL
                .into_iter()
                .map(|l| (l, analysis::language(l)))
                .collect(),
            plain: analysis::plain(),
        }
    }
}

/// The text fields that hold at least one term: a query leaves the others out (a product
/// in a language nobody translated into costs nothing but the lookups).
pub type LiveFields = HashSet<Field>;

impl Analyzers {
    /// The analyzer of a language's fields, or the plain one.
    pub fn of(&mut self, lang: Option<Lang>) -> &mut TextAnalyzer {
        match self.lang.iter_mut().find(|(l, _)| Some(*l) == lang) {
            Some((_, a)) => a,
            None => &mut self.plain,
        }
    }
}

/// Terms to highlight, per analyzer (a language code, or "plain").
pub type Highlights = BTreeMap<&'static str, HashSet<String>>;

/// A term to look for and how much it counts.
pub(crate) struct Hit {
    pub field: Field,
    pub term: String,
    pub primary: bool,
    pub boost: f32,
}

/// Which products a query matches.
#[derive(Debug, Clone, Copy)]
pub enum Matching<'a> {
    /// Every (non stop) word, through any of its variants.
    All,
    /// Any word; words marked common (per word of the plan) rank but do not match alone,
    /// unless every word is common. A word such as "x" or "white" is in a large share of
    /// the catalog: a union with it walks and counts most products, to rank them below
    /// those that also have a rarer word of the query.
    Any { common: &'a [bool] },
}

/// Turns a plan into a tantivy query; also returns the terms to highlight.
///
/// Searches try [`Matching::All`] and relax to [`Matching::Any`] when it finds too little:
/// all-words matching is an intersection, much cheaper than a union of every variant's
/// postings, and it is what shoppers expect of totals and facets.
pub fn build(
    plan: &Plan,
    fields: &Fields,
    live: &LiveFields,
    r: &RankingConfig,
    analyzers: &mut Analyzers,
    matching: Matching<'_>,
) -> (Box<dyn Query>, Highlights) {
    let mut highlights = Highlights::new();
    if plan.is_empty() {
        return (Box::new(AllQuery), highlights);
    }
    let mut rare: Vec<Box<dyn Query>> = Vec::new();
    let mut common: Vec<Box<dyn Query>> = Vec::new();
    for (i, word) in plan.words.iter().enumerate() {
        if is_stop_word(&word.word, analyzers) {
            continue;
        }
        if let Some(q) = word_query(word, fields, live, r, analyzers, &mut highlights) {
            match matching {
                Matching::Any { common: c } if c.get(i) == Some(&true) => common.push(q),
                _ => rare.push(q),
            }
        }
    }
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if rare.is_empty() {
        rare = std::mem::take(&mut common);
    }
    if !rare.is_empty() {
        let words: Box<dyn Query> = match matching {
            Matching::All => Box::new(BooleanQuery::intersection(rare)),
            Matching::Any { .. } if common.is_empty() => Box::new(BooleanQuery::union(rare)),
            Matching::Any { .. } => {
                let mut words = vec![(Occur::Must, union_of(rare))];
                words.extend(common.into_iter().map(|q| (Occur::Should, q)));
                Box::new(BooleanQuery::new(words))
            }
        };
        clauses.push((Occur::Should, words));
    }
    if let Some(q) = phrase_boost(plan, fields, r, analyzers) {
        clauses.push((Occur::Should, q));
    }
    if let Some(sku) = &plan.sku {
        clauses.push((
            Occur::Should,
            Box::new(ConstScoreQuery::new(
                Box::new(TermQuery::new(
                    Term::from_field_text(fields.sku, sku),
                    IndexRecordOption::Basic,
                )),
                r.word_weight * 3.0,
            )),
        ));
    }
    if clauses.is_empty() {
        // Only stop words: match nothing rather than everything.
        return (Box::new(tantivy::query::EmptyQuery), highlights);
    }
    (Box::new(BooleanQuery::new(clauses)), highlights)
}

fn union_of(mut queries: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    match queries.len() {
        1 => queries.remove(0),
        _ => Box::new(BooleanQuery::union(queries)),
    }
}

fn is_stop_word(word: &str, analyzers: &mut Analyzers) -> bool {
    analyzers
        .lang
        .iter_mut()
        .find(|(l, _)| *l == Lang::En)
        .is_some_and(|(_, a)| analysis::terms(a, word).is_empty())
}

/// The terms one word becomes in every text field.
pub(crate) fn hits_of(
    word: &str,
    fields: &Fields,
    live: &LiveFields,
    r: &RankingConfig,
    analyzers: &mut Analyzers,
    highlights: &mut Highlights,
) -> Vec<Hit> {
    let mut out = Vec::new();
    for (lang, analyzer) in &mut analyzers.lang {
        for term in analysis::terms(analyzer, word) {
            if let Some(field) = fields.title(*lang).filter(|f| live.contains(f)) {
                out.push(Hit {
                    field,
                    term: term.clone(),
                    primary: true,
                    boost: r.title_boost,
                });
            }
            if let Some(field) = fields.description(*lang).filter(|f| live.contains(f)) {
                out.push(Hit {
                    field,
                    term: term.clone(),
                    primary: false,
                    boost: r.description_boost,
                });
            }
            highlights.entry(lang.code()).or_default().insert(term);
        }
    }
    for term in analysis::terms(&mut analyzers.plain, word) {
        for field in [fields.meta, fields.other_text]
            .into_iter()
            .filter(|f| live.contains(f))
        {
            out.push(Hit {
                field,
                term: term.clone(),
                primary: true,
                boost: r.meta_boost,
            });
        }
        highlights.entry("plain").or_default().insert(term);
    }
    out
}

/// A multi-word synonym: every word must match one of its fields.
pub(crate) fn phrase_of(per_word: &[Vec<Hit>]) -> Box<dyn Query> {
    let musts = per_word
        .iter()
        .map(|hits| {
            let any: Vec<Box<dyn Query>> = hits
                .iter()
                .filter(|h| h.primary)
                .map(|h| {
                    Box::new(TermQuery::new(
                        Term::from_field_text(h.field, &h.term),
                        IndexRecordOption::Basic,
                    )) as Box<dyn Query>
                })
                .collect();
            Box::new(BooleanQuery::union(any)) as Box<dyn Query>
        })
        .collect();
    Box::new(BooleanQuery::intersection(musts))
}

/// The query's exact words next to each other in the English title.
fn phrase_boost(
    plan: &Plan,
    fields: &Fields,
    r: &RankingConfig,
    analyzers: &mut Analyzers,
) -> Option<Box<dyn Query>> {
    if r.phrase_boost <= 0.0 || plan.words.len() < 2 {
        return None;
    }
    let field = fields.title(Lang::En)?;
    let (_, en) = analyzers.lang.iter_mut().find(|(l, _)| *l == Lang::En)?;
    let terms: Vec<Term> = plan
        .words
        .iter()
        .flat_map(|w| analysis::terms(en, &w.word))
        .map(|t| Term::from_field_text(field, &t))
        .collect();
    (terms.len() >= 2).then(|| {
        let mut phrase = PhraseQuery::new(terms);
        phrase.set_slop(1);
        Box::new(ConstScoreQuery::new(Box::new(phrase), r.phrase_boost)) as Box<dyn Query>
    })
}
