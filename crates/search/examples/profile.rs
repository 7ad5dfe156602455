//! `cargo run --release -p emporium-search --example profile -- PATH`: time per query phase
//! on the judged titles plus variations (100,000 products), one thread.
#![expect(clippy::unwrap_used, reason = "a developer tool")]

use std::time::Instant;

use emporium_search::query::{Analyzers, Planner};
use emporium_search::{ProductDoc, RankingConfig, SearchIndex, SearchRequest};

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data/home_depot/train_utf8.csv".into());
    let data = emporium_search::eval::EvalData::read(std::path::Path::new(&path)).unwrap();
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let ranking = RankingConfig {
        one_typo_min_chars: env("ONE", 5),
        two_typos_min_chars: env("TWO", 9),
        max_prefix_completions: env("PREFIX", 10),
        max_typo_candidates: env("CANDS", 6),
        relax_below: env("RELAX", 10) as u64,
        typo_max_known_count: std::env::var("KNOWN")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX),
        ..RankingConfig::default()
    };
    let index = SearchIndex::in_ram(ranking).unwrap();
    let titles: Vec<&String> = data.titles.values().collect();
    let t = Instant::now();
    for i in 0..100_000usize {
        let title = titles[i % titles.len()];
        let title = if i < titles.len() {
            title.clone()
        } else {
            format!("{title} Pack of {}", i % 7 + 2)
        };
        index
            .upsert(&ProductDoc {
                id: i.to_string(),
                slug: i.to_string(),
                title,
                in_stock: i % 5 != 0,
                ..ProductDoc::default()
            })
            .unwrap();
    }
    index.commit(None).unwrap();
    println!("indexed 100k in {:?}", t.elapsed());
    let snap = index.snapshot();
    let synonyms = Default::default();
    let planner = Planner {
        vocab: &snap.vocab,
        typos: &Default::default(),
        synonyms: &synonyms,
        ranking: &index.ranking,
    };
    let queries: Vec<&str> = data
        .queries
        .iter()
        .take(3000)
        .map(|q| q.text.as_str())
        .collect();
    let t = Instant::now();
    let mut plans = Vec::new();
    for q in &queries {
        plans.push(planner.plan(q, true));
    }
    println!("plan: {:?}/query", t.elapsed() / queries.len() as u32);
    let t = Instant::now();
    let mut analyzers = Analyzers::default();
    for p in &plans {
        let _ = emporium_search::query::build(
            p,
            &index_fields(),
            &snap.live,
            &index.ranking,
            &mut analyzers,
            emporium_search::query::Matching::All,
        );
    }
    println!("build: {:?}/query", t.elapsed() / queries.len() as u32);
    for facets in [false, true] {
        let t = Instant::now();
        for q in &queries {
            let mut req = SearchRequest::text(q, 20);
            req.facets = facets;
            req.offset = usize::from(facets);
            index.search(&req).unwrap();
        }
        println!(
            "search facets={facets}: {:?}/query",
            t.elapsed() / queries.len() as u32
        );
    }
}

fn index_fields() -> emporium_search::schema::Fields {
    emporium_search::schema::build().1
}
