//! CPU per request inside the application (no TCP): `GET /healthz` against the sold-out
//! answer of a flash sale, alternating rounds on one thread. A tool for comparing designs of
//! the sold-out path; the HTTP figures come from `emporium bench flash-sale`.
//!
//! `cargo run --release -p emporium --example sold_out [rounds]`

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, header};
use emporium::fixtures;
use emporium_domain::identity::Role;
use emporium_shop::inventory::flash::{self, NewFlashSale};
use emporium_shop::{Shop, ShopConfig, SystemClock};
use emporium_store::{Db, DbConfig};
use http_body_util::BodyExt;
use tower::ServiceExt;

const PER_ROUND: usize = 20_000;

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(rounds))
}

async fn run(rounds: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = Db::connect(&DbConfig::sqlite_in(dir.path())).await?;
    db.migrate().await?;
    let shop = Shop::new(db.clone(), Arc::new(SystemClock), ShopConfig::default());
    let now = shop.now();
    let admin = fixtures::admin_actor(fixtures::accounts(&db, 1, Role::Admin, now).await?[0].0);
    let variant = fixtures::stocked_sku(&shop, &admin, "FLASH-1", 10).await?;
    let new = NewFlashSale {
        variant,
        price: flash::price(19_900, "GBP")?,
        starts_at: now - chrono::Duration::seconds(1),
        ends_at: now + chrono::Duration::hours(2),
        quantity: 1,
        per_customer_limit: 1,
    };
    let sale = flash::create(&shop, &admin, "FLASH-1", new).await?.id;
    let shoppers = fixtures::accounts(&db, 2, Role::Customer, now).await?;
    let app = emporium_web::app(
        emporium_web::AppState::new(shop),
        &emporium_web::HttpConfig::default(),
    );
    let path = format!("/api/v1/flash-sales/{sale}/reserve");
    let reserve = |token: &str| {
        Request::post(&path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, "14")
            .body(Body::from(r#"{"quantity":1}"#))
    };
    let first = app.clone().oneshot(reserve(&shoppers[0].1)?).await?;
    anyhow::ensure!(first.status() == 201, "the one unit: {}", first.status());
    let healthz = || Request::get("/healthz").body(Body::empty());
    for round in 0..rounds {
        let mut per = [0.0; 2];
        for (i, slot) in per.iter_mut().enumerate() {
            let started = Instant::now();
            for _ in 0..PER_ROUND {
                let request = if i == 0 {
                    healthz()?
                } else {
                    reserve(&shoppers[1].1)?
                };
                let response = app.clone().oneshot(request).await?;
                let expected = if i == 0 { 200 } else { 409 };
                anyhow::ensure!(response.status() == expected, "{}", response.status());
                response.into_body().collect().await?;
            }
            *slot = started.elapsed().as_secs_f64() * 1e9 / PER_ROUND as f64;
        }
        println!(
            "round {round}: healthz {:.0} ns, sold out {:.0} ns, ratio {:.2}",
            per[0],
            per[1],
            per[0] / per[1]
        );
    }
    Ok(())
}
