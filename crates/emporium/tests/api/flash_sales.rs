use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::Request;

use chrono::Duration;
use emporium_shop::inventory::engine::EngineMode;
use emporium_shop::inventory::flash;
use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_databases;

/// A SKU with `stock` units and a sale of `quantity` of them starting in an hour and
/// lasting an hour; returns the sale id.
async fn sale(app: &TestApp, stock: i64, quantity: i64, limit: i64) -> String {
    let admin = app.admin().await;
    let product = app.product(&admin, "Console", "CONSOLE", 49_900).await;
    app.receive(
        product["variants"][0]["id"].as_str().unwrap(),
        "main",
        stock,
    )
    .await;
    let start = app.shop.now() + Duration::hours(1);
    let r = app
        .post(
            "/api/v1/admin/flash-sales",
            json!({"sku": "console", "price": 19_900, "currency": "GBP", "starts_at": start, "ends_at": start + Duration::hours(1),
                   "quantity": quantity, "per_customer_limit": limit}),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "scheduled");
    r.body["id"].as_str().unwrap().to_owned()
}

async fn reserve(
    app: &TestApp,
    sale: &str,
    token: &str,
    quantity: i64,
) -> crate::helpers::TestResponse {
    app.post(
        &format!("/api/v1/flash-sales/{sale}/reserve"),
        json!({"quantity": quantity}),
        Some(token),
    )
    .await
}

on_both_databases! {
    async fn a_flash_sale_runs_from_its_start_to_sell_out_and_its_end(app) {
        let id = sale(&app, 10, 4, 2).await;
        let (ann, bob, cat) = (app.customer("ann@example.com").await, app.customer("bob@example.com").await, app.customer("cat@example.com").await);
        reserve(&app, &id, &ann, 1).await.assert_problem(409, "sale_not_started");
        // The earmark is gone from available stock at once.
        assert_eq!(app.get("/api/v1/products/console", None).await.body["variants"][0]["available"], 6);

        app.clock.advance(Duration::hours(1));
        let r = reserve(&app, &id, &ann, 2).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["lines"][0]["unit_price_minor"], 19_900);
        assert_eq!(r.body["flash_sale_id"], id.as_str());
        reserve(&app, &id, &ann, 1).await.assert_problem(409, "already_reserved");
        reserve(&app, &id, &bob, 3).await.assert_problem(409, "purchase_limit_exceeded");
        let bobs = reserve(&app, &id, &bob, 2).await;
        assert_eq!(bobs.status, 201, "{}", bobs.text);
        reserve(&app, &id, &cat, 1).await.assert_problem(409, "sold_out");
        let status = app.get(&format!("/api/v1/flash-sales/{id}"), None).await;
        assert_eq!(status.status, 200);
        app.assert_stock_equation().await;

        // Bob lets go: his units go back to the sale, and Cat gets one.
        let bob_reservation = bobs.body["id"].as_str().unwrap().to_owned();
        assert_eq!(app.delete(&format!("/api/v1/reservations/{bob_reservation}"), Some(&bob)).await.status, 200);
        assert_eq!(reserve(&app, &id, &cat, 1).await.status, 201);
        app.assert_stock_equation().await;

        app.clock.advance(Duration::hours(1));
        reserve(&app, &id, &cat, 1).await.assert_problem(409, "sale_ended");
        let reaper = emporium_worker::Reaper::new(app.shop.clone());
        assert!(matches!(reaper.run_once().await.unwrap(), emporium_worker::Outcome::Worked(_)));
        app.assert_stock_equation().await;
        // An hour on, the sale is closed and its holds (15 minutes) have expired: every unit
        // is back in stock.
        assert_eq!(app.get("/api/v1/products/console", None).await.body["variants"][0]["available"], 10);
        let status = app.get(&format!("/api/v1/flash-sales/{id}"), None).await;
        assert_eq!(status.body["status"], "ended");
    }

    async fn the_flood_after_a_sell_out_is_answered_from_memory_with_the_full_answer(app) {
        let id = sale(&app, 5, 1, 1).await;
        app.clock.advance(Duration::hours(1));
        let (ann, bob) = (app.customer("ann@example.com").await, app.customer("bob@example.com").await);
        assert_eq!(reserve(&app, &id, &ann, 1).await.status, 201);
        // As a real client sends it: with Content-Length (the test helper sends none).
        let raw = |token: Option<&str>, body: &'static str, key: Option<&str>| {
            let mut request = Request::post(format!("/api/v1/flash-sales/{id}/reserve"))
                .header("content-type", "application/json")
                .header("content-length", body.len());
            if let Some(token) = token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            if let Some(key) = key {
                request = request.header("idempotency-key", key);
            }
            request.body(Body::from(body)).unwrap()
        };
        let answered = || app.shop.engine.memory.memory_answers.load(Ordering::Relaxed);
        // The full path (the engine's memory) answers first, and remembers the sell-out for
        // a second.
        let full = reserve(&app, &id, &bob, 1).await;
        full.assert_problem(409, "sold_out");
        let before = answered();
        let early = app.send(raw(Some(&bob), r#"{"quantity":1}"#, None)).await;
        assert_eq!(answered(), before + 1, "answered in front of the stack");
        assert_eq!((early.status, &early.text), (full.status, &full.text));
        assert_eq!(early.header("content-type"), full.header("content-type"));
        // It runs in front of every layer, and gives what they give every answer: a request
        // id (the client's, when it sent one), and the request counted under the route.
        assert!(early.header("x-request-id").is_some_and(|id| id.len() == 36));
        let counted = |metrics: &str| -> f64 {
            metrics
                .lines()
                .filter(|l| l.starts_with("http_requests_total{"))
                .filter(|l| l.contains("route=\"/api/v1/flash-sales/{id}/reserve\"") && l.contains("status=\"409\""))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let seen = counted(&app.get("/metrics", None).await.text);
        assert!(seen >= 2.0, "both sold-out answers so far are counted");
        let mut tagged = raw(Some(&bob), r#"{"quantity":1}"#, None);
        tagged.headers_mut().insert("x-request-id", axum::http::HeaderValue::from_static("flood-1"));
        let tagged = app.send(tagged).await;
        assert_eq!(answered(), before + 2, "answered in front");
        assert_eq!((tagged.status, &tagged.text), (full.status, &full.text));
        assert_eq!(tagged.header("x-request-id"), Some("flood-1"));
        assert!(counted(&app.get("/metrics", None).await.text) > seen);
        // In front of the timeout layer it keeps the time limit itself: a body held back
        // gets the timeout answer, as on the full path.
        let hasty = emporium_web::app(
            emporium_web::AppState::new(app.shop.clone()),
            &emporium_web::HttpConfig { request_timeout: std::time::Duration::from_millis(200), ..Default::default() },
        );
        let held_back = Request::post(format!("/api/v1/flash-sales/{id}/reserve"))
            .header("content-type", "application/json")
            .header("content-length", 14)
            .header("authorization", format!("Bearer {bob}"))
            .body(Body::from_stream(futures::stream::pending::<Result<axum::body::Bytes, std::io::Error>>()))
            .unwrap();
        let stopped = tokio::time::timeout(std::time::Duration::from_secs(5), tower::ServiceExt::oneshot(hasty, held_back))
            .await
            .expect("answered within the time limit")
            .unwrap();
        assert_eq!(stopped.status(), 503);
        assert!(stopped.headers().contains_key("x-request-id"));
        assert_eq!(answered(), before + 2, "a held-back body is not answered from memory");

        // Whatever the full path would answer otherwise still goes there.
        app.send(raw(None, r#"{"quantity":1}"#, None)).await.assert_problem(401, "authentication_required");
        app.send(raw(Some("emp_nonsense"), r#"{"quantity":1}"#, None)).await.assert_problem(401, "invalid_token");
        app.send(raw(Some(&bob), r#"{"quantity":0}"#, None)).await.assert_problem(422, "validation_failed");
        app.send(raw(Some(&bob), r#"{"quantity":2}"#, None)).await.assert_problem(409, "purchase_limit_exceeded");
        app.send(raw(Some(&bob), r#"{"quantity":1,"more":1}"#, None)).await.assert_problem(422, "invalid_body");
        app.send(raw(Some(&bob), r#"{"quantity":"#, None)).await.assert_problem(400, "malformed_json");
        // A keyed attempt may have to replay an earlier answer: only the full path knows.
        app.send(raw(Some(&bob), r#"{"quantity":1}"#, Some("retry-1"))).await.assert_problem(409, "sold_out");
        assert_eq!(answered(), before + 2, "none of these was answered early");

        app.clock.advance(Duration::hours(1));
        app.send(raw(Some(&bob), r#"{"quantity":1}"#, None)).await.assert_problem(409, "sale_ended");
        assert_eq!(answered(), before + 2);
    }

    async fn a_sale_cannot_take_more_than_is_available(app) {
        let admin = app.admin().await;
        let product = app.product(&admin, "Phone", "PHONE", 10_000).await;
        app.receive(product["variants"][0]["id"].as_str().unwrap(), "main", 3).await;
        let now = app.shop.now();
        let body = |quantity: i64, limit: i64| json!({"sku": "PHONE", "price": 5000, "currency": "GBP", "starts_at": now, "ends_at": now + Duration::hours(1), "quantity": quantity, "per_customer_limit": limit});
        app.post("/api/v1/admin/flash-sales", body(4, 1), Some(&admin)).await.assert_problem(409, "insufficient_stock");
        app.post("/api/v1/admin/flash-sales", body(2, 3), Some(&admin)).await.assert_problem(422, "validation_failed");
        let customer = app.customer("c@example.com").await;
        app.post("/api/v1/admin/flash-sales", body(1, 1), Some(&customer)).await.assert_problem(403, "forbidden");
        let unknown = uuid::Uuid::now_v7();
        app.get(&format!("/api/v1/flash-sales/{unknown}"), None).await.assert_problem(404, "flash_sale_not_found");
        reserve(&app, &unknown.to_string(), &customer, 1).await.assert_problem(404, "flash_sale_not_found");
    }

    async fn hundreds_of_buyers_racing_for_a_flash_sale_get_exactly_its_units(app) {
        let id: uuid::Uuid = sale(&app, 100, 30, 1).await.parse().unwrap();
        app.clock.advance(Duration::hours(1));
        let buyers = app.bulk_users(600).await;
        let shop = Arc::new(app.shop.clone());
        let tasks: Vec<_> = buyers.into_iter().map(|user| {
            let shop = shop.clone();
            tokio::spawn(async move { flash::reserve(&shop, user, id, 1).await })
        }).collect();
        let (mut granted, mut sold_out) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => granted += 1,
                Err(emporium_shop::ShopError::ConflictDetails { code: "sold_out", .. }) => sold_out += 1,
                Err(other) => panic!("unexpected answer: {other:?}"),
            }
        }
        assert_eq!((granted, sold_out), (30, 570));
        assert!(app.shop.engine.memory.is_sold_out(id), "the sell-out is remembered");
        let status = flash::status(&app.shop, id).await.unwrap();
        assert!(status.remaining == 0 || status.status == "sold_out" || status.remaining <= 30);
        app.assert_stock_equation().await;
        assert_eq!(app.get("/api/v1/products/console", None).await.body["variants"][0]["available"], 70);
    }

    async fn the_naive_baseline_grants_exactly_the_units_too(app) {
        // The benchmark's baseline runs one transaction per attempt with its own statements:
        // racing it must give the same answers as the engine.
        let app = app.reconfigured(|c| c.engine.mode = EngineMode::Naive);
        let id: uuid::Uuid = sale(&app, 100, 30, 1).await.parse().unwrap();
        app.clock.advance(Duration::hours(1));
        let buyers = app.bulk_users(120).await;
        let shop = Arc::new(app.shop.clone());
        // The first buyer also races itself: one hold per SKU, whatever the order.
        let attempts = buyers.iter().copied().chain(std::iter::repeat_n(buyers[0], 8));
        let tasks: Vec<_> = attempts.map(|user| {
            let shop = shop.clone();
            tokio::spawn(async move { (user, flash::reserve(&shop, user, id, 1).await) })
        }).collect();
        let mut granted = std::collections::HashMap::new();
        let mut sold_out = 0;
        for task in tasks {
            match task.await.unwrap() {
                (user, Ok(_)) => *granted.entry(user).or_insert(0) += 1,
                (_, Err(emporium_shop::ShopError::ConflictDetails { code: "sold_out" | "already_reserved", .. })) => sold_out += 1,
                (_, Err(other)) => panic!("unexpected answer: {other:?}"),
            }
        }
        assert_eq!(granted.values().sum::<i32>(), 30, "exactly the sale's units");
        assert!(granted.values().all(|n| *n == 1), "one reservation per buyer: {granted:?}");
        assert_eq!(sold_out, 128 - 30);
        let row = emporium_store::reservations::find_flash_sale(&app.shop.db, id).await.unwrap().unwrap();
        assert_eq!(row.remaining, 0, "the sale's units are all held");
        app.assert_stock_equation().await;
    }
}
