//! The real binary as child processes under stress: a SIGKILL in the middle of a reservation
//! load loses no acknowledged reservation (SQLite), and three servers on one PostgreSQL
//! database never oversell nor let one shopper hold two reservations of a SKU. `checkout`
//! kills a server in the middle of checkouts, on either database.
//!
//! Layout: `harness` (child servers, data, load generator, checks), then the tests.

mod checkout;
pub(crate) mod harness;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use emporium_store::{Db, DbConfig};
use futures::StreamExt;
use serde_json::Value;
use uuid::Uuid;

use harness::{
    Load, Outcome, Server, assert_stock_equation, check_rows_per_shopper, collect, prepare,
    reservation_rows, tally,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_under_load_loses_no_acknowledged_reservation() {
    tokio::time::timeout(Duration::from_secs(90), sigkill_under_load())
        .await
        .expect("the test did not finish within 90 s");
}

/// Kill rounds on one data directory: an acknowledgement sent before its commit is caught
/// only when a kill lands in between, so more rounds catch it more surely.
const KILL_ROUNDS: usize = 3;
const SHOPPERS_PER_ROUND: usize = 1_000;

async fn sigkill_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let config = DbConfig::sqlite_in(dir.path());
    let units = 100_000;
    let shoppers = prepare(
        &config,
        &[("CRASH-1", units)],
        KILL_ROUNDS * SHOPPERS_PER_ROUND,
    )
    .await;
    let mut outcomes = HashMap::new();
    for (round, group) in shoppers.chunks(SHOPPERS_PER_ROUND).enumerate() {
        let got = load_then_kill(dir.path(), group).await;
        let offset = round * SHOPPERS_PER_ROUND;
        outcomes.extend(got.into_iter().map(|(i, o)| (offset + i, o)));
    }
    let (created, refused, no_answer) = tally(&outcomes);

    let server = Server::start(dir.path(), None).await;
    assert_acknowledged_are_active(&server.addr, &shoppers, &outcomes).await;
    server.stop().await;

    let db = Db::connect(&config).await.unwrap();
    let file = dir.path().join("emporium.db");
    let rows = reservation_rows(&db, Some(&file)).await;
    let found = check_rows_per_shopper(&shoppers, &outcomes, &rows);
    println!(
        "after {KILL_ROUNDS} kills: {created} created, {refused} refused, {no_answer} without \
         an answer; {found} reservations in the database"
    );
    assert!(
        found >= created && found <= created + no_answer,
        "{found} rows"
    );
    let on_hand = assert_stock_equation(&db, found as i64).await;
    assert_eq!(on_hand, units);
    db.close().await;
}

/// Starts a server, sends reservation attempts from 64 keep-alive connections and kills the
/// server with SIGKILL while they are in flight; returns every attempt's outcome.
async fn load_then_kill(
    dir: &std::path::Path,
    shoppers: &[(Uuid, String)],
) -> HashMap<usize, Outcome> {
    let server = Server::start(dir, None).await;
    let targets = shoppers
        .iter()
        .map(|(_, token)| (server.addr.clone(), token.clone()))
        .collect();
    let load = Arc::new(Load::default());
    let handles = load.spawn(64, Arc::new(targets), "CRASH-1");
    let started = Instant::now();
    // Until 200 grants or half a second, but not before the first grant on a slow machine.
    loop {
        let created = load.created.load(Ordering::SeqCst);
        let elapsed = started.elapsed();
        let enough = created >= 200 || (created > 0 && elapsed >= Duration::from_millis(500));
        if enough || elapsed >= harness::PHASE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Stop handing out shoppers first: every attempt without an answer was then in flight
    // when the server died.
    load.stop.store(true, Ordering::SeqCst);
    let running_at_kill = load.running.load(Ordering::SeqCst);
    let load_ms = started.elapsed().as_millis();
    server.kill().await;
    let outcomes = collect(handles).await;
    let (created, refused, no_answer) = tally(&outcomes);
    println!(
        "SIGKILL after {load_ms} ms: {} attempts, {created} created, {refused} refused, \
         {no_answer} without an answer, {running_at_kill} of 64 tasks still sending",
        outcomes.len()
    );
    assert!(created > 0, "nothing was acknowledged before the kill");
    assert_eq!(running_at_kill, 64, "the kill came after the load ended");
    assert!(no_answer > 0, "no request was in flight at the kill");
    assert!(outcomes.len() < shoppers.len(), "every shopper was used up");
    outcomes
}

/// Every acknowledged reservation is there and active, asked through the restarted server.
async fn assert_acknowledged_are_active(
    addr: &str,
    shoppers: &[(Uuid, String)],
    outcomes: &HashMap<usize, Outcome>,
) {
    let client = harness::client();
    let checks = outcomes.iter().filter_map(|(i, o)| match o {
        Outcome::Created(id) => Some((*id, shoppers[*i].1.clone())),
        _ => None,
    });
    let statuses: Vec<(Uuid, u16, Value)> = futures::stream::iter(checks)
        .map(|(id, token)| {
            let client = client.clone();
            async move {
                let r = client
                    .get(format!("http://{addr}/api/v1/reservations/{id}"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                (
                    id,
                    r.status().as_u16(),
                    r.json().await.unwrap_or(Value::Null),
                )
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (id, status, body) in statuses {
        assert_eq!(status, 200, "acknowledged reservation {id} lost: {body}");
        assert_eq!(body["status"], "active", "reservation {id}: {body}");
    }
}
#[cfg(pg_tests)]
#[tokio::test(flavor = "multi_thread")]
async fn three_servers_on_one_postgres_never_oversell() {
    tokio::time::timeout(Duration::from_secs(90), three_servers())
        .await
        .expect("the test did not finish within 90 s");
}

#[cfg(pg_tests)]
async fn three_servers() {
    let (url, schema) = harness::fresh_schema().await;
    let config = harness::postgres_config(&url);
    let mut shoppers = prepare(&config, &[("RACE-1", 50), ("RACE-2", 1_000)], 990).await;
    let racers = shoppers.split_off(900);
    let dir = tempfile::tempdir().unwrap();
    let mut servers = Vec::new();
    for node in 0..3 {
        // Each node keeps its own search index in its own data directory.
        let data_dir = dir.path().join(format!("node-{node}"));
        servers.push(Server::start(&data_dir, Some(&url)).await);
    }
    let addrs: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
    let db = Db::connect(&config).await.unwrap();

    nine_hundred_shoppers_race_for_fifty_units(&db, &addrs, &shoppers).await;
    assert_stock_equation(&db, 50).await;
    every_shopper_races_itself_on_all_servers(&db, &addrs, &racers).await;
    for server in servers {
        server.stop().await;
    }
    assert_stock_equation(&db, 50 + 90).await;

    harness::drop_schema(&db, &schema).await;
    db.close().await;
}

/// Shoppers spread round-robin over the servers, 3 × 64 at a time, for 50 units.
#[cfg(pg_tests)]
async fn nine_hundred_shoppers_race_for_fifty_units(
    db: &Db,
    addrs: &[String],
    shoppers: &[(Uuid, String)],
) {
    let targets = shoppers
        .iter()
        .enumerate()
        .map(|(i, (_, token))| (addrs[i % addrs.len()].clone(), token.clone()))
        .collect();
    let load = Arc::new(Load::default());
    let outcomes = collect(load.spawn(3 * 64, Arc::new(targets), "RACE-1")).await;
    let (created, refused, no_answer) = tally(&outcomes);
    let mut per_server = vec![0; addrs.len()];
    for (i, outcome) in &outcomes {
        if matches!(outcome, Outcome::Created(_)) {
            per_server[i % addrs.len()] += 1;
        }
    }
    println!(
        "three servers, 50 units: {created} created (per server {per_server:?}), \
         {refused} refused, {no_answer} without an answer"
    );
    assert_eq!(outcomes.len(), shoppers.len());
    assert_eq!(created, 50, "exactly the stock is granted");
    let out_of_stock = Outcome::Refused(409, "out_of_stock".to_owned());
    let sold_out = outcomes.values().filter(|o| **o == out_of_stock).count();
    assert_eq!(
        sold_out,
        shoppers.len() - 50,
        "everyone else is out of stock"
    );
    let rows = reservation_rows(db, None).await;
    assert_eq!(check_rows_per_shopper(shoppers, &outcomes, &rows), 50);
}

/// Each shopper sends one attempt to every server at once (64 shoppers at a time), for a SKU
/// with plenty of stock: one attempt wins, the others are `already_reserved`.
#[cfg(pg_tests)]
async fn every_shopper_races_itself_on_all_servers(
    db: &Db,
    addrs: &[String],
    shoppers: &[(Uuid, String)],
) {
    let client = harness::client();
    let races = shoppers.iter().map(|(_, token)| {
        let client = client.clone();
        async move {
            let attempts = addrs
                .iter()
                .map(|addr| harness::reserve(&client, addr, token, "RACE-2"));
            futures::future::join_all(attempts).await
        }
    });
    let all = futures::stream::iter(races)
        .buffered(64)
        .collect::<Vec<_>>();
    let answers = tokio::time::timeout(harness::PHASE, all)
        .await
        .expect("the races did not finish in time");
    let rows = reservation_rows(db, None).await;
    let already = Outcome::Refused(409, "already_reserved".to_owned());
    for ((user, _), answers) in shoppers.iter().zip(&answers) {
        let created: Vec<&Outcome> = answers
            .iter()
            .filter(|o| matches!(o, Outcome::Created(_)))
            .collect();
        let Some(Outcome::Created(id)) = created.first() else {
            panic!("shopper {user} got no reservation: {answers:?}")
        };
        assert_eq!(created.len(), 1, "shopper {user}: {answers:?}");
        let refused = answers.iter().filter(|o| **o == already).count();
        assert_eq!(refused, addrs.len() - 1, "shopper {user}: {answers:?}");
        assert_eq!(
            rows[user],
            vec![(*id, "active".to_owned())],
            "shopper {user}"
        );
    }
    println!(
        "three servers, {} shoppers racing themselves: one reservation each",
        shoppers.len()
    );
}
