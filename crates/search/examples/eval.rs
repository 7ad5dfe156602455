//! `cargo run --release -p emporium-search --example eval -- PATH`: the relevance evaluation
//! without building the whole binary (`emporium eval search` runs the same function).
#![expect(clippy::unwrap_used, reason = "a developer tool")]

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data/home_depot/train_utf8.csv".into());
    let data = emporium_search::eval::EvalData::read(std::path::Path::new(&path)).unwrap();
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let ranking = emporium_search::RankingConfig {
        max_prefix_completions: env("PREFIX", 10) as usize,
        max_typo_candidates: env("CANDS", 6) as usize,
        relax_below: env("RELAX", 10),
        typo_max_known_count: env("KNOWN", u64::MAX),
        ..Default::default()
    };
    let report = emporium_search::eval::run_with(&data, ranking).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
