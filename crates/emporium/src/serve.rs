//! Starting a node: open the database (creating the data directory), migrate, load the demo
//! data when asked, serve HTTP with the worker in-process, and shut down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use emporium_search::{RankingConfig, SearchIndex};
use emporium_shop::demo::{self, DemoAccount};
use emporium_shop::idempotency::IdempotencyConfig;
use emporium_shop::inventory::engine::{EngineConfig, EngineMode};
use emporium_shop::{Shop, ShopConfig, SystemClock};
use emporium_store::{Db, DbConfig};
use emporium_web::{AppState, HttpConfig};
use rand::Rng;
use tokio::sync::watch;

use crate::cli::{DbArgs, ServeArgs};

/// Connects to the configured database and applies migrations.
pub async fn open_db(args: &DbArgs) -> anyhow::Result<Db> {
    let config = match &args.database_url {
        Some(url) => DbConfig {
            url: url.clone(),
            max_connections: args.db_connections,
            schema: None,
            sqlite_writer_priority: args.writer_priority(),
        },
        None => {
            std::fs::create_dir_all(&args.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory {}",
                    args.data_dir.display()
                )
            })?;
            DbConfig {
                sqlite_writer_priority: args.writer_priority(),
                ..DbConfig::sqlite_in(&args.data_dir)
            }
        }
    };
    let db = Db::connect(&config)
        .await
        .context("cannot open the database")?;
    db.migrate().await.context("cannot migrate the database")?;
    Ok(db)
}

/// Opens this node's search index in the data directory (rebuilt from the database by the
/// worker when it is new or of an older schema version).
pub fn open_search(args: &DbArgs) -> anyhow::Result<Arc<SearchIndex>> {
    let dir = args.data_dir.join("search");
    let index = SearchIndex::open(&dir, RankingConfig::default()).with_context(|| {
        format!(
            "cannot open the search index in {} (does another process use this data directory?)",
            dir.display()
        )
    })?;
    Ok(Arc::new(index))
}

/// `emporium reindex`: rebuilds the search index from the database.
pub async fn reindex(args: &DbArgs) -> anyhow::Result<()> {
    let db = open_db(args).await?;
    let shop = Shop::new(db.clone(), Arc::new(SystemClock), ShopConfig::default());
    shop.search.attach(open_search(args)?);
    let started = std::time::Instant::now();
    let count = emporium_shop::search::feed::rebuild(&shop).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "search index rebuilt: {count} products in {secs:.2} s ({:.0} products/s)",
        count as f64 / secs.max(1e-9)
    );
    db.close().await;
    Ok(())
}

pub async fn migrate(args: &DbArgs) -> anyhow::Result<()> {
    let db = open_db(args).await?;
    tracing::info!(backend = ?db.backend(), "migrations applied");
    db.close().await;
    Ok(())
}

pub async fn seed(args: &DbArgs) -> anyhow::Result<()> {
    let db = open_db(args).await?;
    let shop = Shop::new(db.clone(), Arc::new(SystemClock), ShopConfig::default());
    load_demo(&shop).await?;
    db.close().await;
    Ok(())
}

/// Loads the demo catalog and accounts into an empty database and prints the accounts
/// (generated passwords are shown only this once).
async fn load_demo(shop: &Shop) -> anyhow::Result<()> {
    let admin = demo_account("ADMIN", "admin@example.com");
    let seller = demo_account("SELLER", "seller@example.com");
    match demo::load_if_empty(shop, crate::DEMO_CATALOG, admin, seller).await? {
        None => tracing::info!("the catalog already has products; demo data not loaded again"),
        Some(report) => {
            println!(
                "Demo shop loaded: {} categories, {} products (UCI Online Retail, CC BY 4.0).",
                report.categories, report.products
            );
            for (role, account) in [("admin", &report.admin), ("seller", &report.seller)] {
                let shown = if account.generated {
                    account.password.as_str()
                } else {
                    "(from the environment)"
                };
                println!("  {role}: {}  password: {shown}", account.email);
            }
        }
    }
    Ok(())
}

fn demo_account(role: &str, default_email: &str) -> DemoAccount {
    let email = std::env::var(format!("EMPORIUM_{role}_EMAIL"))
        .unwrap_or_else(|_| default_email.to_owned());
    match std::env::var(format!("EMPORIUM_{role}_PASSWORD")) {
        Ok(password) => DemoAccount {
            email,
            password,
            generated: false,
        },
        Err(_) => DemoAccount {
            email,
            password: rand::rng()
                .sample_iter(rand::distr::Alphanumeric)
                .take(20)
                .map(char::from)
                .collect(),
            generated: true,
        },
    }
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let db = open_db(&args.db).await?;
    let mode = match args.reservation_mode.as_str() {
        "batched" => EngineMode::Batched,
        "naive" => EngineMode::Naive,
        other => anyhow::bail!("--reservation-mode must be batched or naive, not {other}"),
    };
    let request_timeout = Duration::from_secs(args.request_timeout_secs.max(1));
    let config = ShopConfig {
        idempotency: idempotency_config(request_timeout),
        engine: EngineConfig {
            mode,
            max_batch: args.batch_max.max(1),
            max_wait: Duration::from_micros(args.batch_wait_us),
            max_queue: args.max_queue.max(1),
        },
        ..ShopConfig::default()
    };
    let shop = Shop::new(db.clone(), Arc::new(SystemClock), config);
    shop.search.attach(open_search(&args.db)?);
    if args.demo {
        load_demo(&shop).await?;
    }
    let http = HttpConfig {
        max_body_bytes: args.max_body_bytes,
        request_timeout,
    };
    let app = emporium_web::app(AppState::new(shop.clone()), &http);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let worker = tokio::spawn(emporium_worker::run(shop.clone(), stopped.clone()));
    tokio::spawn(emporium_worker::payments::deliver_webhooks(
        shop.clone(),
        format!("http://{addr}"),
        stopped,
    ));
    tracing::info!(%addr, backend = ?db.backend(), "serving");
    println!("emporium listening on http://{addr}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    tracing::info!("in-flight requests finished; stopping the worker");
    let _ = stop.send(true);
    if let Err(e) = worker.await {
        tracing::warn!(error = %e, "the worker ended abnormally");
    }
    db.close().await;
    Ok(())
}

/// An in-flight claim must outlive the longest request, or a retry could take over a claim
/// whose request still runs.
fn idempotency_config(request_timeout: Duration) -> IdempotencyConfig {
    let default = IdempotencyConfig::default();
    let longest = chrono::Duration::from_std(request_timeout)
        .ok()
        .and_then(|t| t.checked_add(&chrono::Duration::minutes(1)))
        .unwrap_or(default.retention);
    IdempotencyConfig {
        // Past the retention the key is gone anyway.
        in_flight_lease: longest.clamp(default.in_flight_lease, default.retention),
        ..default
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested");
}
