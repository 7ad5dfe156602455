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
use hyper::header::HeaderValue;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

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
///
/// The generator shares the machine with the server it measures, so it spends as little as
/// it can per request: headers and the fixed parts of bodies are made once, and from each
/// answer only the fields the journey goes on with are decoded (the rest is skipped
/// unparsed), not the whole document.
async fn customer(
    addr: SocketAddr,
    token: String,
    n: usize,
    deadline: Instant,
) -> anyhow::Result<CustomerReport> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut client = Client {
        sender,
        host: HeaderValue::try_from(addr.to_string())?,
        bearer: super::load::bearer(&token)?,
    };
    let mut out = CustomerReport {
        completed: 0,
        failed: 0,
        latencies: vec![Vec::new(); STEPS.len()],
    };
    let mut journey = 0usize;
    while Instant::now() < deadline {
        journey += 1;
        let sku = format!("BENCH-{}", (n + journey) % SKUS);
        match one_journey(&mut client, &sku, &mut out.latencies).await {
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

/// A customer's connection and the headers every request of theirs carries.
struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: HeaderValue,
    bearer: HeaderValue,
}

impl Client {
    /// Sends one request; returns the status, the body and the time to the answer's end.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<(u16, Bytes, f64)> {
        self.sender.ready().await?;
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.host.clone())
            .header(hyper::header::CONTENT_TYPE, JSON.clone())
            .header(hyper::header::AUTHORIZATION, self.bearer.clone())
            .body(Full::new(body))?;
        let started = Instant::now();
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes, started.elapsed().as_secs_f64() * 1000.0))
    }
}

static JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The fields of a created cart the journey needs.
#[derive(Deserialize)]
struct CreatedCart {
    id: uuid::Uuid,
}

/// The fields of a checkout's (and an order's) answer the journey needs.
#[derive(Deserialize)]
struct OrderAnswer {
    #[serde(alias = "id")]
    order_id: Option<uuid::Uuid>,
    status: String,
}

/// The checkout's body for cart `id`: only the cart differs between journeys.
fn checkout_body(id: uuid::Uuid) -> Bytes {
    Bytes::from(format!(
        r#"{{"cart_id":"{id}","shipping_address":{{"name":"Bench Shopper","line1":"1 High St","city":"London","postal_code":"N1 1AA","country":"GB"}},"payment_method":{{"type":"card","token":"tok_success"}}}}"#
    ))
}

async fn one_journey(client: &mut Client, sku: &str, lat: &mut [Vec<f64>]) -> anyhow::Result<bool> {
    let (status, cart, ms) = client
        .call(Method::POST, "/api/v1/carts", Bytes::from_static(b"{}"))
        .await?;
    lat[0].push(ms);
    if status != 201 {
        return Ok(false);
    }
    let id = serde_json::from_slice::<CreatedCart>(&cart)
        .context("cart id")?
        .id;
    let item = Bytes::from(format!(r#"{{"sku":"{sku}","quantity":1}}"#));
    let (status, _, ms) = client
        .call(Method::POST, &format!("/api/v1/carts/{id}/items"), item)
        .await?;
    lat[1].push(ms);
    if status != 200 {
        return Ok(false);
    }
    let (status, placed, ms) = client
        .call(Method::POST, "/api/v1/checkout", checkout_body(id))
        .await?;
    lat[2].push(ms);
    let placed = serde_json::from_slice::<OrderAnswer>(&placed).ok();
    let Some(order) = placed
        .filter(|p| status == 201 && p.status == "paid")
        .and_then(|p| p.order_id)
    else {
        return Ok(false);
    };
    let (status, shown, ms) = client
        .call(
            Method::GET,
            &format!("/api/v1/orders/{order}"),
            Bytes::new(),
        )
        .await?;
    lat[3].push(ms);
    let shown = serde_json::from_slice::<OrderAnswer>(&shown).ok();
    Ok(status == 200 && shown.is_some_and(|o| o.status == "paid"))
}
