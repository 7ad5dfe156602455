//! `emporium bench checkout`: N concurrent customers each run whole journeys over HTTP
//! keep-alive (create a cart, add an item, check out paying with the test gateway's
//! `tok_success`, confirm the order is paid), against a release server on SQLite and, with
//! `--database-url`, PostgreSQL. Reports complete checkouts/s, per-step p50/p99 and an
//! integrity check read from the database afterwards.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use emporium_domain::identity::{CountryCode, Role};
use emporium_domain::money::Currency;
use emporium_shop::pricing::{NewShippingMethod, set_shipping_method, set_tax_rate};
use emporium_shop::{Shop, ShopConfig, SystemClock};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{Value, json};

use super::server::Server;
use crate::cli::CheckoutBenchArgs;
use crate::fixtures;

const STEPS: [&str; 4] = ["create_cart", "add_item", "checkout", "confirm_order"];
const SKUS: usize = 16;

#[derive(Debug, Clone, Default, Serialize)]
struct Report {
    database: String,
    checkouts_per_sec: f64,
    completed: u64,
    failed: u64,
    /// The worst step's p99.
    p99_ms: f64,
    steps: Vec<StepReport>,
    paid_orders: i64,
    payments_succeeded: i64,
    duplicate_orders: i64,
    duplicate_charges: i64,
    units_in_paid_orders: i64,
    units_committed: i64,
    integrity_ok: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
struct StepReport {
    step: String,
    p50_ms: f64,
    p99_ms: f64,
}

pub async fn run(args: CheckoutBenchArgs) -> anyhow::Result<()> {
    let mut reports = vec![measure(None, &args).await?];
    if let Some(url) = &args.database_url {
        reports.push(measure(Some(url), &args).await?);
    }
    let main = &reports[0];
    let mut out = serde_json::to_value(main)?;
    if let Some(pg) = reports.get(1) {
        out["postgres"] = serde_json::to_value(pg)?;
    }
    if args.json {
        println!("{out}");
        return Ok(());
    }
    for r in &reports {
        println!(
            "{}: {:.0} checkouts/s, {} completed, {} failed, worst step p99 {:.2} ms, integrity {}",
            r.database,
            r.checkouts_per_sec,
            r.completed,
            r.failed,
            r.p99_ms,
            if r.integrity_ok { "ok" } else { "BROKEN" }
        );
        for s in &r.steps {
            println!(
                "  {:<14} p50 {:>7.2} ms  p99 {:>7.2} ms",
                s.step, s.p50_ms, s.p99_ms
            );
        }
        println!(
            "  paid orders {} = payments succeeded {}; units in paid orders {} = committed {}; duplicate orders {}, duplicate charges {}",
            r.paid_orders,
            r.payments_succeeded,
            r.units_in_paid_orders,
            r.units_committed,
            r.duplicate_orders,
            r.duplicate_charges
        );
    }
    Ok(())
}

async fn measure(pg_url: Option<&String>, args: &CheckoutBenchArgs) -> anyhow::Result<Report> {
    let database = if pg_url.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let Some(base) = pg_url else {
        return run_on(database, None, args).await;
    };
    let (url, schema) = super::flash::fresh_schema(base).await?;
    let report = run_on(database, Some(url), args).await;
    // The schema goes whether the run succeeded or not.
    super::flash::drop_schema(base, &schema).await?;
    report
}

/// Prepares the shop at `url` (SQLite in a temporary directory when `None`), serves it and
/// drives the customers.
async fn run_on(
    database: &str,
    url: Option<String>,
    args: &CheckoutBenchArgs,
) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    eprintln!(
        "{database}: preparing {} customers and {SKUS} SKUs",
        args.customers
    );
    let db = super::flash::open(&url, dir.path()).await?;
    let shop = Shop::new(db.clone(), Arc::new(SystemClock), ShopConfig::default());
    let now = shop.now();
    let admin = fixtures::admin_actor(fixtures::accounts(&db, 1, Role::Admin, now).await?[0].0);
    for i in 0..SKUS {
        fixtures::stocked_sku(&shop, &admin, &format!("BENCH-{i}"), 10_000_000).await?;
    }
    set_tax_rate(&shop, CountryCode::parse("GB")?, None, "VAT".into(), 2000).await?;
    let method = NewShippingMethod {
        code: "uk-standard".into(),
        name: "UK standard".into(),
        countries: vec!["GB".into()],
        rate_minor: 395,
        currency: Currency::GBP,
        free_over_minor: Some(5000),
    };
    set_shipping_method(&shop, method).await?;
    let tokens: Vec<String> = fixtures::accounts(&db, args.customers, Role::Customer, now)
        .await?
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    db.close().await;
    let server = Server::spawn(dir, url.as_deref(), &[]).await?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds.max(1));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        tasks.push(tokio::spawn(customer(server.addr, token, i, deadline)));
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); STEPS.len()];
    let (mut completed, mut failed) = (0u64, 0u64);
    for t in tasks {
        let r = t.await??;
        completed += r.completed;
        failed += r.failed;
        for (all, mine) in samples.iter_mut().zip(r.latencies) {
            all.extend(mine);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Read the outcome from the database the server wrote.
    let check = super::flash::open(&url, server.data_dir()).await;
    let steps: Vec<StepReport> = STEPS
        .iter()
        .zip(samples.iter_mut())
        .map(|(step, s)| {
            s.sort_by(f64::total_cmp);
            StepReport {
                step: (*step).to_owned(),
                p50_ms: quantile(s, 0.5),
                p99_ms: quantile(s, 0.99),
            }
        })
        .collect();
    let mut report = Report {
        database: database.to_owned(),
        checkouts_per_sec: completed as f64 / elapsed,
        completed,
        failed,
        p99_ms: steps.iter().map(|s| s.p99_ms).fold(0.0, f64::max),
        steps,
        ..Report::default()
    };
    let db = check?;
    let (paid, succeeded, duplicate_charges) = emporium_store::payments::integrity(&db).await?;
    let (duplicate_orders, ordered, committed) =
        emporium_store::payments::checkout_integrity(&db).await?;
    report.paid_orders = paid;
    report.payments_succeeded = succeeded;
    report.duplicate_charges = duplicate_charges;
    report.duplicate_orders = duplicate_orders;
    report.units_in_paid_orders = ordered;
    report.units_committed = committed;
    report.integrity_ok = paid == succeeded
        && ordered == committed
        && duplicate_orders == 0
        && duplicate_charges == 0
        && paid as u64 >= completed;
    db.close().await;
    server.stop().await;
    Ok(report)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct CustomerReport {
    completed: u64,
    failed: u64,
    latencies: Vec<Vec<f64>>,
}

/// One customer's journeys until the deadline, on one keep-alive connection.
async fn customer(
    addr: SocketAddr,
    token: String,
    n: usize,
    deadline: Instant,
) -> anyhow::Result<CustomerReport> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut out = CustomerReport {
        completed: 0,
        failed: 0,
        latencies: vec![Vec::new(); STEPS.len()],
    };
    let mut journey = 0usize;
    while Instant::now() < deadline {
        journey += 1;
        let sku = format!("BENCH-{}", (n + journey) % SKUS);
        match one_journey(&mut sender, addr, &token, &sku, &mut out.latencies).await {
            Ok(true) => out.completed += 1,
            Ok(false) => out.failed += 1,
            Err(e) => {
                out.failed += 1;
                eprintln!("journey error: {e:#}");
                break;
            }
        }
    }
    Ok(out)
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn call(
    sender: &mut Sender,
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value, f64)> {
    sender.ready().await?;
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::new(
            body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
        ))?;
    let started = Instant::now();
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ms,
    ))
}

async fn one_journey(
    sender: &mut Sender,
    addr: SocketAddr,
    token: &str,
    sku: &str,
    lat: &mut [Vec<f64>],
) -> anyhow::Result<bool> {
    let (status, cart, ms) = call(
        sender,
        addr,
        token,
        "POST",
        "/api/v1/carts",
        Some(json!({})),
    )
    .await?;
    lat[0].push(ms);
    if status != 201 {
        return Ok(false);
    }
    let id = cart["id"].as_str().context("cart id")?.to_owned();
    let (status, _, ms) = call(
        sender,
        addr,
        token,
        "POST",
        &format!("/api/v1/carts/{id}/items"),
        Some(json!({"sku": sku, "quantity": 1})),
    )
    .await?;
    lat[1].push(ms);
    if status != 200 {
        return Ok(false);
    }
    let body = json!({
        "cart_id": id,
        "shipping_address": {"name": "Bench Shopper", "line1": "1 High St", "city": "London", "postal_code": "N1 1AA", "country": "GB"},
        "payment_method": {"type": "card", "token": "tok_success"},
    });
    let (status, placed, ms) =
        call(sender, addr, token, "POST", "/api/v1/checkout", Some(body)).await?;
    lat[2].push(ms);
    if status != 201 || placed["status"] != "paid" {
        return Ok(false);
    }
    let order = placed["order_id"].as_str().context("order id")?;
    let (status, shown, ms) = call(
        sender,
        addr,
        token,
        "GET",
        &format!("/api/v1/orders/{order}"),
        None,
    )
    .await?;
    lat[3].push(ms);
    Ok(status == 200 && shown["status"] == "paid")
}
