//! `emporium bench search`: a catalog of real titles plus variation (100,000 products by
//! default) written to a temporary data directory, indexed by `emporium reindex` (the
//! indexing rate), then a release server driven by 32 keep-alive clients with the real
//! Home Depot queries: search with filters and facets, then suggestions as typed prefixes.

mod catalog;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use emporium_search::eval::EvalData;
use serde::Serialize;

use super::load::{self, LoadReport, Shot};
use super::server::Server;
use crate::cli::{DEFAULT_DB_CONNECTIONS, DbArgs, SearchBenchArgs};

#[derive(Debug, Serialize)]
struct SearchReport {
    products: usize,
    queries: usize,
    connections: usize,
    seconds: u64,
    index_docs_per_sec: f64,
    index_seconds: f64,
    search_qps: f64,
    search_p50_ms: f64,
    search_p99_ms: f64,
    suggest_qps: f64,
    suggest_p50_ms: f64,
    suggest_p99_ms: f64,
    non_200: u64,
    errors: u64,
}

pub async fn run(args: SearchBenchArgs) -> anyhow::Result<()> {
    let path = args.judgments.clone();
    let data = tokio::task::spawn_blocking(move || EvalData::read(&path))
        .await?
        .with_context(|| format!("cannot read {}", args.judgments.display()))?;
    let titles: Vec<String> = data.titles.values().cloned().collect();
    let queries: Arc<Vec<String>> = Arc::new(data.queries.iter().map(|q| q.text.clone()).collect());
    let dir = match &args.keep_dir {
        Some(path) => {
            std::fs::create_dir(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            tempfile::TempDir::with_prefix_in("bench-", path)?
        }
        None => tempfile::tempdir()?,
    };
    let db_args = DbArgs {
        data_dir: dir.path().to_owned(),
        database_url: None,
        db_connections: DEFAULT_DB_CONNECTIONS,
        sqlite_writer_priority: emporium_store::MAX_WRITER_PRIORITY,
    };
    let started = Instant::now();
    let db = crate::serve::open_db(&db_args).await?;
    let built = catalog::write(&db, &titles, args.products).await?;
    db.close().await;
    say(
        &args,
        format!(
            "catalog of {} products written in {:.1} s",
            args.products,
            started.elapsed().as_secs_f64()
        ),
    );
    let (indexed, index_seconds) = reindex(dir.path()).await?;
    say(
        &args,
        format!("indexed {indexed} products in {index_seconds:.2} s"),
    );
    let server = Server::spawn(dir, None, &[]).await?;
    let mix = Arc::new(Mix {
        queries: queries.clone(),
        brands: built.brands,
        categories: built.categories,
    });
    let connections = args.connections.max(1);
    let duration = Duration::from_secs(args.seconds.max(1));
    let m = mix.clone();
    load::run(
        server.addr,
        connections,
        Duration::from_secs(2),
        move |c, i| m.search(c, i),
    )
    .await?;
    let m = mix.clone();
    let search = load::run(server.addr, connections, duration, move |c, i| {
        m.search(c, i)
    })
    .await?;
    say(&args, summary("search", &search));
    let m = mix.clone();
    load::run(
        server.addr,
        connections,
        Duration::from_secs(2),
        move |c, i| m.suggest(c, i),
    )
    .await?;
    let m = mix.clone();
    let suggest = load::run(server.addr, connections, duration, move |c, i| {
        m.suggest(c, i)
    })
    .await?;
    say(&args, summary("suggest", &suggest));
    if let Some(dir) = server.stop().await
        && args.keep_dir.is_some()
    {
        let _ = dir.keep();
    }
    let non_200 = [&search, &suggest]
        .iter()
        .flat_map(|r| r.statuses.iter())
        .filter(|(s, _)| **s != 200)
        .map(|(_, n)| n)
        .sum();
    for (status, body) in search.samples.iter().chain(&suggest.samples) {
        say(&args, format!("sample {status}: {body}"));
    }
    let report = SearchReport {
        products: args.products,
        queries: queries.len(),
        connections,
        seconds: args.seconds,
        index_docs_per_sec: indexed as f64 / index_seconds.max(1e-9),
        index_seconds,
        search_qps: search.per_sec(),
        search_p50_ms: search.quantile_ms(0.50),
        search_p99_ms: search.quantile_ms(0.99),
        suggest_qps: suggest.per_sec(),
        suggest_p50_ms: suggest.quantile_ms(0.50),
        suggest_p99_ms: suggest.quantile_ms(0.99),
        non_200,
        errors: search.errors + suggest.errors,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("endpoint                        req/s     p50 ms   p99 ms");
        println!(
            "GET /api/v1/search (facets) {:>9.0}   {:>8.2}   {:>6.2}",
            report.search_qps, report.search_p50_ms, report.search_p99_ms
        );
        println!(
            "GET /api/v1/search/suggest  {:>9.0}   {:>8.2}   {:>6.2}",
            report.suggest_qps, report.suggest_p50_ms, report.suggest_p99_ms
        );
        println!(
            "indexing: {:.0} products/s ({} products in {:.2} s); non-200: {}; transport errors: {}",
            report.index_docs_per_sec, indexed, index_seconds, non_200, report.errors
        );
    }
    Ok(())
}

fn say(args: &SearchBenchArgs, line: String) {
    if !args.json {
        eprintln!("{line}");
    }
}

fn summary(name: &str, r: &LoadReport) -> String {
    format!(
        "{name}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
        r.per_sec(),
        r.quantile_ms(0.5),
        r.quantile_ms(0.99)
    )
}

/// Runs `emporium reindex` on the data directory: (products, seconds of the rebuild).
async fn reindex(dir: &std::path::Path) -> anyhow::Result<(usize, f64)> {
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .arg("reindex")
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "reindex failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "search index rebuilt: N products in S s (R products/s)"
    let words: Vec<&str> = stdout.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "products")
        .context("unexpected reindex output")?;
    let n: usize = words.get(at - 1).context("no count")?.parse()?;
    let secs: f64 = words.get(at + 2).context("no time")?.parse()?;
    Ok((n, secs))
}

/// The request mix: real queries, a third of them with filters; every search counts facets.
struct Mix {
    queries: Arc<Vec<String>>,
    brands: Vec<String>,
    categories: Vec<String>,
}

impl Mix {
    fn query(&self, c: usize, i: u64) -> (usize, &str) {
        let n = (c as u64)
            .wrapping_mul(104_729)
            .wrapping_add(i.wrapping_mul(7_919));
        let at = (catalog::mix(n) % self.queries.len() as u64) as usize;
        (at, &self.queries[at])
    }

    fn search(&self, c: usize, i: u64) -> Shot {
        let (at, q) = self.query(c, i);
        let mut path = format!("/api/v1/search?q={}", encode(q));
        match at % 10 {
            5 | 6 => path.push_str(&format!(
                "&brand={}",
                encode(&self.brands[at % self.brands.len()])
            )),
            7 => path.push_str("&price_min=1000&price_max=5000"),
            8 => path.push_str(&format!(
                "&category={}",
                self.categories[at % self.categories.len()]
            )),
            9 => path.push_str("&in_stock=true&sort=price_asc"),
            _ => {}
        }
        Shot::get(&path)
    }

    /// A prefix of a real query, as typed so far.
    fn suggest(&self, c: usize, i: u64) -> Shot {
        let (at, q) = self.query(c, i);
        let chars = 1 + at % 8;
        let prefix: String = q.chars().take(chars).collect();
        Shot::get(&format!("/api/v1/search/suggest?q={}", encode(&prefix)))
    }
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
