//! The life of an idempotency key: racing requests with one key, replays across a restart,
//! expiry and purge after 24 hours, and a claim left behind by a crashed node.

use std::sync::Arc;

use axum::http::Method;
use emporium_domain::idempotency::IdempotencyKey;
use emporium_domain::identity::{Role, UserStatus};
use emporium_domain::ids::UserId;
use emporium_shop::idempotency::{self, Claim, Scope, Ticket};
use emporium_worker::{KeyPurge, Outcome};
use serde_json::json;

use crate::helpers::{TestApp, TestResponse};
use crate::idempotency::{address, address_count, assert_replay_of, keyed};
use crate::on_both_databases;

/// Sends the same keyed request from `n` tasks at once.
async fn race(
    app: &Arc<TestApp>,
    n: usize,
    path: &str,
    body: serde_json::Value,
    token: &str,
) -> Vec<TestResponse> {
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (app, start, path, body, token) = (
                app.clone(),
                start.clone(),
                path.to_owned(),
                body.clone(),
                token.to_owned(),
            );
            tokio::spawn(async move {
                start.wait().await;
                keyed(&app, Method::POST, &path, Some(body), Some(&token), "race").await
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

/// Exactly one response ran the request; every other one is the replay of it or a 409.
fn assert_ran_once(responses: &[TestResponse], status: u16) {
    let ran: Vec<_> = responses
        .iter()
        .filter(|r| r.status == status && r.header("idempotent-replayed").is_none())
        .collect();
    assert_eq!(ran.len(), 1, "{responses:#?}");
    for r in responses {
        if r.header("idempotent-replayed").is_some() {
            assert_replay_of(ran[0], r);
        } else if r.status == 409 {
            r.assert_problem(409, "idempotency_key_in_flight");
            assert_eq!(r.header("retry-after"), Some("1"));
        } else {
            assert_eq!(r.text, ran[0].text);
        }
    }
}

on_both_databases! {
    async fn twenty_racing_requests_with_one_key_receive_stock_once(app) {
        let seller = app.seller("seller@example.com").await;
        app.product(&seller, "Cup", "CUP-1", 400).await;
        let app = Arc::new(app);
        let responses = race(&app, 20, "/api/v1/stock/CUP-1/receive", json!({"quantity": 10}), &seller).await;
        assert_ran_once(&responses, 200);
        let stock = app.get("/api/v1/stock/CUP-1", Some(&seller)).await;
        assert_eq!(stock.body["locations"][0]["on_hand"], 10, "{}", stock.text);
        // Once the first finished, the key replays.
        let late = keyed(&app, Method::POST, "/api/v1/stock/CUP-1/receive", Some(json!({"quantity": 10})), Some(&seller), "race").await;
        assert_eq!(late.header("idempotent-replayed"), Some("true"), "{}", late.text);
    }

    async fn twenty_racing_reservations_with_one_key_reserve_once(app) {
        let seller = app.seller("seller@example.com").await;
        let product = app.product(&seller, "Cup", "CUP-1", 400).await;
        app.receive(product["variants"][0]["id"].as_str().unwrap(), "main", 100).await;
        let buyer = app.customer("buyer@example.com").await;
        let app = Arc::new(app);
        let body = json!({"lines": [{"sku": "CUP-1", "quantity": 3}]});
        let responses = race(&app, 20, "/api/v1/reservations", body, &buyer).await;
        assert_ran_once(&responses, 201);
        let page = app.get("/api/v1/products/cup-1", None).await;
        assert_eq!(page.body["variants"][0]["available"], 97, "{}", page.text);
        app.assert_stock_equation().await;
    }

    async fn a_429_is_not_stored_so_the_retry_runs(app) {
        let seller = app.seller("seller@example.com").await;
        let product = app.product(&seller, "Cup", "CUP-1", 400).await;
        app.receive(product["variants"][0]["id"].as_str().unwrap(), "main", 10).await;
        let buyer = app.customer("buyer@example.com").await;
        let body = json!({"lines": [{"sku": "CUP-1", "quantity": 3}]});
        // A node whose reservation queue admits nothing.
        let app = app.reconfigured(|c| c.engine.max_queue = 0);
        let full = keyed(&app, Method::POST, "/api/v1/reservations", Some(body.clone()), Some(&buyer), "k").await;
        full.assert_problem(429, "overloaded");
        let app = app.reconfigured(|_| {});
        let retried = keyed(&app, Method::POST, "/api/v1/reservations", Some(body.clone()), Some(&buyer), "k").await;
        assert_eq!(retried.status, 201, "{}", retried.text);
        assert_eq!(retried.header("idempotent-replayed"), None);
        let replay = keyed(&app, Method::POST, "/api/v1/reservations", Some(body), Some(&buyer), "k").await;
        assert_replay_of(&retried, &replay);
    }

    async fn a_request_stopped_by_the_timeout_leaves_its_key_free(app) {
        let customer = app.customer("c@example.com").await;
        let hasty = emporium_web::app(
            emporium_web::AppState::new(app.shop.clone()),
            &emporium_web::HttpConfig { request_timeout: std::time::Duration::from_nanos(1), ..Default::default() },
        );
        let request = axum::http::Request::post("/api/v1/me/addresses")
            .header("authorization", format!("Bearer {customer}"))
            .header("content-type", "application/json")
            .header("idempotency-key", "k")
            .body(axum::body::Body::from(serde_json::to_vec(&address("1 A St")).unwrap()))
            .unwrap();
        let stopped = tower::ServiceExt::oneshot(hasty, request).await.unwrap();
        assert_eq!(stopped.status(), 503);
        // The claim is dropped in the background; the retry never stays stuck on 409.
        for _ in 0..100 {
            let retry = keyed(&app, Method::POST, "/api/v1/me/addresses", Some(address("1 A St")), Some(&customer), "k").await;
            if retry.status != 409 {
                assert_eq!(retry.status, 201, "{}", retry.text);
                assert_eq!(address_count(&app, &customer).await, 1);
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the key stayed in flight");
    }

    async fn a_stored_answer_is_replayed_after_a_restart(app) {
        let customer = app.customer("c@example.com").await;
        let first = keyed(&app, Method::POST, "/api/v1/me/addresses", Some(address("1 A St")), Some(&customer), "k").await;
        assert_eq!(first.status, 201, "{}", first.text);
        // A new shop and router over the same database: nothing kept in memory.
        let app = app.reconfigured(|_| {});
        let again = keyed(&app, Method::POST, "/api/v1/me/addresses", Some(address("1 A St")), Some(&customer), "k").await;
        assert_replay_of(&first, &again);
        assert_eq!(address_count(&app, &customer).await, 1);
    }

    async fn keys_are_kept_24_hours_then_purged_and_free_again(app) {
        let customer = app.customer("c@example.com").await;
        let path = "/api/v1/me/addresses";
        let first = keyed(&app, Method::POST, path, Some(address("1 A St")), Some(&customer), "k").await;
        assert_eq!(first.status, 201, "{}", first.text);
        let purge = KeyPurge::new(app.shop.clone());
        app.clock.advance(chrono::Duration::hours(24) - chrono::Duration::seconds(1));
        assert_eq!(purge.run_once().await.unwrap(), Outcome::Idle);
        let again = keyed(&app, Method::POST, path, Some(address("1 A St")), Some(&customer), "k").await;
        assert_replay_of(&first, &again);
        app.clock.advance(chrono::Duration::seconds(1));
        assert_eq!(purge.run_once().await.unwrap(), Outcome::Worked(1));
        assert_eq!(purge.run_once().await.unwrap(), Outcome::Idle);
        let reused = keyed(&app, Method::POST, path, Some(address("2 B St")), Some(&customer), "k").await;
        assert_eq!(reused.status, 201, "{}", reused.text);
        assert_eq!(reused.header("idempotent-replayed"), None);
        assert_eq!(address_count(&app, &customer).await, 2);
    }

    async fn an_expired_key_is_free_even_before_the_purge(app) {
        let customer = app.customer("c@example.com").await;
        let path = "/api/v1/me/addresses";
        let first = keyed(&app, Method::POST, path, Some(address("1 A St")), Some(&customer), "k").await;
        assert_eq!(first.status, 201, "{}", first.text);
        app.clock.advance(chrono::Duration::hours(25));
        let reused = keyed(&app, Method::POST, path, Some(address("2 B St")), Some(&customer), "k").await;
        assert_eq!(reused.status, 201, "{}", reused.text);
        let replay = keyed(&app, Method::POST, path, Some(address("2 B St")), Some(&customer), "k").await;
        assert_replay_of(&reused, &replay);
    }

    async fn a_claim_left_by_a_crashed_node_is_taken_over_after_its_lease(app) {
        let (customer, id) = app.user("c@example.com", Role::Customer, UserStatus::Active).await;
        let path = "/api/v1/me/addresses";
        let body = serde_json::to_vec(&address("1 A St")).unwrap();
        // A node claimed the key and died before answering.
        let scope = Scope::User(UserId(id.parse().unwrap()));
        let key = IdempotencyKey::parse("k").unwrap();
        let request = idempotency::Request { method: "POST", path, body: &body };
        let ticket = Ticket::new(scope, key);
        let claim = idempotency::claim(&app.shop, &ticket, request).await.unwrap();
        assert!(matches!(claim, Claim::Acquired), "{claim:?}");
        let busy = keyed(&app, Method::POST, path, Some(address("1 A St")), Some(&customer), "k").await;
        busy.assert_problem(409, "idempotency_key_in_flight");
        keyed(&app, Method::POST, path, Some(address("2 B St")), Some(&customer), "k").await
            .assert_problem(422, "idempotency_key_reused");
        assert_eq!(address_count(&app, &customer).await, 0);
        app.clock.advance(app.shop.config.idempotency.in_flight_lease + chrono::Duration::seconds(1));
        let retried = keyed(&app, Method::POST, path, Some(address("1 A St")), Some(&customer), "k").await;
        assert_eq!(retried.status, 201, "{}", retried.text);
        let replay = keyed(&app, Method::POST, path, Some(address("1 A St")), Some(&customer), "k").await;
        assert_replay_of(&retried, &replay);
        assert_eq!(address_count(&app, &customer).await, 1);
    }
}
