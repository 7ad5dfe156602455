//! `emporium bench catalog`: product detail reads against the HTTP ceiling of the machine.

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::load::{self, Shot, fetch};
use super::median;
use super::server::Server;
use crate::cli::BenchArgs;

#[derive(Debug, Serialize)]
struct CatalogReport {
    connections: usize,
    seconds_per_round: u64,
    rounds: usize,
    ceiling_per_sec: f64,
    ceiling_p99_ms: f64,
    product_per_sec: f64,
    product_p50_ms: f64,
    product_p99_ms: f64,
    product_ratio: f64,
    product_non_200: u64,
    errors: u64,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let server = match &args.url {
        Some(url) => Server::existing(url).await?,
        None => Server::start(args.database_url.as_deref()).await?,
    };
    let (status, body) = fetch(server.addr, Shot::get("/api/v1/products?limit=100")).await?;
    anyhow::ensure!(status == 200, "listing products answered {status}");
    let page: serde_json::Value = serde_json::from_slice(&body)?;
    let ids: Vec<String> = page["items"]
        .as_array()
        .context("no products: start the server with --demo")?
        .iter()
        .filter_map(|p| p["id"].as_str().map(str::to_owned))
        .collect();
    anyhow::ensure!(!ids.is_empty(), "the catalog is empty");

    let duration = Duration::from_secs(args.seconds.max(1));
    // Warm up both paths (connections, caches, allocator) before measuring.
    load::run(
        server.addr,
        args.connections,
        Duration::from_secs(1),
        |_, _| Shot::get("/healthz"),
    )
    .await?;
    let warm_ids = ids.clone();
    load::run(
        server.addr,
        args.connections,
        Duration::from_secs(1),
        move |c, i| {
            Shot::get(&format!(
                "/api/v1/products/{}",
                warm_ids[(c + i as usize) % warm_ids.len()]
            ))
        },
    )
    .await?;

    let (mut ceiling, mut ceiling_p99, mut product, mut p50, mut p99) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut non_200, mut errors) = (0, 0);
    for round in 0..args.rounds.max(1) {
        let c = load::run(server.addr, args.connections, duration, |_, _| {
            Shot::get("/healthz")
        })
        .await?;
        let ids = ids.clone();
        let p = load::run(server.addr, args.connections, duration, move |c, i| {
            Shot::get(&format!(
                "/api/v1/products/{}",
                ids[(c + i as usize) % ids.len()]
            ))
        })
        .await?;
        if !args.json {
            eprintln!(
                "round {}: ceiling {:.0}/s, product {:.0}/s (p99 {:.2} ms)",
                round + 1,
                c.per_sec(),
                p.per_sec(),
                p.quantile_ms(0.99)
            );
        }
        ceiling.push(c.per_sec());
        ceiling_p99.push(c.quantile_ms(0.99));
        product.push(p.per_sec());
        p50.push(p.quantile_ms(0.50));
        p99.push(p.quantile_ms(0.99));
        non_200 += p
            .statuses
            .iter()
            .filter(|(s, _)| **s != 200)
            .map(|(_, n)| n)
            .sum::<u64>();
        errors += c.errors + p.errors;
    }
    drop(server.stop().await);
    let ceiling_per_sec = median(&mut ceiling);
    let product_per_sec = median(&mut product);
    let report = CatalogReport {
        connections: args.connections,
        seconds_per_round: args.seconds,
        rounds: args.rounds.max(1),
        ceiling_per_sec,
        ceiling_p99_ms: median(&mut ceiling_p99),
        product_per_sec,
        product_p50_ms: median(&mut p50),
        product_p99_ms: median(&mut p99),
        product_ratio: product_per_sec / ceiling_per_sec.max(1e-9),
        product_non_200: non_200,
        errors,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("endpoint                      req/s      p50 ms   p99 ms");
        println!(
            "GET /healthz (ceiling)   {:>10.0}          -   {:>6.2}",
            report.ceiling_per_sec, report.ceiling_p99_ms
        );
        println!(
            "GET /api/v1/products/id  {:>10.0}   {:>8.2}   {:>6.2}",
            report.product_per_sec, report.product_p50_ms, report.product_p99_ms
        );
        println!(
            "product/ceiling ratio: {:.2}   non-200: {}   transport errors: {}",
            report.product_ratio, non_200, errors
        );
    }
    Ok(())
}
