//! `cargo run --release -p emporium-search --example mix -- PATH [QUERIES]`: CPU time per
//! search of the `emporium bench search` request mix (real queries, 40% with a filter, facets
//! always), on one thread, against a catalog shaped like the bench's (100,000 products with
//! brands, categories, attributes, prices, stock and ratings). Prints mean and quantiles of
//! the uncached search time, then the slowest queries: the numbers to compare designs by.
//! `COMPACT=0` searches the segments as written instead of merged as after a rebuild.
#![expect(clippy::unwrap_used, reason = "a developer tool")]

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use emporium_search::{ProductDoc, RankingConfig, SearchIndex, SearchRequest, Sort};

const VARIATIONS: &[&str] = &[
    "(2-Pack)",
    "in White",
    "in Black",
    "Contractor Pack",
    "- Value Bundle",
    "(Case of 6)",
    "with Hardware Kit",
    "in Satin Nickel",
    "Pro Series",
    "Outdoor Edition",
];
const COLOURS: &[&str] = &[
    "white", "black", "grey", "brown", "silver", "red", "blue", "green",
];
const MATERIALS: &[&str] = &["steel", "wood", "plastic", "aluminum", "brass", "vinyl"];
const ROOTS: &[&str] = &[
    "building",
    "electrical",
    "plumbing",
    "tools",
    "outdoors",
    "decor",
];
const LEAVES: &[&str] = &["basics", "pro", "repair", "install", "storage"];

fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "../shared/data/home_depot/train_utf8.csv".into());
    let n_queries: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let data = emporium_search::eval::EvalData::read(std::path::Path::new(&path)).unwrap();
    let index = SearchIndex::in_ram(RankingConfig::default()).unwrap();
    let titles: Vec<&String> = data.titles.values().collect();
    let leaves: Vec<String> = ROOTS
        .iter()
        .flat_map(|r| LEAVES.iter().map(move |l| format!("{r}/{r}-{l}")))
        .collect();
    let mut brand_counts: HashMap<String, usize> = HashMap::new();
    let t = Instant::now();
    for i in 0..100_000usize {
        let h = mix(i as u64);
        let base = titles[i % titles.len()];
        let title = if i < titles.len() {
            base.clone()
        } else {
            format!(
                "{base} {}",
                VARIATIONS[(i / titles.len() + i) % VARIATIONS.len()]
            )
        };
        let brand = base
            .split_whitespace()
            .next()
            .unwrap_or("Generic")
            .to_owned();
        *brand_counts.entry(brand.clone()).or_default() += 1;
        let path = leaves[(h % leaves.len() as u64) as usize].clone();
        let gbp = 100 + ((h >> 24) % 50_000) as i64;
        let rated = (h >> 50).is_multiple_of(2);
        index
            .upsert(&ProductDoc {
                id: format!("id{i}"),
                slug: format!("p{i}"),
                title,
                brand: Some(brand),
                category_names: path.split('/').map(|s| s.replace('-', " ")).collect(),
                category_path: Some(path),
                attributes: BTreeMap::from([
                    (
                        "colour".to_owned(),
                        COLOURS[(h >> 8) as usize % COLOURS.len()].to_owned(),
                    ),
                    (
                        "material".to_owned(),
                        MATERIALS[(h >> 16) as usize % MATERIALS.len()].to_owned(),
                    ),
                ]),
                skus: vec![format!("HD-{i:06}")],
                prices: BTreeMap::from([("GBP".into(), gbp), ("USD".into(), gbp * 127 / 100)]),
                rating: if rated {
                    1.0 + ((h >> 52) % 41) as f64 / 10.0
                } else {
                    0.0
                },
                review_count: if rated { (h >> 56) % 200 } else { 0 },
                in_stock: !(h >> 40).is_multiple_of(5),
                created_at: 1_700_000_000 - (h % 10_000_000) as i64,
                ..ProductDoc::default()
            })
            .unwrap();
    }
    index.commit(None).unwrap();
    // As a rebuild leaves it (COMPACT=0: as many segments as the writer made).
    if std::env::var("COMPACT").map_or(true, |v| v != "0") {
        index.compact().unwrap();
    }
    eprintln!(
        "indexed 100k in {:.1?}, {} segments",
        t.elapsed(),
        index.segments()
    );
    let mut brands: Vec<(String, usize)> = brand_counts.into_iter().collect();
    brands.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    brands.truncate(50);
    let requests: Vec<SearchRequest> = (0..n_queries)
        .map(|i| {
            let at = (mix(i as u64 * 7_919) % data.queries.len() as u64) as usize;
            let limit = std::env::var("LIMIT")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(20);
            let mut req = SearchRequest::text(&data.queries[at].text, limit);
            req.facets = std::env::var("FACETS").map_or(true, |v| v != "0");
            match at % 10 {
                5 | 6 => req.filters.brands = vec![brands[at % brands.len()].0.clone()],
                7 => (req.filters.price_min, req.filters.price_max) = (Some(1000), Some(5000)),
                8 => req.filters.category = Some(leaves[at % leaves.len()].clone()),
                9 => {
                    req.filters.in_stock = Some(true);
                    req.sort = Sort::PriceAsc;
                }
                _ => {}
            }
            req
        })
        .collect();
    // Warm up, then time every request uncached.
    for req in requests.iter().take(200) {
        index.search(req).unwrap();
    }
    let mut times: Vec<(f64, usize, u64)> = Vec::new();
    let all = Instant::now();
    for (i, req) in requests.iter().enumerate() {
        index.set_synonyms(Default::default()); // drops the result cache
        let t = Instant::now();
        let found = index.search(req).unwrap();
        times.push((t.elapsed().as_secs_f64() * 1e3, i, found.total));
    }
    let wall = all.elapsed().as_secs_f64();
    phases(&index, &requests);
    let mean = times.iter().map(|t| t.0).sum::<f64>() / times.len() as f64;
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let q = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize].0;
    println!(
        "{} searches in {wall:.2} s: mean {mean:.3} ms, p50 {:.3}, p90 {:.3}, p99 {:.3}, max {:.3}",
        times.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0)
    );
    for (lo, hi) in [(0, 100), (100, 1_000), (1_000, 10_000), (10_000, u64::MAX)] {
        let group: Vec<f64> = times
            .iter()
            .filter(|t| t.2 >= lo && t.2 < hi)
            .map(|t| t.0)
            .collect();
        println!(
            "total in [{lo}, {hi}): {} searches, {:.0} ms in all",
            group.len(),
            group.iter().sum::<f64>()
        );
    }
    for (ms, i, total) in sorted.iter().rev().take(15) {
        let r = &requests[*i];
        println!(
            "{ms:8.2} ms  total {total:6}  {:?}  brand={:?} cat={:?} price={:?} stock={:?}",
            r.text, r.filters.brands, r.filters.category, r.filters.price_min, r.filters.in_stock
        );
    }
}

/// Time of the phases before collection: planning, building the query, matching alone.
fn phases(index: &SearchIndex, requests: &[SearchRequest]) {
    use emporium_search::query::{self, Analyzers, Planner};
    let snap = index.snapshot();
    let synonyms = Default::default();
    let typos = Default::default();
    let planner = Planner {
        vocab: &snap.vocab,
        typos: &typos,
        synonyms: &synonyms,
        ranking: &index.ranking,
    };
    let fields = emporium_search::schema::build().1;
    let (mut plan_s, mut build_s, mut count_s) = (0.0, 0.0, 0.0);
    let (mut score_s, mut relax_s, mut relaxed) = (0.0, 0.0, 0);
    for req in requests {
        let t = Instant::now();
        let plan = planner.plan(&req.text, true);
        plan_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut analyzers = Analyzers::default();
        let (q, _) = query::build(
            &plan,
            &fields,
            &snap.live,
            &index.ranking,
            &mut analyzers,
            query::Matching::All,
        );
        build_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let n = snap
            .searcher
            .search(q.as_ref(), &tantivy::collector::Count)
            .unwrap();
        count_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _ = snap.searcher.search(q.as_ref(), &ScoreSum).unwrap();
        score_s += t.elapsed().as_secs_f64();
        if n < 10 && plan.words.len() > 1 {
            relaxed += 1;
            let (q, _) = query::build(
                &plan,
                &fields,
                &snap.live,
                &index.ranking,
                &mut analyzers,
                query::Matching::Any { common: &[] },
            );
            let t = Instant::now();
            let _ = snap.searcher.search(q.as_ref(), &ScoreSum).unwrap();
            relax_s += t.elapsed().as_secs_f64();
        }
    }
    let n = requests.len() as f64;
    println!(
        "per search: plan {:.3} ms, build {:.3} ms, match (count only) {:.3} ms, \
         match with scores {:.3} ms, relaxed {relaxed} times: {:.3} ms",
        plan_s / n * 1e3,
        build_s / n * 1e3,
        count_s / n * 1e3,
        score_s / n * 1e3,
        relax_s / n * 1e3
    );
}

/// Scores every match and keeps nothing: the cost of scoring alone.
struct ScoreSum;

impl tantivy::collector::Collector for ScoreSum {
    type Fruit = f32;
    type Child = ScoreSum;

    fn for_segment(&self, _: u32, _: &tantivy::SegmentReader) -> tantivy::Result<ScoreSum> {
        Ok(ScoreSum)
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<f32>) -> tantivy::Result<f32> {
        Ok(fruits.into_iter().sum())
    }
}

impl tantivy::collector::SegmentCollector for ScoreSum {
    type Fruit = f32;

    fn collect(&mut self, _: tantivy::DocId, score: tantivy::Score) {
        std::hint::black_box(score);
    }

    fn harvest(self) -> f32 {
        0.0
    }
}
