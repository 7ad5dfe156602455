use std::sync::Arc;

use chrono::Duration;
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
}
