//! Relevance evaluation on graded judgments: NDCG@10 of Emporium's search against two BM25
//! baselines over the same titles, in two protocols (rerank each query's judged products;
//! retrieve the top 10 from the whole catalog).
//!
//! Emporium is measured through [`SearchIndex::search`], the same pipeline the API runs
//! (analyzers, typo tolerance, prefix, ranking), with its shipped [`RankingConfig`].
//! Layout: `data` (reading the judgments), `ndcg` (the metric), `baseline` (plain and
//! stemmed BM25 with tantivy's own tokenizers and query parser).

mod baseline;
mod data;
mod ndcg;

use std::collections::HashSet;

use serde::Serialize;

use crate::index::{SearchError, SearchIndex};
use crate::{Filters, ProductDoc, RankingConfig, SearchRequest};
pub use data::{EvalData, Judged};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read the judgments: {0}")]
    Csv(#[from] csv::Error),
    #[error("bad judgment row: {0}")]
    Row(String),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("baseline index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
}

/// The figures of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EvalReport {
    pub queries: usize,
    pub products: usize,
    pub misspelled_queries: usize,
    pub rerank_ndcg10: f64,
    pub full_ndcg10: f64,
    pub full_baseline_ndcg10: f64,
    pub full_stemmed_baseline_ndcg10: f64,
    pub full_ndcg10_misspelled: f64,
    pub full_baseline_ndcg10_misspelled: f64,
    pub full_stemmed_baseline_ndcg10_misspelled: f64,
    pub full_ndcg10_clean: f64,
    pub full_baseline_ndcg10_clean: f64,
    pub full_stemmed_baseline_ndcg10_clean: f64,
    /// Share of Emporium's full-catalog top 10 that has a judgment.
    pub judged_share_top10: f64,
    pub baseline_judged_share_top10: f64,
    pub stemmed_baseline_judged_share_top10: f64,
    /// Emporium against the stemmed baseline, overall and on misspelled queries.
    pub full_ratio_to_stemmed: f64,
    pub misspelled_ratio_to_stemmed: f64,
    pub index_seconds: f64,
    pub search_seconds: f64,
}

/// Ranked product ids per query, in `data.queries` order.
type Runs = Vec<Vec<String>>;

/// The evaluation with the shipped ranking.
pub fn run(data: &EvalData) -> Result<EvalReport, EvalError> {
    run_with(data, RankingConfig::default())
}

/// The evaluation with other ranking knobs (for tuning them; never per query).
pub fn run_with(data: &EvalData, ranking: RankingConfig) -> Result<EvalReport, EvalError> {
    let started = std::time::Instant::now();
    let index = SearchIndex::in_ram(ranking)?;
    for (id, title) in &data.titles {
        index.upsert(&ProductDoc {
            id: id.clone(),
            slug: id.clone(),
            title: title.clone(),
            in_stock: true,
            ..ProductDoc::default()
        })?;
    }
    index.commit(None)?;
    let index_seconds = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let full = parallel(data, |q| {
        let found = index.search(&SearchRequest::text(&q.text, 10))?;
        Ok(found.hits.iter().map(|h| h.product.id.clone()).collect())
    })?;
    let rerank = parallel(data, |q| rerank(&index, q))?;
    let search_seconds = started.elapsed().as_secs_f64();
    let plain = baseline::Baseline::build(data, false)?;
    let plain_runs = parallel(data, |q| plain.top10(&q.text))?;
    let stemmed = baseline::Baseline::build(data, true)?;
    let stemmed_runs = parallel(data, |q| stemmed.top10(&q.text))?;

    let misspelled: Vec<bool> = data
        .queries
        .iter()
        .map(|q| data.is_misspelled(&q.text))
        .collect();
    let split = |runs: &Runs, want: Option<bool>| {
        ndcg::mean(
            data.queries
                .iter()
                .zip(runs)
                .zip(&misspelled)
                .filter(|(_, m)| want.is_none_or(|w| w == **m))
                .map(|((q, r), _)| ndcg::ndcg10(r, &q.judged)),
        )
    };
    let mut report = EvalReport {
        queries: data.queries.len(),
        products: data.titles.len(),
        misspelled_queries: misspelled.iter().filter(|m| **m).count(),
        rerank_ndcg10: split(&rerank, None),
        full_ndcg10: split(&full, None),
        full_baseline_ndcg10: split(&plain_runs, None),
        full_stemmed_baseline_ndcg10: split(&stemmed_runs, None),
        full_ndcg10_misspelled: split(&full, Some(true)),
        full_baseline_ndcg10_misspelled: split(&plain_runs, Some(true)),
        full_stemmed_baseline_ndcg10_misspelled: split(&stemmed_runs, Some(true)),
        full_ndcg10_clean: split(&full, Some(false)),
        full_baseline_ndcg10_clean: split(&plain_runs, Some(false)),
        full_stemmed_baseline_ndcg10_clean: split(&stemmed_runs, Some(false)),
        judged_share_top10: ndcg::judged_share(data, &full),
        baseline_judged_share_top10: ndcg::judged_share(data, &plain_runs),
        stemmed_baseline_judged_share_top10: ndcg::judged_share(data, &stemmed_runs),
        index_seconds,
        search_seconds,
        ..EvalReport::default()
    };
    report.full_ratio_to_stemmed =
        report.full_ndcg10 / report.full_stemmed_baseline_ndcg10.max(1e-9);
    report.misspelled_ratio_to_stemmed =
        report.full_ndcg10_misspelled / report.full_stemmed_baseline_ndcg10_misspelled.max(1e-9);
    Ok(report)
}

/// The query's judged products in the order search ranks them; those it does not match
/// follow in file order.
fn rerank(index: &SearchIndex, q: &Judged) -> Result<Vec<String>, EvalError> {
    let ids: Vec<String> = q.judged.iter().map(|(id, _)| id.clone()).collect();
    let mut req = SearchRequest::text(&q.text, ids.len());
    req.filters = Filters {
        ids: Some(ids.clone()),
        ..Filters::default()
    };
    let found = index.search(&req)?;
    let mut ranked: Vec<String> = found.hits.iter().map(|h| h.product.id.clone()).collect();
    let seen: HashSet<String> = ranked.iter().cloned().collect();
    ranked.extend(ids.into_iter().filter(|id| !seen.contains(id)));
    Ok(ranked)
}

/// Runs `f` over every query on two threads (the machine's cores), keeping query order.
fn parallel<F>(data: &EvalData, f: F) -> Result<Runs, EvalError>
where
    F: Fn(&Judged) -> Result<Vec<String>, EvalError> + Sync,
{
    let half = data.queries.len().div_ceil(2);
    let (a, b) = data.queries.split_at(half);
    let (ra, rb) = std::thread::scope(|s| {
        let ta = s.spawn(|| a.iter().map(&f).collect::<Result<Vec<_>, _>>());
        let rb = b.iter().map(&f).collect::<Result<Vec<_>, _>>();
        (ta.join(), rb)
    });
    let mut out = ra.map_err(|_| EvalError::Row("an evaluation thread panicked".into()))??;
    out.extend(rb?);
    Ok(out)
}
