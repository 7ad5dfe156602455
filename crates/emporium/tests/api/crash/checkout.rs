//! SIGKILL in the middle of checkouts, on the database the tests run on. Customers run the
//! whole journey (cart, item, checkout with a mix of cards) from 32 connections while the
//! server is killed; then, on a restarted server, every acknowledged order is there as it
//! was answered and a checkout retried by a customer who got no answer finds the order its
//! cart already has. Once the reconciliation job has run, nothing is half-done: every order
//! is paid (one captured payment, its reservation committed, its cart checked out) or
//! cancelled (no capture, its reservation released, its cart open again), no cart has two
//! live orders, and the stock equation holds with nothing left reserved.
//!
//! The test gateway lives in the server's memory and dies with it, like a provider that has
//! not heard of a charge: after the restart the reconciliation learns "not submitted" for
//! every payment left open, so the orders the crash interrupted are cancelled. Completing an
//! order from a capture the provider remembers is tested in `checkout::payments`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use emporium_shop::pricing::{NewShippingMethod, set_shipping_method, set_tax_rate};
use emporium_shop::{ManualClock, Shop, ShopConfig, SystemClock};
use emporium_store::{Db, DbConfig};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::harness::{self, PHASE, Server, assert_stock_equation};

const SKU: &str = "CRASH-CHECKOUT";
const UNITS: i64 = 1_000_000;
const TASKS: usize = 32;
const KILL_ROUNDS: usize = 2;
const CUSTOMERS_PER_ROUND: usize = 1_500;
/// Cards by customer index: paid within the call, paid later by webhook, waiting for the
/// customer's confirmation.
const CARDS: [&str; 4] = [
    "tok_success",
    "tok_success",
    "tok_async",
    "tok_requires_action",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_during_checkouts_leaves_every_order_whole() {
    tokio::time::timeout(Duration::from_secs(120), sigkill_during_checkouts())
        .await
        .expect("the test did not finish within 120 s");
}

/// What one HTTP call got back.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    /// 2xx naming an order: (order id, order status).
    Placed(Uuid, String),
    /// A definite answer without an order: (status, problem code).
    Refused(u16, String),
    /// No complete answer: the server died.
    NoAnswer,
}

#[derive(Debug, Clone)]
struct Journey {
    customer: usize,
    /// The cart, once its creation was answered.
    cart: Option<Uuid>,
    /// The checkout's answer, when the journey got that far.
    checkout: Option<Reply>,
}

async fn sigkill_during_checkouts() {
    let dir = tempfile::tempdir().unwrap();
    let (config, url, schema) = database(dir.path()).await;
    let customers = prepare(&config, KILL_ROUNDS * CUSTOMERS_PER_ROUND).await;
    let data_dir = dir.path().join("node");
    let mut journeys = Vec::new();
    for (round, group) in customers.chunks(CUSTOMERS_PER_ROUND).enumerate() {
        let offset = round * CUSTOMERS_PER_ROUND;
        journeys.extend(checkouts_then_kill(&data_dir, url.as_deref(), offset, group).await);
    }
    let server = Server::start(&data_dir, url.as_deref()).await;
    let retried = retry_unanswered(&server.addr, &customers, &journeys).await;
    assert_acknowledged_orders(&server.addr, &customers, &journeys).await;
    server.stop().await;

    let db = Db::connect(&config).await.unwrap();
    reconcile_after_the_payment_window(&db).await;
    let rows = Rows::read(
        &db,
        url.is_none().then(|| dir.path().join("node/emporium.db")),
    )
    .await;
    let sold = rows.assert_nothing_half_done();
    rows.assert_journeys(&journeys, &retried);
    let on_hand = assert_stock_equation(&db, 0).await;
    assert_eq!(on_hand, UNITS - sold, "on hand = received - sold");
    let (paid, succeeded, duplicate_charges) =
        emporium_store::payments::integrity(&db).await.unwrap();
    let (duplicate_orders, ordered, committed) = emporium_store::payments::checkout_integrity(&db)
        .await
        .unwrap();
    assert_eq!((paid, duplicate_charges), (succeeded, 0));
    assert_eq!((duplicate_orders, ordered), (0, committed));
    println!(
        "after {KILL_ROUNDS} kills and reconciliation: {} orders, {paid} paid, {sold} units sold",
        rows.orders.len()
    );
    #[cfg(pg_tests)]
    if let Some(schema) = schema {
        harness::drop_schema(&db, &schema).await;
    }
    #[cfg(not(pg_tests))]
    let _ = schema;
    db.close().await;
}

/// SQLite in `dir` by default; a fresh schema of the PostgreSQL test database when
/// `EMPORIUM_TEST_DATABASE_URL` is set. Returns (config, URL for the servers, schema).
async fn database(dir: &Path) -> (DbConfig, Option<String>, Option<String>) {
    #[cfg(pg_tests)]
    {
        let _ = dir;
        let (url, schema) = harness::fresh_schema().await;
        (harness::postgres_config(&url), Some(url), Some(schema))
    }
    #[cfg(not(pg_tests))]
    {
        std::fs::create_dir_all(dir.join("node")).unwrap();
        (DbConfig::sqlite_in(&dir.join("node")), None, None)
    }
}

/// A shop ready to sell one SKU to GB addresses, and `customers` customers with live
/// sessions: (user id, token).
async fn prepare(config: &DbConfig, customers: usize) -> Vec<(Uuid, String)> {
    let out = harness::prepare(config, &[(SKU, UNITS)], customers).await;
    let db = Db::connect(config).await.unwrap();
    let shop = Shop::new(db.clone(), Arc::new(SystemClock), ShopConfig::default());
    let gb = emporium_domain::identity::CountryCode::parse("GB").unwrap();
    set_tax_rate(&shop, gb, None, "VAT".into(), 2000)
        .await
        .unwrap();
    let method = NewShippingMethod {
        code: "uk-standard".into(),
        name: "UK standard".into(),
        countries: vec!["GB".into()],
        rate_minor: 395,
        currency: emporium_domain::money::Currency::GBP,
        free_over_minor: Some(5000),
    };
    set_shipping_method(&shop, method).await.unwrap();
    db.close().await;
    out
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> Option<(u16, Value)> {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.ok()?;
    let status = response.status().as_u16();
    let body = response.json().await.ok()?;
    Some((status, body))
}

async fn checkout(
    client: &reqwest::Client,
    addr: &str,
    token: &str,
    cart: Uuid,
    card: &str,
) -> Reply {
    let body = json!({
        "cart_id": cart,
        "shipping_address": {"name": "Crash Tester", "line1": "1 High St", "city": "London", "postal_code": "N1 1AA", "country": "GB"},
        "payment_method": {"type": "card", "token": card},
    });
    let url = format!("http://{addr}/api/v1/checkout");
    match send(client, reqwest::Method::POST, url, token, Some(body)).await {
        None => Reply::NoAnswer,
        Some((status, body)) => match (status, body["order_id"].as_str()) {
            (200..=299, Some(id)) => Reply::Placed(
                id.parse().unwrap(),
                body["status"].as_str().unwrap_or("").to_owned(),
            ),
            _ => Reply::Refused(status, body["code"].as_str().unwrap_or("").to_owned()),
        },
    }
}

/// Create a cart, add one unit, check out with the customer's card.
async fn journey(client: &reqwest::Client, addr: &str, customer: usize, token: &str) -> Journey {
    let mut journey = Journey {
        customer,
        cart: None,
        checkout: None,
    };
    let url = format!("http://{addr}/api/v1/carts");
    let created = send(client, reqwest::Method::POST, url, token, Some(json!({}))).await;
    let Some((201, cart)) = created else {
        return journey;
    };
    let cart: Uuid = cart["id"].as_str().unwrap().parse().unwrap();
    journey.cart = Some(cart);
    let url = format!("http://{addr}/api/v1/carts/{cart}/items");
    let item = json!({"sku": SKU, "quantity": 1});
    let added = send(client, reqwest::Method::POST, url, token, Some(item)).await;
    if !matches!(added, Some((200, _))) {
        return journey;
    }
    let card = CARDS[customer % CARDS.len()];
    journey.checkout = Some(checkout(client, addr, token, cart, card).await);
    journey
}

#[derive(Default)]
struct Load {
    stop: AtomicBool,
    next: AtomicUsize,
    placed: AtomicUsize,
    running: AtomicUsize,
}

/// Starts a server, runs journeys of the customers in `group` (customers `offset..`) from
/// 32 connections and kills the server with SIGKILL while they are in flight.
async fn checkouts_then_kill(
    data_dir: &Path,
    url: Option<&str>,
    offset: usize,
    group: &[(Uuid, String)],
) -> Vec<Journey> {
    let server = Server::start(data_dir, url).await;
    let load = Arc::new(Load::default());
    let tokens: Arc<Vec<String>> = Arc::new(group.iter().map(|(_, t)| t.clone()).collect());
    let client = harness::client();
    load.running.store(TASKS, Ordering::SeqCst);
    let handles: Vec<JoinHandle<Vec<Journey>>> = (0..TASKS)
        .map(|_| {
            let (load, tokens, client) = (load.clone(), tokens.clone(), client.clone());
            let addr = server.addr.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                while !load.stop.load(Ordering::SeqCst) {
                    let i = load.next.fetch_add(1, Ordering::SeqCst);
                    let Some(token) = tokens.get(i) else { break };
                    let done = journey(&client, &addr, offset + i, token).await;
                    if matches!(done.checkout, Some(Reply::Placed(..))) {
                        load.placed.fetch_add(1, Ordering::SeqCst);
                    }
                    out.push(done);
                }
                load.running.fetch_sub(1, Ordering::SeqCst);
                out
            })
        })
        .collect();
    let started = Instant::now();
    loop {
        let placed = load.placed.load(Ordering::SeqCst);
        let elapsed = started.elapsed();
        let enough = placed >= 150 || (placed > 0 && elapsed >= Duration::from_secs(1));
        if enough || elapsed >= PHASE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    load.stop.store(true, Ordering::SeqCst);
    let running_at_kill = load.running.load(Ordering::SeqCst);
    server.kill().await;
    let joined = tokio::time::timeout(PHASE, futures::future::join_all(handles)).await;
    let journeys: Vec<Journey> = joined
        .expect("the customers did not finish in time")
        .into_iter()
        .flat_map(|h| h.unwrap())
        .collect();
    let placed = journeys
        .iter()
        .filter(|j| matches!(j.checkout, Some(Reply::Placed(..))))
        .count();
    let unanswered = journeys
        .iter()
        .filter(|j| j.checkout == Some(Reply::NoAnswer))
        .count();
    println!(
        "SIGKILL after {} ms: {} journeys, {placed} checkouts answered with an order, \
         {unanswered} checkouts without an answer",
        started.elapsed().as_millis(),
        journeys.len()
    );
    assert!(placed > 0, "no checkout was acknowledged before the kill");
    assert_eq!(running_at_kill, TASKS, "the kill came after the load ended");
    assert!(journeys.len() < group.len(), "every customer was used up");
    journeys
}

/// Each customer whose checkout got no answer sends it again, as a client would: it must
/// get an order. Returns cart → the order the retry was answered with.
async fn retry_unanswered(
    addr: &str,
    customers: &[(Uuid, String)],
    journeys: &[Journey],
) -> HashMap<Uuid, Uuid> {
    let client = harness::client();
    let mut retried = HashMap::new();
    for j in journeys {
        let (Some(cart), Some(Reply::NoAnswer)) = (j.cart, &j.checkout) else {
            continue;
        };
        let card = CARDS[j.customer % CARDS.len()];
        match checkout(&client, addr, &customers[j.customer].1, cart, card).await {
            Reply::Placed(order, _) => retried.insert(cart, order),
            other => panic!("retried checkout of cart {cart}: {other:?}"),
        };
    }
    retried
}

/// Every acknowledged order is readable on the restarted server; one answered `paid` is paid.
async fn assert_acknowledged_orders(
    addr: &str,
    customers: &[(Uuid, String)],
    journeys: &[Journey],
) {
    let client = harness::client();
    for j in journeys {
        let Some(Reply::Placed(order, status)) = &j.checkout else {
            continue;
        };
        let url = format!("http://{addr}/api/v1/orders/{order}");
        let token = &customers[j.customer].1;
        let (code, body) = send(&client, reqwest::Method::GET, url, token, None)
            .await
            .expect("the restarted server answers");
        assert_eq!(code, 200, "acknowledged order {order} lost: {body}");
        if status == "paid" {
            assert_eq!(body["status"], "paid", "order {order}: {body}");
        }
    }
}

/// Runs the reconciliation job as a node would once every payment window has ended, until
/// it has nothing left to do.
async fn reconcile_after_the_payment_window(db: &Db) {
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let shop = Shop::new(
        db.clone(),
        Arc::new(ManualClock::new(later)),
        ShopConfig::default(),
    );
    for _ in 0..100 {
        let done = emporium_shop::payments::reconcile_once(&shop)
            .await
            .unwrap();
        if done.is_idle() {
            return;
        }
    }
    panic!("the reconciliation did not settle");
}

/// What the database holds once everything settled.
struct Rows {
    /// order → (cart, status, reservation)
    orders: HashMap<Uuid, (Uuid, String, Uuid)>,
    /// cart → status
    carts: HashMap<Uuid, String>,
    /// order → payment statuses
    payments: HashMap<Uuid, Vec<String>>,
    /// reservation → status
    reservations: HashMap<Uuid, String>,
}

const ORDERS: &str = "SELECT id, cart_id, status, reservation_id FROM orders";
const CARTS: &str = "SELECT id, status FROM carts";
const PAYMENTS: &str = "SELECT order_id, status FROM payments";
const RESERVATIONS: &str = "SELECT id, status FROM reservations";

impl Rows {
    async fn read(db: &Db, sqlite_file: Option<PathBuf>) -> Self {
        type Pairs = Vec<(Uuid, String)>;
        type Tables = (Vec<(Uuid, Uuid, String, Uuid)>, Pairs, Pairs, Pairs);
        let (orders, carts, payments, reservations): Tables = match (db.postgres(), sqlite_file) {
            (Some(pg), _) => (
                sqlx::query_as(ORDERS).fetch_all(pg).await.unwrap(),
                sqlx::query_as(CARTS).fetch_all(pg).await.unwrap(),
                sqlx::query_as(PAYMENTS).fetch_all(pg).await.unwrap(),
                sqlx::query_as(RESERVATIONS).fetch_all(pg).await.unwrap(),
            ),
            (None, Some(file)) => {
                let url = format!("sqlite://{}?mode=ro", file.display());
                let lite = sqlx::SqlitePool::connect(&url).await.unwrap();
                let rows = (
                    sqlx::query_as(ORDERS).fetch_all(&lite).await.unwrap(),
                    sqlx::query_as(CARTS).fetch_all(&lite).await.unwrap(),
                    sqlx::query_as(PAYMENTS).fetch_all(&lite).await.unwrap(),
                    sqlx::query_as(RESERVATIONS).fetch_all(&lite).await.unwrap(),
                );
                lite.close().await;
                rows
            }
            (None, None) => panic!("a SQLite database needs its file"),
        };
        let mut by_order: HashMap<Uuid, Vec<String>> = HashMap::new();
        for (order, status) in payments {
            by_order.entry(order).or_default().push(status);
        }
        Self {
            orders: orders
                .into_iter()
                .map(|(id, cart, status, reservation)| (id, (cart, status, reservation)))
                .collect(),
            carts: carts.into_iter().collect(),
            payments: by_order,
            reservations: reservations.into_iter().collect(),
        }
    }

    /// Every order is paid or cancelled with everything that goes with it; returns the units
    /// sold (one per paid order).
    fn assert_nothing_half_done(&self) -> i64 {
        let captured = ["succeeded", "partially_refunded", "refunded"];
        let mut live_carts = HashSet::new();
        let mut sold = 0;
        for (order, (cart, status, reservation)) in &self.orders {
            let payments = self.payments.get(order).cloned().unwrap_or_default();
            let reservation = self.reservations.get(reservation).map(String::as_str);
            let cart_status = self.carts.get(cart).map(String::as_str);
            match status.as_str() {
                "paid" => {
                    sold += 1;
                    assert!(live_carts.insert(*cart), "cart {cart} has two live orders");
                    assert_eq!(payments, vec!["succeeded".to_owned()], "paid order {order}");
                    assert_eq!(reservation, Some("committed"), "paid order {order}");
                    assert_eq!(cart_status, Some("checked_out"), "paid order {order}");
                }
                "cancelled" => {
                    let charged = payments.iter().filter(|p| captured.contains(&p.as_str()));
                    assert_eq!(charged.count(), 0, "cancelled order {order}: {payments:?}");
                    assert!(
                        payments
                            .iter()
                            .all(|p| ["failed", "voided"].contains(&p.as_str())),
                        "cancelled order {order} has an open payment: {payments:?}"
                    );
                    assert!(
                        matches!(reservation, Some("released" | "expired")),
                        "cancelled order {order}: reservation {reservation:?}"
                    );
                }
                other => panic!("order {order} left {other}"),
            }
        }
        for (cart, status) in &self.carts {
            let live = live_carts.contains(cart);
            assert_eq!(
                status == "checked_out",
                live,
                "cart {cart} is {status} with a live order: {live}"
            );
        }
        let active = self
            .reservations
            .values()
            .filter(|s| *s == "active")
            .count();
        assert_eq!(active, 0, "reservations left active");
        assert_eq!(
            self.reservations.len(),
            self.orders.len(),
            "a reservation without its order, or an order without its reservation"
        );
        sold
    }

    /// What the customers were told holds: an order answered `paid` is paid; any order
    /// answered is there; a retried checkout's order is its cart's only order; a cart whose
    /// checkout was never sent or refused has none.
    fn assert_journeys(&self, journeys: &[Journey], retried: &HashMap<Uuid, Uuid>) {
        let mut of_cart: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (order, (cart, ..)) in &self.orders {
            of_cart.entry(*cart).or_default().push(*order);
        }
        for j in journeys {
            let Some(cart) = j.cart else { continue };
            let orders = of_cart.get(&cart).cloned().unwrap_or_default();
            match &j.checkout {
                Some(Reply::Placed(order, status)) => {
                    assert_eq!(orders, vec![*order], "cart {cart}");
                    if status == "paid" {
                        assert_eq!(self.orders[order].1, "paid", "order {order}");
                    }
                }
                Some(Reply::NoAnswer) => {
                    assert_eq!(orders, vec![retried[&cart]], "retried cart {cart}");
                }
                Some(Reply::Refused(..)) | None => {
                    assert!(
                        orders.is_empty(),
                        "cart {cart} without a checkout: {orders:?}"
                    )
                }
            }
        }
    }
}
