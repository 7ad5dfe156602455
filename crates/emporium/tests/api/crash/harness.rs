//! Machinery of the process-level tests: `Server` (one `emporium serve` child), `prepare`
//! (data written directly before any server starts), the load generator (`Load`,
//! `reserve`) and the checks. Every wait is bounded, so a hang fails instead of blocking CI.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use emporium::fixtures;
use emporium_domain::identity::Role;
use emporium_shop::{Shop, ShopConfig, SystemClock};
use emporium_store::{Db, DbConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Longest any single phase (start-up, load, shutdown) may take.
pub const PHASE: Duration = Duration::from_secs(30);

/// One `emporium serve` child process; killed if dropped while running.
pub struct Server {
    pub addr: String,
    child: tokio::process::Child,
}

impl Server {
    pub async fn start(data_dir: &Path, database_url: Option<&str>) -> Self {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_emporium"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if let Some(url) = database_url {
            cmd.arg("--database-url").arg(url);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(PHASE, async {
            loop {
                let line = lines.next_line().await.unwrap();
                let line = line.expect("the server exited before listening");
                if let Some(addr) = line.strip_prefix("emporium listening on http://") {
                    return addr.to_owned();
                }
            }
        })
        .await
        .expect("the server did not start in time");
        // Keep draining stdout so that the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { addr, child }
    }

    fn pid(&self) -> String {
        self.child.id().expect("the server is running").to_string()
    }

    /// SIGKILL: no graceful shutdown, no chance to flush anything.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        let status = tokio::time::timeout(PHASE, self.child.wait()).await;
        let status = status.expect("the killed server did not go away").unwrap();
        assert!(!status.success(), "killed, not exited");
    }

    /// SIGTERM, then waits for the clean exit.
    pub async fn stop(mut self) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(PHASE, self.child.wait()).await;
        let status = status.expect("the server did not stop in time").unwrap();
        assert!(status.success(), "{status:?}");
    }
}

/// Opens and migrates the database, stocks `skus` and makes `shoppers` customers with live
/// sessions; returns their (user id, token). The database is closed again before returning.
pub async fn prepare(
    config: &DbConfig,
    skus: &[(&str, i64)],
    shoppers: usize,
) -> Vec<(Uuid, String)> {
    let db = Db::connect(config).await.unwrap();
    db.migrate().await.unwrap();
    let shop = Shop::new(db.clone(), Arc::new(SystemClock), ShopConfig::default());
    let now = shop.now();
    let admin = fixtures::accounts(&db, 1, Role::Admin, now).await.unwrap()[0].0;
    let admin = fixtures::admin_actor(admin);
    for (sku, units) in skus {
        fixtures::stocked_sku(&shop, &admin, sku, *units)
            .await
            .unwrap();
    }
    let out = fixtures::accounts(&db, shoppers, Role::Customer, now)
        .await
        .unwrap();
    db.close().await;
    out
}

/// What one reservation attempt got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 201 with this reservation id: the grant was acknowledged.
    Created(Uuid),
    /// A definite refusal: status and problem code.
    Refused(u16, String),
    /// No (complete) answer: the connection failed or was reset.
    NoAnswer(String),
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

pub async fn reserve(client: &reqwest::Client, addr: &str, token: &str, sku: &str) -> Outcome {
    let sent = client
        .post(format!("http://{addr}/api/v1/reservations"))
        .bearer_auth(token)
        .json(&json!({"lines": [{"sku": sku, "quantity": 1}]}))
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => return Outcome::NoAnswer(format!("{e:?}")),
    };
    let status = response.status().as_u16();
    let body: Value = match response.json().await {
        Ok(body) => body,
        Err(e) => return Outcome::NoAnswer(format!("{status} without a body: {e:?}")),
    };
    match (status, body["id"].as_str()) {
        (201, Some(id)) => Outcome::Created(id.parse().unwrap()),
        _ => Outcome::Refused(status, body["code"].as_str().unwrap_or("").to_owned()),
    }
}

/// Concurrent shoppers: tasks take the next shopper (each is used once) until told to stop.
#[derive(Default)]
pub struct Load {
    pub stop: AtomicBool,
    pub next: AtomicUsize,
    pub created: AtomicUsize,
    pub running: AtomicUsize,
}

pub type Results = Vec<(usize, Outcome)>;

impl Load {
    /// Spawns `tasks` tasks working through `targets` (server address, token) in order.
    pub fn spawn(
        self: &Arc<Self>,
        tasks: usize,
        targets: Arc<Vec<(String, String)>>,
        sku: &'static str,
    ) -> Vec<JoinHandle<Results>> {
        let client = client();
        self.running.fetch_add(tasks, Ordering::SeqCst);
        (0..tasks)
            .map(|_| {
                let (load, targets, client) = (self.clone(), targets.clone(), client.clone());
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    while !load.stop.load(Ordering::SeqCst) {
                        let i = load.next.fetch_add(1, Ordering::SeqCst);
                        let Some((addr, token)) = targets.get(i) else {
                            break;
                        };
                        let outcome = reserve(&client, addr, token, sku).await;
                        if matches!(outcome, Outcome::Created(_)) {
                            load.created.fetch_add(1, Ordering::SeqCst);
                        }
                        out.push((i, outcome));
                    }
                    load.running.fetch_sub(1, Ordering::SeqCst);
                    out
                })
            })
            .collect()
    }
}

/// The outcome of every attempted shopper, by shopper index.
pub async fn collect(handles: Vec<JoinHandle<Results>>) -> HashMap<usize, Outcome> {
    let joined = tokio::time::timeout(PHASE, futures::future::join_all(handles)).await;
    let mut outcomes = HashMap::new();
    for results in joined.expect("the shoppers did not finish in time") {
        for (i, outcome) in results.unwrap() {
            assert!(
                outcomes.insert(i, outcome).is_none(),
                "shopper {i} used twice"
            );
        }
    }
    outcomes
}

/// (created, refused, no answer)
pub fn tally(outcomes: &HashMap<usize, Outcome>) -> (usize, usize, usize) {
    let count = |f: fn(&Outcome) -> bool| outcomes.values().filter(|o| f(o)).count();
    (
        count(|o| matches!(o, Outcome::Created(_))),
        count(|o| matches!(o, Outcome::Refused(..))),
        count(|o| matches!(o, Outcome::NoAnswer(_))),
    )
}

/// Every reservation in the database: user → [(id, status)].
pub async fn reservation_rows(
    db: &Db,
    sqlite_file: Option<&Path>,
) -> HashMap<Uuid, Vec<(Uuid, String)>> {
    const SQL: &str = "SELECT user_id, id, status FROM reservations ORDER BY id";
    let rows: Vec<(Uuid, Uuid, String)> = match (db.postgres(), sqlite_file) {
        (Some(pg), _) => sqlx::query_as(SQL).fetch_all(pg).await.unwrap(),
        (None, Some(file)) => {
            let url = format!("sqlite://{}?mode=ro", file.display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
        (None, None) => panic!("a SQLite database needs its file"),
    };
    let mut by_user: HashMap<Uuid, Vec<(Uuid, String)>> = HashMap::new();
    for (user, id, status) in rows {
        by_user.entry(user).or_default().push((id, status));
    }
    by_user
}

/// Asserts the stock equation and `reserved_units` reserved in all; returns units on hand.
pub async fn assert_stock_equation(db: &Db, reserved_units: i64) -> i64 {
    let (on_hand, reserved, held, earmarked) = emporium_store::reservations::stock_totals(db)
        .await
        .unwrap();
    let ledger = emporium_store::reservations::ledger_total(db)
        .await
        .unwrap();
    assert_eq!(on_hand, ledger, "on hand equals the ledger");
    assert_eq!(reserved, held + earmarked, "reserved = held + earmarked");
    assert!(
        on_hand >= reserved,
        "on hand {on_hand} < reserved {reserved}"
    );
    assert_eq!(reserved, reserved_units, "reserved units");
    on_hand
}

/// Per shopper: an acknowledged attempt left exactly its reservation, active; a refused or
/// unused shopper has none; an unanswered attempt left at most one, active. Returns the
/// number of reservations.
pub fn check_rows_per_shopper(
    shoppers: &[(Uuid, String)],
    outcomes: &HashMap<usize, Outcome>,
    rows: &HashMap<Uuid, Vec<(Uuid, String)>>,
) -> usize {
    let none = Vec::new();
    for (i, (user, _)) in shoppers.iter().enumerate() {
        let found = rows.get(user).unwrap_or(&none);
        match outcomes.get(&i) {
            Some(Outcome::Created(id)) => {
                assert_eq!(found, &vec![(*id, "active".to_owned())], "shopper {i}")
            }
            Some(Outcome::NoAnswer(_)) => {
                assert!(found.len() <= 1, "shopper {i}: {found:?}");
                assert!(
                    found.iter().all(|r| r.1 == "active"),
                    "shopper {i}: {found:?}"
                );
            }
            other => assert!(found.is_empty(), "shopper {i} ({other:?}) has {found:?}"),
        }
    }
    let total: usize = rows.values().map(Vec::len).sum();
    let of_shoppers: usize = shoppers
        .iter()
        .filter_map(|(u, _)| rows.get(u))
        .map(Vec::len)
        .sum();
    assert_eq!(total, of_shoppers, "reservations of users who never tried");
    total
}

/// The configuration of test processes on the PostgreSQL database at `url`.
#[cfg(pg_tests)]
pub fn postgres_config(url: &str) -> DbConfig {
    DbConfig {
        url: url.to_owned(),
        max_connections: 4,
        schema: None,
        sqlite_writer_priority: None,
    }
}

/// Drops a schema made by [`fresh_schema`].
#[cfg(pg_tests)]
pub async fn drop_schema(db: &Db, schema: &str) {
    let pg = db.postgres().expect("a PostgreSQL database");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(pg)
        .await
        .unwrap();
}

/// A fresh schema in the test database; returns the URL that selects it (for the servers
/// too) and the schema's name.
#[cfg(pg_tests)]
pub async fn fresh_schema() -> (String, String) {
    let base = std::env::var("EMPORIUM_TEST_DATABASE_URL").expect("EMPORIUM_TEST_DATABASE_URL");
    let schema = format!("test_{}", Uuid::now_v7().simple());
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    (
        format!("{base}{sep}options=-c%20search_path%3D{schema}"),
        schema,
    )
}
