//! `emporium eval search`: NDCG@10 of product search on the Home Depot judgments, read at
//! run time from the shared data directory (evaluation only: never copied into the project).

use anyhow::Context;
use emporium_search::eval::{self, EvalData};

use crate::cli::{EvalCommand, EvalSearchArgs};

pub async fn run(cmd: EvalCommand) -> anyhow::Result<()> {
    match cmd {
        EvalCommand::Search(args) => tokio::task::spawn_blocking(move || search(&args)).await?,
    }
}

fn search(args: &EvalSearchArgs) -> anyhow::Result<()> {
    let data = EvalData::read(&args.judgments)
        .with_context(|| format!("cannot read {}", args.judgments.display()))?;
    let r = eval::run(&data)?;
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    println!(
        "{} queries ({} misspelled), {} products; NDCG@10 (gain = grade - 1, log2 discount)",
        r.queries, r.misspelled_queries, r.products
    );
    println!("                         all     misspelled  clean    judged@10");
    let row = |name: &str, all: f64, miss: f64, clean: f64, judged: f64| {
        println!("{name:<22} {all:>7.4}   {miss:>7.4}   {clean:>7.4}   {judged:>7.3}");
    };
    row(
        "bm25 plain",
        r.full_baseline_ndcg10,
        r.full_baseline_ndcg10_misspelled,
        r.full_baseline_ndcg10_clean,
        r.baseline_judged_share_top10,
    );
    row(
        "bm25 stemmed",
        r.full_stemmed_baseline_ndcg10,
        r.full_stemmed_baseline_ndcg10_misspelled,
        r.full_stemmed_baseline_ndcg10_clean,
        r.stemmed_baseline_judged_share_top10,
    );
    row(
        "emporium",
        r.full_ndcg10,
        r.full_ndcg10_misspelled,
        r.full_ndcg10_clean,
        r.judged_share_top10,
    );
    println!(
        "emporium / stemmed: {:.3} overall, {:.3} misspelled; rerank NDCG@10 {:.4}",
        r.full_ratio_to_stemmed, r.misspelled_ratio_to_stemmed, r.rerank_ndcg10
    );
    Ok(())
}
