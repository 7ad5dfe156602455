//! `emporium bench flash-sale`: durable flash-sale reservations over HTTP, the batched
//! engine against the naive design (one transaction per attempt) and the HTTP ceiling.
//!
//! Each design gets a fresh database, prepared before its server starts: an admin, a SKU
//! with enough stock, one sale with a unit for every shopper (the granting phase: every
//! attempt in the measured window becomes a new durable reservation) and one small sale
//! that sells out under load (the oversell check and the sold-out phase), plus the
//! shoppers with ready-made sessions, so no password hashing happens while measuring.
//!
//! With `--url` it drives a server that is already running instead, preparing the same
//! fixtures (under a SKU of their own) in that server's database, `--target-database-url`,
//! and checking the stock equation there afterwards; only that server's design is measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use emporium_domain::identity::Role;
use emporium_shop::inventory::flash::{self, NewFlashSale};
use emporium_shop::{Shop, ShopConfig, SystemClock};
use emporium_store::{Db, DbConfig, reservations};
use hyper::header::HeaderValue;
use serde::Serialize;
use uuid::Uuid;

use super::load::{self, LoadReport, Shot};
use super::median;
use super::server::Server;
use crate::cli::FlashBenchArgs;
use crate::fixtures;

/// What one design did under load.
#[derive(Debug, Clone, Default, Serialize)]
struct DesignReport {
    design: String,
    attempts_per_sec: f64,
    granted: u64,
    sold_out: u64,
    limited: u64,
    admitted_away: u64,
    errors: u64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    sold_out_per_sec: f64,
    oversold: i64,
    stock_equation_ok: bool,
    /// The median of the rounds' ceilings.
    ceiling_per_sec: f64,
    /// The median, over rounds, of the round's grants/s over the ceiling measured right
    /// after it (adjacent in time, so a host that slows down for a while moves both).
    ceiling_ratio: f64,
    /// The same for the round's sold-out answers/s.
    sold_out_ratio: f64,
}

struct Prepared {
    /// The data directory of a server still to be started on SQLite.
    dir: Option<tempfile::TempDir>,
    url: Option<String>,
    /// The PostgreSQL schema made for this design.
    schema: Option<String>,
    granting_sale: Uuid,
    sell_out_sale: Uuid,
    sell_out_units: i64,
    tokens: Arc<Vec<String>>,
}

pub async fn run(args: FlashBenchArgs) -> anyhow::Result<()> {
    let designs = match (&args.url, &args.target_database_url) {
        (Some(url), Some(database)) => vec![measure_running(url, database, &args).await?],
        _ => measure_all(&args).await?,
    };
    let main = &designs[0];
    let naive = designs.iter().find(|d| d.design == "naive sqlite");
    let pg = designs.iter().find(|d| d.design == "batched postgres");
    let naive_pg = designs.iter().find(|d| d.design == "naive postgres");
    let mut json = serde_json::to_value(main)?;
    if let Some(n) = naive {
        json["naive_per_sec"] = n.attempts_per_sec.into();
        json["naive_ratio"] = ratio(main.attempts_per_sec, n.attempts_per_sec).into();
    }
    if let (Some(p), Some(n)) = (pg, naive_pg) {
        json["pg_per_sec"] = p.attempts_per_sec.into();
        json["naive_pg_per_sec"] = n.attempts_per_sec.into();
        json["naive_pg_ratio"] = ratio(p.attempts_per_sec, n.attempts_per_sec).into();
    }
    json["designs"] = serde_json::to_value(&designs)?;
    if args.json {
        println!("{json}");
        return Ok(());
    }
    println!(
        "{:<18} {:>10} {:>9} {:>9} {:>7} {:>6} {:>6} {:>7} {:>7} {:>8} {:>10} {:>9} {:>8}",
        "design",
        "attempts/s",
        "granted",
        "sold_out",
        "limited",
        "429",
        "errors",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "sold-out/s",
        "oversold",
        "equation"
    );
    for d in &designs {
        println!(
            "{:<18} {:>10.0} {:>9} {:>9} {:>7} {:>6} {:>6} {:>7.2} {:>7.2} {:>8.2} {:>10.0} {:>9} {:>8}",
            d.design,
            d.attempts_per_sec,
            d.granted,
            d.sold_out,
            d.limited,
            d.admitted_away,
            d.errors,
            d.p50_ms,
            d.p99_ms,
            d.p999_ms,
            d.sold_out_per_sec,
            d.oversold,
            if d.stock_equation_ok { "ok" } else { "BROKEN" }
        );
    }
    println!("HTTP ceiling (GET /healthz): {:.0}/s", main.ceiling_per_sec);
    for key in [
        "ceiling_ratio",
        "sold_out_ratio",
        "naive_ratio",
        "naive_pg_ratio",
    ] {
        if let Some(v) = json.get(key) {
            println!("{key}: {:.2}", v.as_f64().unwrap_or(0.0));
        }
    }
    Ok(())
}

/// Every design this bench compares, each on a server of its own.
async fn measure_all(args: &FlashBenchArgs) -> anyhow::Result<Vec<DesignReport>> {
    let mut designs = vec![measure("batched", None, args).await?];
    if !args.no_baseline {
        designs.push(measure("naive", None, args).await?);
    }
    if let Some(url) = &args.database_url {
        designs.push(measure("batched", Some(url), args).await?);
        if !args.no_baseline {
            designs.push(measure("naive", Some(url), args).await?);
        }
    }
    Ok(designs)
}

/// The server at `url`, whatever its design, prepared through its database.
async fn measure_running(
    url: &str,
    database: &str,
    args: &FlashBenchArgs,
) -> anyhow::Result<DesignReport> {
    let design = "running server".to_owned();
    check_shoppers(args.shoppers)?;
    eprintln!("{design}: preparing {} shoppers", args.shoppers);
    let prepared = prepare(
        Place::Existing(database),
        args.shoppers,
        args.sell_out_units,
    )
    .await?;
    let server = Server::existing(url).await?;
    run_design(design, server, prepared, args).await
}

fn check_shoppers(shoppers: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        shoppers > 2 * RETURNING_SHOPPERS,
        "--shoppers must be more than {}",
        2 * RETURNING_SHOPPERS
    );
    Ok(())
}

async fn measure(
    mode: &str,
    pg_url: Option<&String>,
    args: &FlashBenchArgs,
) -> anyhow::Result<DesignReport> {
    let backend = if pg_url.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let design = format!("{mode} {backend}");
    // The naive design is slow: it needs fewer fresh shoppers to fill its window.
    let shoppers = if mode == "naive" {
        args.shoppers.min(60_000)
    } else {
        args.shoppers
    };
    check_shoppers(shoppers)?;
    eprintln!("{design}: preparing {shoppers} shoppers");
    let place = match pg_url {
        Some(base) => Place::FreshSchema(base),
        None => Place::FreshSqlite,
    };
    let mut prepared = prepare(place, shoppers, args.sell_out_units).await?;
    let schema = prepared.schema.clone();
    let report = async {
        let dir = prepared.dir.take().context("no data directory")?;
        let extra = ["--reservation-mode", mode];
        let server = Server::spawn(dir, prepared.url.as_deref(), &extra).await?;
        run_design(design, server, prepared, args).await
    }
    .await;
    // The schema goes whether the run succeeded or not.
    if let (Some(base), Some(schema)) = (pg_url, schema) {
        drop_schema(base, &schema).await?;
    }
    report
}

/// Drives the three phases against `server`, which serves `prepared`, then checks the
/// database.
async fn run_design(
    design: String,
    server: Server,
    prepared: Prepared,
    args: &FlashBenchArgs,
) -> anyhow::Result<DesignReport> {
    let duration = Duration::from_secs(args.seconds.max(1));
    let next = Arc::new(AtomicUsize::new(0));
    // After a sell-out the flood is shoppers retrying: a pool of returning, logged-in
    // shoppers, kept apart from the granting phase's so that they hold no reservation of
    // this SKU yet.
    let (fresh, returning) = prepared
        .tokens
        .split_at(prepared.tokens.len().saturating_sub(RETURNING_SHOPPERS));
    let bearers = |tokens: &[String]| -> anyhow::Result<Arc<Vec<HeaderValue>>> {
        Ok(Arc::new(
            tokens
                .iter()
                .map(|t| load::bearer(t))
                .collect::<anyhow::Result<_>>()?,
        ))
    };
    let tokens = bearers(fresh)?;
    let returning = bearers(returning)?;
    // Warm-up on the granting sale (its shoppers are then used up, never reused).
    drive(
        &server,
        args.connections,
        Duration::from_secs(1),
        prepared.granting_sale,
        &tokens,
        &next,
    )
    .await?;
    // The phases alternate in rounds, each followed by its ceiling, so that ratios compare
    // figures taken a few seconds apart on a host whose speed drifts.
    let rounds = args.rounds.max(1);
    let round = (duration / u32::try_from(rounds).unwrap_or(u32::MAX)).max(MIN_ROUND);
    let again = Arc::new(AtomicUsize::new(0));
    let (mut granting, mut sold_out_phase) = (Vec::new(), Vec::new());
    let (mut grant_ratios, mut sold_out_ratios, mut ceilings) =
        (Vec::new(), Vec::new(), Vec::new());
    for r in 1..=rounds {
        eprintln!("{design}: round {r} of {rounds}: granting, sold out, ceiling");
        let g = drive(
            &server,
            args.connections,
            round,
            prepared.granting_sale,
            &tokens,
            &next,
        )
        .await?;
        let o = drive(
            &server,
            args.connections,
            round,
            prepared.sell_out_sale,
            &returning,
            &again,
        )
        .await?;
        let c = load::run(server.addr, args.connections, round, |_, _| {
            Shot::get("/healthz")
        })
        .await?;
        let ceiling = c.per_sec();
        grant_ratios.push(ratio(
            status_count(&g, 201) as f64 / g.elapsed.as_secs_f64(),
            ceiling,
        ));
        sold_out_ratios.push(ratio(
            o.code_count("sold_out") as f64 / o.elapsed.as_secs_f64(),
            ceiling,
        ));
        ceilings.push(ceiling);
        granting.push(g);
        sold_out_phase.push(o);
    }
    let granting = LoadReport::merged(granting);
    let sold_out_phase = LoadReport::merged(sold_out_phase);
    // Past the fresh shoppers the granting phase would ask again for shoppers who hold a
    // reservation: its figures would count `already_reserved` answers, not grants.
    let used = next.load(Ordering::Relaxed);
    if used > tokens.len() {
        anyhow::bail!(
            "{design}: the granting phase needed {used} fresh shoppers but only {} were \
             prepared; run again with a larger --shoppers",
            tokens.len()
        );
    }
    eprintln!(
        "{design}: granting phase answers {:?} {:?} {:?}",
        granting.statuses, granting.codes, granting.samples
    );
    eprintln!(
        "{design}: sold-out phase answers {:?} {:?} {:?}",
        sold_out_phase.statuses, sold_out_phase.codes, sold_out_phase.samples
    );
    // A started server is stopped first, so that everything it acknowledged is on disk.
    let dir = server.stop().await;
    let dir = dir.as_ref().map_or(std::path::Path::new(""), |d| d.path());
    // Migrated already: by `prepare`, or by the running server.
    let db = connect(&prepared.url, dir).await?;
    let (on_hand, reserved, held, earmarked) = reservations::stock_totals(&db).await?;
    let ledger = reservations::ledger_total(&db).await?;
    let sale = reservations::find_flash_sale(&db, prepared.sell_out_sale)
        .await?
        .context("sale gone")?;
    let granted_in_sale = sale.quantity - sale.remaining;
    let acknowledged = status_count(&sold_out_phase, 201) as i64;
    db.close().await;
    let both = |count: fn(&LoadReport) -> u64| count(&granting) + count(&sold_out_phase);
    Ok(DesignReport {
        design,
        attempts_per_sec: status_count(&granting, 201) as f64 / granting.elapsed.as_secs_f64(),
        granted: status_count(&granting, 201),
        sold_out: both(|r| r.code_count("sold_out")),
        limited: both(limited),
        admitted_away: both(|r| status_count(r, 429)),
        errors: both(unexpected),
        p50_ms: granting.quantile_ms(0.50),
        p99_ms: granting.quantile_ms(0.99),
        p999_ms: granting.quantile_ms(0.999),
        sold_out_per_sec: sold_out_phase.code_count("sold_out") as f64
            / sold_out_phase.elapsed.as_secs_f64(),
        oversold: (acknowledged - prepared.sell_out_units).max(0)
            + (granted_in_sale - prepared.sell_out_units).max(0),
        stock_equation_ok: on_hand == ledger
            && reserved == held + earmarked
            && on_hand >= reserved
            && acknowledged == granted_in_sale,
        ceiling_per_sec: median(&mut ceilings),
        ceiling_ratio: median(&mut grant_ratios),
        sold_out_ratio: median(&mut sold_out_ratios),
    })
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The shortest round of a phase: shorter ones measure the start of the load more than the
/// load.
const MIN_ROUND: Duration = Duration::from_millis(500);

/// Shoppers who come back to the sold-out sale, again and again.
const RETURNING_SHOPPERS: usize = 1_024;

fn status_count(r: &LoadReport, status: u16) -> u64 {
    r.statuses.get(&status).copied().unwrap_or(0)
}

/// Answers that a shopper's own limit gave: more than the sale's per-customer limit, or a
/// second reservation of a SKU the shopper already holds (a returning shopper who got a unit
/// and asks again while the node re-checks the sold-out sale in the database).
fn limited(r: &LoadReport) -> u64 {
    r.code_count("purchase_limit_exceeded") + r.code_count("already_reserved")
}

/// Answers no shopper of these sales should get: transport errors, statuses other than 201,
/// 409 and 429, and conflicts other than `sold_out` and the limits.
fn unexpected(r: &LoadReport) -> u64 {
    let statuses: u64 = r
        .statuses
        .iter()
        .filter(|(s, _)| ![201, 409, 429].contains(*s))
        .map(|(_, n)| n)
        .sum();
    let conflicts = status_count(r, 409).saturating_sub(r.code_count("sold_out") + limited(r));
    r.errors + statuses + conflicts
}

async fn drive(
    server: &Server,
    connections: usize,
    duration: Duration,
    sale: Uuid,
    tokens: &Arc<Vec<HeaderValue>>,
    next: &Arc<AtomicUsize>,
) -> anyhow::Result<LoadReport> {
    let (tokens, next) = (tokens.clone(), next.clone());
    let uri = hyper::Uri::try_from(format!("/api/v1/flash-sales/{sale}/reserve"))?;
    let body = Bytes::from_static(br#"{"quantity":1}"#);
    load::run(server.addr, connections, duration, move |_, _| {
        let i = next.fetch_add(1, Ordering::Relaxed) % tokens.len();
        Shot {
            method: hyper::Method::POST,
            uri: uri.clone(),
            body: Some(body.clone()),
            bearer: Some(tokens[i].clone()),
        }
    })
    .await
}

/// Opens and migrates a database the bench prepares (at `url`, or SQLite in `dir`).
pub(super) async fn open(url: &Option<String>, dir: &std::path::Path) -> anyhow::Result<Db> {
    let db = connect(url, dir).await?;
    db.migrate().await?;
    Ok(db)
}

/// Opens a database without migrating it: a running server's, whose schema is its own
/// business (a newer bench must not migrate an older server's database under it).
async fn connect(url: &Option<String>, dir: &std::path::Path) -> anyhow::Result<Db> {
    let config = match url {
        Some(url) => DbConfig {
            url: url.clone(),
            max_connections: 4,
            schema: None,
            sqlite_writer_priority: None,
        },
        // The bench's own connection: its priority is the server's business.
        None => DbConfig {
            sqlite_writer_priority: None,
            ..DbConfig::sqlite_in(dir)
        },
    };
    Ok(Db::connect(&config).await?)
}

/// A new empty schema on the PostgreSQL at `base`, and a URL that works in it.
pub(super) async fn fresh_schema(base: &str) -> anyhow::Result<(String, String)> {
    let schema = format!("bench_{}", Uuid::now_v7().simple());
    let admin = sqlx::PgPool::connect(base).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await?;
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    Ok((url, schema))
}

/// Drops a schema made by [`fresh_schema`] with everything in it: a benchmark leaves
/// nothing behind in the database it was pointed at.
pub(super) async fn drop_schema(base: &str, schema: &str) -> anyhow::Result<()> {
    let admin = sqlx::PgPool::connect(base).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(())
}

/// Where a design's fixtures go.
#[derive(Debug, Clone, Copy)]
enum Place<'a> {
    /// A new SQLite file in a new data directory, for a server still to be started.
    FreshSqlite,
    /// A new schema on the PostgreSQL at this URL.
    FreshSchema(&'a str),
    /// The database of a server that is already running.
    Existing(&'a str),
}

async fn prepare(
    place: Place<'_>,
    shoppers: usize,
    sell_out_units: i64,
) -> anyhow::Result<Prepared> {
    let dir = tempfile::tempdir()?;
    let (url, schema) = match place {
        Place::FreshSqlite => (None, None),
        Place::FreshSchema(base) => {
            let (url, schema) = fresh_schema(base).await?;
            (Some(url), Some(schema))
        }
        Place::Existing(url) => (Some(url.to_owned()), None),
    };
    let db = match place {
        Place::Existing(_) => connect(&url, dir.path()).await?,
        Place::FreshSqlite | Place::FreshSchema(_) => open(&url, dir.path()).await?,
    };
    let shop = Shop::new(db.clone(), Arc::new(SystemClock), ShopConfig::default());
    let now = shop.now();
    let admin = fixtures::admin_actor(fixtures::accounts(&db, 1, Role::Admin, now).await?[0].0);
    // A SKU of this run's own: a running server's database may hold earlier runs.
    let sku = format!("FLASH-{}", Uuid::now_v7().simple());
    let variant =
        fixtures::stocked_sku(&shop, &admin, &sku, shoppers as i64 + sell_out_units).await?;
    let sale = |quantity: i64| -> anyhow::Result<NewFlashSale> {
        Ok(NewFlashSale {
            variant,
            price: flash::price(19_900, "GBP")?,
            starts_at: now - chrono::Duration::seconds(1),
            ends_at: now + chrono::Duration::hours(2),
            quantity,
            per_customer_limit: 1,
        })
    };
    let granting_sale = flash::create(&shop, &admin, &sku, sale(shoppers as i64)?)
        .await?
        .id;
    let sell_out_sale = flash::create(&shop, &admin, &sku, sale(sell_out_units)?)
        .await?
        .id;
    let tokens = fixtures::accounts(&db, shoppers, Role::Customer, now)
        .await?
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    db.close().await;
    Ok(Prepared {
        dir: Some(dir),
        url,
        schema,
        granting_sale,
        sell_out_sale,
        sell_out_units,
        tokens: Arc::new(tokens),
    })
}
