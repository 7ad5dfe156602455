//! `Idempotency-Key` on mutating routes: replays, reuse with another request, per-user
//! scopes, stored 4xx answers, bad keys, requests without a key, and the OpenAPI document.
//! Races, expiry and crashed claims are in `idempotency_lifecycle`.

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestResponse};
use crate::on_both_databases;

/// Sends a JSON request (or none) with an `Idempotency-Key`.
pub async fn keyed(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
    key: &str,
) -> TestResponse {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("idempotency-key", key);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(b) => {
            builder = builder.header("content-type", "application/json");
            Body::from(serde_json::to_vec(&b).unwrap())
        }
        None => Body::empty(),
    };
    app.send(builder.body(body).unwrap()).await
}

pub fn address(line1: &str) -> Value {
    json!({"name": "C", "line1": line1, "city": "Leeds", "postal_code": "LS1", "country": "GB"})
}

pub async fn address_count(app: &TestApp, token: &str) -> usize {
    let r = app.get("/api/v1/me/addresses", Some(token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().unwrap().len()
}

#[track_caller]
pub fn assert_replay_of(first: &TestResponse, again: &TestResponse) {
    assert_eq!(again.status, first.status, "{}", again.text);
    assert_eq!(again.text, first.text, "the stored body, byte for byte");
    assert_eq!(again.header("content-type"), first.header("content-type"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.header("idempotent-replayed"), None);
}

fn registration(email: &str) -> Value {
    json!({"email": email, "password": PASSWORD, "name": "Ada"})
}

on_both_databases! {
    async fn a_replayed_registration_answers_the_same_and_creates_one_account(app) {
        let path = "/api/v1/auth/register";
        let first = keyed(&app, Method::POST, path, Some(registration("ada@example.com")), None, "reg-1").await;
        assert_eq!(first.status, 201, "{}", first.text);
        let again = keyed(&app, Method::POST, path, Some(registration("ada@example.com")), None, "reg-1").await;
        assert_replay_of(&first, &again);
        // One account: a registration without the key finds the email taken.
        app.post(path, registration("ada@example.com"), None).await.assert_problem(409, "email_taken");
    }

    async fn a_replayed_product_creation_creates_one_product(app) {
        let seller = app.seller("seller@example.com").await;
        let product = json!({"title": "Bowl", "slug": "bowl", "status": "active",
            "variants": [{"sku": "BOWL-1", "prices": [{"currency": "GBP", "amount_minor": 900}]}]});
        let first = keyed(&app, Method::POST, "/api/v1/products", Some(product.clone()), Some(&seller), "p-1").await;
        assert_eq!(first.status, 201, "{}", first.text);
        // Another session of the same seller shares the user's keys.
        let other_session = app.login("seller@example.com").await;
        let again = keyed(&app, Method::POST, "/api/v1/products", Some(product), Some(&other_session), "p-1").await;
        assert_replay_of(&first, &again);
        assert_eq!(again.body["id"], first.body["id"]);
        let mine = app.get("/api/v1/seller/products", Some(&seller)).await;
        assert_eq!(mine.body["items"].as_array().unwrap().len(), 1, "{}", mine.text);
    }

    async fn receiving_stock_twice_with_one_key_receives_once(app) {
        let seller = app.seller("seller@example.com").await;
        app.product(&seller, "Cup", "CUP-1", 400).await;
        let path = "/api/v1/stock/CUP-1/receive";
        let first = keyed(&app, Method::POST, path, Some(json!({"quantity": 10})), Some(&seller), "rcv").await;
        assert_eq!(first.status, 200, "{}", first.text);
        let again = keyed(&app, Method::POST, path, Some(json!({"quantity": 10})), Some(&seller), "rcv").await;
        assert_replay_of(&first, &again);
        let stock = app.get("/api/v1/stock/CUP-1", Some(&seller)).await;
        assert_eq!(stock.body["locations"][0]["on_hand"], 10, "{}", stock.text);
    }

    async fn the_same_key_for_another_request_is_422_and_changes_nothing(app) {
        let customer = app.customer("c@example.com").await;
        let path = "/api/v1/me/addresses";
        let first = keyed(&app, Method::POST, path, Some(address("1 A St")), Some(&customer), "k").await;
        assert_eq!(first.status, 201, "{}", first.text);
        keyed(&app, Method::POST, path, Some(address("2 B St")), Some(&customer), "k").await
            .assert_problem(422, "idempotency_key_reused");
        let id = first.body["id"].as_str().unwrap();
        keyed(&app, Method::PUT, &format!("{path}/{id}"), Some(address("1 A St")), Some(&customer), "k").await
            .assert_problem(422, "idempotency_key_reused");
        keyed(&app, Method::DELETE, &format!("{path}/{id}"), None, Some(&customer), "k").await
            .assert_problem(422, "idempotency_key_reused");
        let list = app.get(path, Some(&customer)).await;
        assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(list.body["items"][0]["line1"], "1 A St");
        // The original request still replays.
        let again = keyed(&app, Method::POST, path, Some(address("1 A St")), Some(&customer), "k").await;
        assert_replay_of(&first, &again);
    }

    async fn keys_are_scoped_per_user(app) {
        let ann = app.customer("ann@example.com").await;
        let bob = app.customer("bob@example.com").await;
        let path = "/api/v1/me/addresses";
        let a = keyed(&app, Method::POST, path, Some(address("1 A St")), Some(&ann), "shared").await;
        let b = keyed(&app, Method::POST, path, Some(address("1 A St")), Some(&bob), "shared").await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert_eq!(b.status, 201, "{}", b.text);
        assert_eq!(b.header("idempotent-replayed"), None);
        assert_ne!(a.body["id"], b.body["id"]);
        assert_eq!(address_count(&app, &ann).await, 1);
        assert_eq!(address_count(&app, &bob).await, 1);
    }

    async fn a_4xx_answer_is_stored_and_replayed(app) {
        let path = "/api/v1/auth/register";
        let weak = json!({"email": "weak@example.com", "password": "short", "name": "W"});
        let first = keyed(&app, Method::POST, path, Some(weak.clone()), None, "weak").await;
        first.assert_problem(422, "validation_failed");
        let again = keyed(&app, Method::POST, path, Some(weak), None, "weak").await;
        assert_replay_of(&first, &again);
        again.assert_problem(422, "validation_failed");
        let seller = app.seller("seller@example.com").await;
        let missing = keyed(&app, Method::POST, "/api/v1/stock/NOPE/receive", Some(json!({"quantity": 1})), Some(&seller), "nope").await;
        let again = keyed(&app, Method::POST, "/api/v1/stock/NOPE/receive", Some(json!({"quantity": 1})), Some(&seller), "nope").await;
        assert_eq!(missing.status, 404, "{}", missing.text);
        assert_replay_of(&missing, &again);
    }

    async fn bad_keys_are_refused_with_400_and_run_nothing(app) {
        let customer = app.customer("c@example.com").await;
        let path = "/api/v1/me/addresses";
        let long = "k".repeat(256);
        for key in ["", long.as_str(), "tab\there"] {
            keyed(&app, Method::POST, path, Some(address("1 A St")), Some(&customer), key).await
                .assert_problem(400, "invalid_idempotency_key");
        }
        let non_ascii = Request::builder().method(Method::POST).uri(path)
            .header("authorization", format!("Bearer {customer}"))
            .header("content-type", "application/json")
            .header("idempotency-key", axum::http::HeaderValue::from_bytes(b"caf\xe9").unwrap())
            .body(Body::from(address("1 A St").to_string())).unwrap();
        app.send(non_ascii).await.assert_problem(400, "invalid_idempotency_key");
        let twice = Request::builder().method(Method::POST).uri(path)
            .header("authorization", format!("Bearer {customer}"))
            .header("content-type", "application/json")
            .header("idempotency-key", "a").header("idempotency-key", "b")
            .body(Body::from(address("1 A St").to_string())).unwrap();
        app.send(twice).await.assert_problem(400, "invalid_idempotency_key");
        assert_eq!(address_count(&app, &customer).await, 0);
        let longest = "k".repeat(255);
        let ok = keyed(&app, Method::POST, path, Some(address("1 A St")), Some(&customer), &longest).await;
        assert_eq!(ok.status, 201, "{}", ok.text);
    }

    async fn a_keyed_body_over_the_limit_is_413_and_claims_nothing(app) {
        let customer = app.customer("c@example.com").await;
        let path = "/api/v1/me/addresses";
        let huge = address(&"x".repeat(1024 * 1024 + 1));
        keyed(&app, Method::POST, path, Some(huge), Some(&customer), "k").await
            .assert_problem(413, "payload_too_large");
        let r = keyed(&app, Method::POST, path, Some(address("1 A St")), Some(&customer), "k").await;
        assert_eq!(r.status, 201, "{}", r.text);
    }

    async fn requests_without_a_key_are_untouched(app) {
        let customer = app.customer("c@example.com").await;
        for _ in 0..2 {
            let r = app.post("/api/v1/me/addresses", address("1 A St"), Some(&customer)).await;
            assert_eq!(r.status, 201, "{}", r.text);
            assert_eq!(r.header("idempotent-replayed"), None);
        }
        assert_eq!(address_count(&app, &customer).await, 2);
        // A key on a read is ignored.
        let r = keyed(&app, Method::GET, "/api/v1/me/addresses", None, Some(&customer), "").await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    async fn a_keyed_request_with_an_invalid_token_is_refused_and_not_stored(app) {
        let customer = app.customer("c@example.com").await;
        let path = "/api/v1/me/addresses";
        let last = if customer.ends_with('A') { 'B' } else { 'A' };
        let bogus = format!("{}{last}", &customer[..customer.len() - 1]);
        keyed(&app, Method::POST, path, Some(address("1 A St")), Some(&bogus), "k").await
            .assert_problem(401, "invalid_token");
        let r = keyed(&app, Method::POST, path, Some(address("1 A St")), Some(&customer), "k").await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.header("idempotent-replayed"), None);
    }

    async fn a_login_with_a_key_is_never_stored_so_its_token_is_not_kept(app) {
        app.customer("c@example.com").await;
        let body = json!({"email": "c@example.com", "password": PASSWORD});
        let first = keyed(&app, Method::POST, "/api/v1/auth/login", Some(body.clone()), None, "login").await;
        let second = keyed(&app, Method::POST, "/api/v1/auth/login", Some(body), None, "login").await;
        assert_eq!(first.status, 200, "{}", first.text);
        assert_eq!(second.status, 200, "{}", second.text);
        assert_eq!(second.header("idempotent-replayed"), None);
        assert_ne!(first.body["token"], second.body["token"], "a second session");
    }

    async fn every_mutating_operation_documents_the_key(app) {
        let doc = app.get("/api/v1/openapi.json", None).await.body;
        let mut mutating = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in ["post", "put", "patch", "delete"] {
                let Some(op) = item.get(method) else { continue };
                mutating += 1;
                let params = op["parameters"].as_array().unwrap();
                assert!(
                    params.iter().any(|p| p["$ref"] == "#/components/parameters/IdempotencyKey"),
                    "{method} {path}"
                );
                assert!(op["responses"]["409"]["description"].as_str().unwrap().contains("idempotency_key_in_flight"), "{method} {path}");
                assert!(op["responses"]["422"]["description"].as_str().unwrap().contains("idempotency_key_reused"), "{method} {path}");
            }
        }
        assert!(mutating > 20, "{mutating}");
        let key = &doc["components"]["parameters"]["IdempotencyKey"];
        assert_eq!(key["in"], "header");
        assert_eq!(key["name"], "Idempotency-Key");
        assert_eq!(key["schema"]["maxLength"], 255);
        assert!(doc["components"]["headers"]["IdempotentReplayed"].is_object());
    }
}
