//! Running a search: plan, query, one collector pass, hits with highlights, facets and
//! "did you mean", cached per snapshot generation.

use std::sync::Arc;

use emporium_domain::money::Currency;
use tantivy::TantivyDocument;
use tantivy::schema::Value;

use crate::analysis::{self, Lang};
use crate::cache::Cached;
use crate::collect::{Entry, Filters, SearchCollector, Sort};
use crate::document::ProductDoc;
use crate::index::{SearchError, SearchIndex, Snapshot};
use crate::query::{self, Analyzers, Highlights, Matching, Planner};
use crate::results::{Facets, Hit, SearchResults};
use crate::schema::price_column;
use crate::snippet::highlight;

/// Characters of description shown around the first match.
const SNIPPET_CHARS: usize = 160;

#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub text: String,
    pub filters: Filters,
    pub sort: Sort,
    pub currency: Currency,
    pub offset: usize,
    pub limit: usize,
    /// Wanted locales of titles and snippets, best first.
    pub locales: Vec<String>,
    /// Count facets (the evaluation and suggestions do not need them).
    pub facets: bool,
}

impl SearchRequest {
    pub fn text(text: &str, limit: usize) -> Self {
        Self {
            text: text.to_owned(),
            filters: Filters::default(),
            sort: Sort::Relevance,
            currency: Currency::GBP,
            offset: 0,
            limit,
            locales: Vec::new(),
            facets: false,
        }
    }
}

impl SearchIndex {
    /// The answer to `req` if this snapshot already gave it: cheap enough for an async
    /// thread, so callers can skip handing the search to a blocking thread.
    pub fn cached_search(&self, req: &SearchRequest) -> Option<Arc<SearchResults>> {
        let key = format!("q{}|{req:?}", self.snapshot().generation);
        match self.cache.get(&key) {
            Some(Cached::Search(hit)) => Some(hit),
            _ => None,
        }
    }

    pub fn search(&self, req: &SearchRequest) -> Result<Arc<SearchResults>, SearchError> {
        let snap = self.snapshot();
        let key = format!("q{}|{req:?}", snap.generation);
        if let Some(Cached::Search(hit)) = self.cache.get(&key) {
            return Ok(hit);
        }
        let results = Arc::new(self.run(&snap, req)?);
        self.cache.put(key, Cached::Search(results.clone()));
        Ok(results)
    }

    fn run(&self, snap: &Snapshot, req: &SearchRequest) -> Result<SearchResults, SearchError> {
        let synonyms = self.synonyms.read().clone();
        let planner = Planner {
            vocab: &snap.vocab,
            typos: &self.typos,
            synonyms: &synonyms,
            ranking: &self.ranking,
        };
        let plan = planner.plan(&req.text, true);
        let mut analyzers = self.analyzers.clone();
        let minor_per_major = 10u64.pow(u32::from(req.currency.exponent()));
        let k = req.offset.saturating_add(req.limit);
        let collector = SearchCollector {
            filters: &req.filters,
            sort: req.sort,
            k,
            price_column: price_column(req.currency),
            minor_per_major,
            ranking: &self.ranking,
            facets: req.facets,
            values: &snap.values,
        };
        let (query, highlights) = query::build(
            &plan,
            &self.fields,
            &snap.live,
            &self.ranking,
            &mut analyzers,
            Matching::All,
        );
        let mut collected = snap.searcher.search(query.as_ref(), &collector)?;
        if collected.total < self.ranking.relax_below && plan.words.len() > 1 {
            let common = self.common_words(snap, &plan);
            let (any, _) = query::build(
                &plan,
                &self.fields,
                &snap.live,
                &self.ranking,
                &mut analyzers,
                Matching::Any { common: &common },
            );
            collected = snap.searcher.search(any.as_ref(), &collector)?;
        }
        let hits = collected
            .top
            .iter()
            .skip(req.offset)
            .map(|e| self.hit(snap, e, &highlights, &req.locales, &mut analyzers))
            .collect::<Result<Vec<_>, _>>()?;
        let did_you_mean = if collected.total < self.ranking.did_you_mean_below {
            self.did_you_mean(snap, &req.text)
        } else {
            None
        };
        Ok(SearchResults {
            total: collected.total,
            hits,
            facets: if req.facets {
                Facets::from_counts(collected.counts, minor_per_major)
            } else {
                Facets::default()
            },
            did_you_mean,
            next_offset: (collected.total > k as u64).then_some(k),
        })
    }

    /// Per word of the plan: is it in more than `relax_common_share` of the products?
    fn common_words(&self, snap: &Snapshot, plan: &query::Plan) -> Vec<bool> {
        let products = snap.searcher.num_docs() as f64;
        plan.words
            .iter()
            .map(|w| snap.vocab.count(&w.word) as f64 > products * self.ranking.relax_common_share)
            .collect()
    }

    /// The stored card of a hit.
    pub(crate) fn product(
        &self,
        snap: &Snapshot,
        e: &Entry,
    ) -> Result<Arc<ProductDoc>, SearchError> {
        if let Some(card) = snap.cards.get(e.address) {
            return Ok(card);
        }
        let doc: TantivyDocument = snap.searcher.doc(e.address)?;
        let card = doc
            .get_first(self.fields.card)
            .and_then(|v| v.as_str())
            .unwrap_or("{}");
        let card: Arc<ProductDoc> = Arc::new(serde_json::from_str(card)?);
        snap.cards.put(e.address, card.clone());
        Ok(card)
    }

    fn hit(
        &self,
        snap: &Snapshot,
        e: &Entry,
        highlights: &Highlights,
        locales: &[String],
        analyzers: &mut Analyzers,
    ) -> Result<Hit, SearchError> {
        let product = self.product(snap, e)?;
        let (locale, title, description) = product.localized(locales);
        let lang = Lang::of_locale(locale);
        let analyzer = analyzers.of(lang);
        let empty = Default::default();
        let terms = highlights
            .get(lang.map_or("plain", Lang::code))
            .unwrap_or(&empty);
        Ok(Hit {
            score: e.score,
            locale: locale.to_owned(),
            title: title.to_owned(),
            title_html: highlight(analyzer, title, terms, 0),
            snippet_html: highlight(analyzer, description, terms, SNIPPET_CHARS),
            product: product.clone(),
        })
    }

    /// The text with each unknown word replaced by its most likely known neighbour, when
    /// that changes anything.
    fn did_you_mean(&self, snap: &Snapshot, text: &str) -> Option<String> {
        let words = analysis::words(text);
        let mut changed = false;
        let fixed: Vec<String> = words
            .into_iter()
            .map(|w| {
                if snap.vocab.count(&w) > 0 || w.contains(|c: char| c.is_ascii_digit()) {
                    return w;
                }
                let budget = self.ranking.max_typos(w.chars().count()).max(1);
                match snap.vocab.typos(&self.typos, &w, budget, 1).first() {
                    Some((better, _, _)) => {
                        changed = true;
                        better.clone()
                    }
                    None => w,
                }
            })
            .collect();
        changed.then(|| fixed.join(" "))
    }
}
