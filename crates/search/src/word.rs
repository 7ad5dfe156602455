//! One query word as one tantivy query: every term its variants become, in every field,
//! walked once.
//!
//! A word's score (see `ranking`) is the sum of its terms' boosted BM25 plus its coverage:
//! the best coverage of the terms that match. Written with tantivy's own queries that is a
//! union of BM25 term queries plus a max over unions of the same terms again (for coverage),
//! so every posting list was opened and walked twice, and opening posting lists was the
//! largest part of a search. Here each term is opened once, terms absent from a segment are
//! dropped before matching, and the union is a plain minimum over the remaining few.

use std::collections::HashSet;

use tantivy::query::{
    ConstScoreQuery, EmptyScorer, EnableScoring, Explanation, Query, Scorer, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, Term};

use crate::query::{Analyzers, Highlights, Hit, LiveFields, PlannedWord, Tier, hits_of, phrase_of};
use crate::ranking::RankingConfig;
use crate::schema::Fields;

/// One word: each of its terms once, at the best tier it is reached by (see `word`).
pub(crate) fn word_query(
    word: &PlannedWord,
    fields: &Fields,
    live: &LiveFields,
    r: &RankingConfig,
    analyzers: &mut Analyzers,
    highlights: &mut Highlights,
) -> Option<Box<dyn Query>> {
    let mut seen: HashSet<(Field, String)> = HashSet::new();
    let mut parts = Vec::new();
    for tier in [
        Tier::Exact,
        Tier::Synonym,
        Tier::Prefix,
        Tier::OneTypo,
        Tier::TwoTypos,
    ] {
        let weight = tier.weight(r);
        for variant in word.variants.iter().filter(|v| v.tier == tier) {
            let per_word: Vec<Vec<Hit>> = variant
                .words
                .iter()
                .map(|w| hits_of(w, fields, live, r, analyzers, highlights))
                .collect();
            let [hits] = per_word.as_slice() else {
                // A multi-word synonym: coverage only.
                parts.push(Part {
                    query: Box::new(ConstScoreQuery::new(phrase_of(&per_word), 0.0)),
                    boost: 1.0,
                    coverage: r.word_weight * weight,
                });
                continue;
            };
            for h in hits {
                if !seen.insert((h.field, h.term.clone())) {
                    continue;
                }
                let share = if h.primary { 1.0 } else { r.description_word };
                parts.push(Part {
                    query: Box::new(TermQuery::new(
                        Term::from_field_text(h.field, &h.term),
                        IndexRecordOption::WithFreqs,
                    )),
                    boost: h.boost * weight,
                    coverage: r.word_weight * weight * share,
                });
            }
        }
    }
    (!parts.is_empty()).then(|| Box::new(WordQuery { parts }) as Box<dyn Query>)
}

/// A part of a word: a term query (or a multi-word synonym, scored 0) with its BM25 boost
/// and the coverage a match gives.
#[derive(Debug)]
pub struct Part {
    pub query: Box<dyn Query>,
    pub boost: Score,
    pub coverage: Score,
}

#[derive(Debug)]
pub struct WordQuery {
    pub parts: Vec<Part>,
}

impl Clone for Part {
    fn clone(&self) -> Self {
        Self {
            query: self.query.box_clone(),
            boost: self.boost,
            coverage: self.coverage,
        }
    }
}

impl Clone for WordQuery {
    fn clone(&self) -> Self {
        Self {
            parts: self.parts.clone(),
        }
    }
}

impl Query for WordQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let parts = self
            .parts
            .iter()
            .map(|p| Ok((p.query.weight(enable_scoring)?, p.boost, p.coverage)))
            .collect::<tantivy::Result<Vec<_>>>()?;
        Ok(Box::new(WordWeight { parts }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for p in &self.parts {
            p.query.query_terms(visitor);
        }
    }
}

struct WordWeight {
    parts: Vec<(Box<dyn Weight>, Score, Score)>,
}

impl Weight for WordWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut subs = Vec::with_capacity(self.parts.len());
        for (weight, part_boost, coverage) in &self.parts {
            let scorer = weight.scorer(reader, boost * part_boost)?;
            if scorer.doc() != TERMINATED {
                subs.push((scorer, coverage * boost));
            }
        }
        if subs.is_empty() {
            return Ok(Box::new(EmptyScorer));
        }
        let mut scorer = WordScorer { subs, doc: 0 };
        scorer.doc = scorer.first();
        Ok(Box::new(scorer))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )));
        }
        Ok(Explanation::new(
            "word: BM25 of its terms + best coverage",
            scorer.score(),
        ))
    }
}

/// The union of a word's term scorers (a handful once absent terms are dropped).
struct WordScorer {
    subs: Vec<(Box<dyn Scorer>, Score)>,
    doc: DocId,
}

impl WordScorer {
    fn first(&self) -> DocId {
        self.subs
            .iter()
            .map(|(s, _)| s.doc())
            .min()
            .unwrap_or(TERMINATED)
    }
}

impl DocSet for WordScorer {
    fn advance(&mut self) -> DocId {
        let current = self.doc;
        self.subs.retain_mut(|(s, _)| {
            if s.doc() == current {
                s.advance();
            }
            s.doc() != TERMINATED
        });
        self.doc = self.first();
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        self.subs.retain_mut(|(s, _)| {
            if s.doc() < target {
                s.seek(target);
            }
            s.doc() != TERMINATED
        });
        self.doc = self.first();
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.subs
            .iter()
            .map(|(s, _)| s.size_hint())
            .fold(0u32, u32::saturating_add)
    }
}

impl Scorer for WordScorer {
    fn score(&mut self) -> Score {
        let doc = self.doc;
        let mut bm25 = 0.0;
        let mut coverage: Score = 0.0;
        for (s, c) in &mut self.subs {
            if s.doc() == doc {
                bm25 += s.score();
                coverage = coverage.max(*c);
            }
        }
        bm25 + coverage
    }
}
