//! Product search on tantivy: the index of one node, query understanding, ranking, facets
//! and suggestions. No database here: the shop feeds [`ProductDoc`]s in and asks questions.
//!
//! Layout: `analysis` (analyzers per language, word normalization), `schema` (fields and the
//! schema version), `document` (a product as search sees it), `index` (open, write, commit,
//! snapshots), `vocab` (the word list: typos, completions), `synonyms`, `query` (text →
//! tantivy query), `request` (filters, sort, collected counts), `collect` (filters, disjunctive
//! facets, blend, top k in one pass; `dims`: its filter and facet dimensions),
//! `ranking` (the blend's knobs), `search` (running a search), `results`, `snippet`
//! (highlighting), `suggest` (as-you-type), `cache`, `values` (facet
//! column values per segment), `word` (one query word as one scorer).

pub mod analysis;
mod cache;
pub mod collect;
mod dims;
pub mod document;
pub mod eval;
pub mod index;
pub mod query;
pub mod ranking;
mod request;
pub mod results;
pub mod schema;
pub mod search;
pub mod snippet;
pub mod suggest;
pub mod synonyms;
pub mod values;
pub mod vocab;
mod word;

pub use collect::{Filters, Sort};
pub use document::{LocalText, ProductDoc};
pub use index::{SearchError, SearchIndex, Snapshot};
pub use ranking::RankingConfig;
pub use results::{
    CategoryCount, Facets, Hit, PriceBucket, RatingBucket, SearchResults, ValueCount,
};
pub use search::SearchRequest;
pub use suggest::{PopularQueries, SuggestedProduct, Suggestions};
pub use synonyms::{SynonymRule, Synonyms};
