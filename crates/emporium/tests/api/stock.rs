//! Stock: locations, receive / adjust / transfer with per-location figures, the ledger and
//! its invariant (on hand = sum of ledger deltas), ownership, low-stock events, bad input
//! and concurrent adjustments.

use emporium_store::{inventory, outbox};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_both_databases;

/// A seller with one product (SKU `CUP-1`), and an admin: (seller token, admin token).
async fn shop_with_a_cup(app: &TestApp) -> (String, String) {
    let seller = app.seller("stock-seller@example.com").await;
    app.product(&seller, "Cup", "CUP-1", 400).await;
    (seller, app.admin().await)
}

async fn stock(app: &TestApp, token: &str) -> Value {
    let r = app.get("/api/v1/stock/CUP-1", Some(token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// (code, on_hand, reserved, available) per location.
fn per_location(stock: &Value) -> Vec<(String, i64, i64, i64)> {
    stock["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["code"].as_str().unwrap().to_owned(),
                l["on_hand"].as_i64().unwrap(),
                l["reserved"].as_i64().unwrap(),
                l["available"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Every ledger entry of CUP-1, newest first, following cursors `limit` at a time.
async fn ledger(app: &TestApp, token: &str, limit: u32) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/stock/CUP-1/movements?limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&path, Some(token)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        entries.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return entries,
        }
    }
}

async fn assert_ledger_explains_all_stock(app: &TestApp) {
    let mismatches = inventory::ledger_mismatches(&app.shop.db).await.unwrap();
    assert!(
        mismatches.is_empty(),
        "on hand differs from the ledger: {mismatches:?}"
    );
}

async fn count(app: &TestApp, topic: &str) -> i64 {
    outbox::count_topic(&app.shop.db, topic).await.unwrap()
}

on_both_databases! {
    async fn receiving_adjusting_and_transferring_keep_per_location_figures_and_the_ledger(app) {
        let (seller, admin) = shop_with_a_cup(&app).await;
        let r = app.post("/api/v1/stock/locations", json!({"code": "Leeds", "name": "Leeds depot"}), Some(&admin)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["code"], "leeds");

        let r = app.post("/api/v1/stock/CUP-1/receive", json!({"quantity": 10}), Some(&seller)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(per_location(&r.body), [("main".to_owned(), 10, 0, 10)]);
        let r = app.post("/api/v1/stock/cup-1/receive", json!({"quantity": 5, "location": "leeds", "reason": "PO 17"}), Some(&seller)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = app.post("/api/v1/stock/CUP-1/adjust", json!({"quantity": -2, "reason": "two broke"}), Some(&seller)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = app.post("/api/v1/stock/CUP-1/transfer", json!({"quantity": 3, "from": "main", "to": "leeds"}), Some(&seller)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(per_location(&r.body), [("leeds".to_owned(), 8, 0, 8), ("main".to_owned(), 5, 0, 5)]);
        assert_eq!((r.body["sku"].as_str(), r.body["on_hand"].as_i64(), r.body["available"].as_i64()), (Some("CUP-1"), Some(13), Some(13)));
        assert_eq!(stock(&app, &admin).await, r.body, "admins see the same stock");

        let entries = ledger(&app, &seller, 2).await;
        let summary: Vec<(&str, i64, &str)> = entries.iter().map(|e| (e["kind"].as_str().unwrap(), e["delta"].as_i64().unwrap(), e["location"].as_str().unwrap())).collect();
        assert_eq!(summary, [("transfer_in", 3, "leeds"), ("transfer_out", -3, "main"), ("adjust", -2, "main"), ("receive", 5, "leeds"), ("receive", 10, "main")]);
        assert_eq!(entries[2]["reason"], "two broke");
        assert_eq!(entries[3]["reason"], "PO 17");
        assert!(entries.iter().all(|e| e["actor_id"].is_string() && e["created_at"].is_string()));
        assert_ledger_explains_all_stock(&app).await;
        assert_eq!(count(&app, "inventory.stock_changed").await, 4, "one event per write");
    }

    async fn product_pages_show_stock_changes_at_once(app) {
        let (seller, _) = shop_with_a_cup(&app).await;
        let page = app.get("/api/v1/products/cup-1", None).await;
        assert_eq!(page.body["variants"][0]["stock_status"], "out_of_stock");
        app.post("/api/v1/stock/CUP-1/receive", json!({"quantity": 40}), Some(&seller)).await;
        let page = app.get("/api/v1/products/cup-1", None).await;
        assert_eq!(page.body["variants"][0]["stock_status"], "in_stock", "the cached page was dropped");
        assert_eq!(page.body["variants"][0]["available"], 40);
    }

    async fn an_adjustment_below_zero_is_refused_and_writes_nothing(app) {
        let (seller, admin) = shop_with_a_cup(&app).await;
        app.post("/api/v1/stock/CUP-1/adjust", json!({"quantity": -1, "reason": "count"}), Some(&seller)).await.assert_problem(409, "insufficient_stock");
        app.post("/api/v1/stock/CUP-1/receive", json!({"quantity": 3}), Some(&seller)).await;
        let before = (stock(&app, &seller).await, ledger(&app, &seller, 100).await, count(&app, "inventory.stock_changed").await);
        let r = app.post("/api/v1/stock/CUP-1/adjust", json!({"quantity": -5, "reason": "count"}), Some(&seller)).await;
        r.assert_problem(409, "insufficient_stock");
        assert_eq!((r.body["sku"].as_str(), r.body["location"].as_str(), r.body["available"].as_i64()), (Some("CUP-1"), Some("main"), Some(3)), "{}", r.text);
        let r = app.post("/api/v1/stock/CUP-1/transfer", json!({"quantity": 4, "from": "main", "to": "main2"}), Some(&seller)).await;
        r.assert_problem(422, "validation_failed");
        app.post("/api/v1/stock/locations", json!({"code": "main2", "name": "Overflow"}), Some(&admin)).await;
        app.post("/api/v1/stock/CUP-1/transfer", json!({"quantity": 4, "from": "main", "to": "main2"}), Some(&seller)).await.assert_problem(409, "insufficient_stock");
        app.post("/api/v1/stock/CUP-1/transfer", json!({"quantity": 1, "from": "main2", "to": "main"}), Some(&seller)).await.assert_problem(409, "insufficient_stock");
        let after = (stock(&app, &seller).await, ledger(&app, &seller, 100).await, count(&app, "inventory.stock_changed").await);
        assert_eq!(after, before, "refused changes wrote nothing");
        assert_ledger_explains_all_stock(&app).await;
    }

    async fn transfers_and_adjustments_cannot_take_reserved_units(app) {
        let (seller, admin) = shop_with_a_cup(&app).await;
        app.post("/api/v1/stock/locations", json!({"code": "york", "name": "York"}), Some(&admin)).await;
        app.post("/api/v1/stock/CUP-1/receive", json!({"quantity": 10}), Some(&seller)).await;
        let variant = inventory::find_variant_by_sku(&app.shop.db, "CUP-1").await.unwrap().unwrap();
        let main = inventory::levels(&app.shop.db, variant.id).await.unwrap()[0].location_id;
        let mut tx = app.shop.db.begin().await.unwrap();
        assert!(emporium_store::reservations::add_reserved(&mut tx, variant.id, main, 4).await.unwrap());
        tx.commit().await.unwrap();

        let r = app.post("/api/v1/stock/CUP-1/transfer", json!({"quantity": 7, "from": "main", "to": "york"}), Some(&seller)).await;
        r.assert_problem(409, "insufficient_stock");
        assert_eq!(r.body["available"], 6);
        app.post("/api/v1/stock/CUP-1/adjust", json!({"quantity": -7, "reason": "count"}), Some(&seller)).await.assert_problem(409, "insufficient_stock");
        let r = app.post("/api/v1/stock/CUP-1/transfer", json!({"quantity": 6, "from": "main", "to": "york"}), Some(&seller)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(per_location(&r.body), [("main".to_owned(), 4, 4, 0), ("york".to_owned(), 6, 0, 6)]);
        assert_eq!((r.body["on_hand"].as_i64(), r.body["reserved"].as_i64(), r.body["available"].as_i64()), (Some(10), Some(4), Some(6)));
        assert_ledger_explains_all_stock(&app).await;
    }

    async fn a_seller_cannot_touch_another_sellers_stock(app) {
        let (owner, admin) = shop_with_a_cup(&app).await;
        let other = app.seller("other-seller@example.com").await;
        let customer = app.customer("shopper@example.com").await;
        let writes = [
            ("receive", json!({"quantity": 1})),
            ("adjust", json!({"quantity": 1, "reason": "mine now"})),
            ("transfer", json!({"quantity": 1, "from": "main", "to": "elsewhere"})),
        ];
        for (action, body) in &writes {
            let path = format!("/api/v1/stock/CUP-1/{action}");
            app.post(&path, body.clone(), Some(&other)).await.assert_problem(404, "sku_not_found");
            app.post(&path, body.clone(), Some(&customer)).await.assert_problem(403, "forbidden");
            app.post(&path, body.clone(), None).await.assert_problem(401, "authentication_required");
        }
        app.put("/api/v1/stock/CUP-1/threshold", json!({"low_stock_threshold": 1}), Some(&other)).await.assert_problem(404, "sku_not_found");
        app.put("/api/v1/stock/CUP-1/threshold", json!({"low_stock_threshold": 1}), Some(&customer)).await.assert_problem(403, "forbidden");
        for path in ["/api/v1/stock/CUP-1", "/api/v1/stock/CUP-1/movements"] {
            app.get(path, Some(&other)).await.assert_problem(404, "sku_not_found");
            app.get(path, Some(&customer)).await.assert_problem(403, "forbidden");
        }
        app.get("/api/v1/stock/NO-SUCH-SKU", Some(&owner)).await.assert_problem(404, "sku_not_found");
        assert!(ledger(&app, &owner, 100).await.is_empty(), "nothing was written");

        let r = app.post("/api/v1/stock/CUP-1/receive", json!({"quantity": 2}), Some(&admin)).await;
        assert_eq!(r.status, 200, "admins manage any stock: {}", r.text);
        let pending = app.user("pending@example.com", emporium_domain::identity::Role::Seller, emporium_domain::identity::UserStatus::Pending).await.0;
        app.get("/api/v1/stock/CUP-1", Some(&pending)).await.assert_problem(403, "forbidden");
    }

    async fn only_admins_add_locations_and_codes_are_unique(app) {
        let (seller, admin) = shop_with_a_cup(&app).await;
        let listed = app.get("/api/v1/stock/locations", Some(&seller)).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        let codes: Vec<&str> = listed.body["items"].as_array().unwrap().iter().map(|l| l["code"].as_str().unwrap()).collect();
        assert_eq!(codes, ["main"], "the main location always exists");
        app.post("/api/v1/stock/locations", json!({"code": "bristol", "name": "Bristol"}), Some(&seller)).await.assert_problem(403, "forbidden");
        assert_eq!(app.post("/api/v1/stock/locations", json!({"code": "bristol", "name": "Bristol"}), Some(&admin)).await.status, 201);
        app.post("/api/v1/stock/locations", json!({"code": "BRISTOL", "name": "Again"}), Some(&admin)).await.assert_problem(409, "location_code_taken");
        app.post("/api/v1/stock/locations", json!({"code": "main", "name": "Again"}), Some(&admin)).await.assert_problem(409, "location_code_taken");
        app.get("/api/v1/stock/locations", Some(&app.customer("c@example.com").await)).await.assert_problem(403, "forbidden");
        let listed = app.get("/api/v1/stock/locations", Some(&admin)).await;
        assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
        assert_eq!(listed.body["items"][0]["name"], "Bristol");
    }

    async fn running_low_writes_exactly_one_low_stock_event_per_crossing(app) {
        let (seller, _) = shop_with_a_cup(&app).await;
        let adjust = |delta: i64| app.post("/api/v1/stock/CUP-1/adjust", json!({"quantity": delta, "reason": "count"}), Some(&seller));
        assert_eq!(adjust(10).await.status, 200);
        let r = app.put("/api/v1/stock/CUP-1/threshold", json!({"low_stock_threshold": 5}), Some(&seller)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["low_stock_threshold"], 5);
        assert_eq!(adjust(-4).await.status, 200);
        assert_eq!(count(&app, "inventory.low_stock").await, 0, "6 is above 5");
        assert_eq!(adjust(-1).await.status, 200);
        assert_eq!(count(&app, "inventory.low_stock").await, 1, "5 is at the threshold");
        assert_eq!(adjust(-2).await.status, 200);
        assert_eq!(adjust(1).await.status, 200);
        assert_eq!(count(&app, "inventory.low_stock").await, 1, "staying low is not news");
        let events = outbox::pending(&app.shop.db, 100).await.unwrap();
        let low: Vec<&Value> = events.iter().filter(|e| e.topic == "inventory.low_stock").map(|e| &e.payload.0).collect();
        assert_eq!((low[0]["sku"].as_str(), low[0]["available"].as_i64(), low[0]["threshold"].as_i64()), (Some("CUP-1"), Some(5), Some(5)));
        assert!(low[0]["variant_id"].is_string());

        assert_eq!(adjust(10).await.status, 200);
        assert_eq!(adjust(-10).await.status, 200);
        assert_eq!(count(&app, "inventory.low_stock").await, 2, "back above, then low again");
        app.put("/api/v1/stock/CUP-1/threshold", json!({"low_stock_threshold": null}), Some(&seller)).await;
        assert_eq!(adjust(-4).await.status, 200);
        assert_eq!(count(&app, "inventory.low_stock").await, 2, "no threshold, no events");
        let r = app.put("/api/v1/stock/CUP-1/threshold", json!({"low_stock_threshold": 3}), Some(&seller)).await;
        assert_eq!(r.body["available"], 0);
        assert_eq!(count(&app, "inventory.low_stock").await, 3, "a threshold set above what is available runs the SKU low");
        for bad in [json!({"low_stock_threshold": -1}), json!({"low_stock_threshold": 10_000_000_000i64})] {
            app.put("/api/v1/stock/CUP-1/threshold", bad, Some(&seller)).await.assert_problem(422, "validation_failed");
        }
        for bad in [json!({}), json!({"low_stock_threshold": "5"}), json!({"low_stock_threshold": 5, "x": 1})] {
            app.put("/api/v1/stock/CUP-1/threshold", bad, Some(&seller)).await.assert_problem(422, "invalid_body");
        }
    }

    async fn bad_stock_input_is_a_4xx_and_writes_nothing(app) {
        let (seller, admin) = shop_with_a_cup(&app).await;
        app.post("/api/v1/stock/CUP-1/receive", json!({"quantity": 5}), Some(&seller)).await;
        let before = (stock(&app, &seller).await, ledger(&app, &seller, 100).await);
        let long = "x".repeat(501);
        let cases: Vec<(&str, Value, u16, &str)> = vec![
            ("receive", json!({"quantity": 0}), 422, "validation_failed"),
            ("receive", json!({"quantity": -3}), 422, "validation_failed"),
            ("receive", json!({"quantity": 1_000_000_001}), 422, "validation_failed"),
            ("receive", json!({"quantity": 10_000_000_000_000_000_000u64}), 422, "invalid_body"),
            ("receive", json!({"quantity": 1.5}), 422, "invalid_body"),
            ("receive", json!({"quantity": "5"}), 422, "invalid_body"),
            ("receive", json!({"quantity": 1, "location": "nowhere"}), 422, "validation_failed"),
            ("receive", json!({"quantity": 1, "location": "no where"}), 422, "validation_failed"),
            ("receive", json!({"quantity": 1, "reason": long}), 422, "validation_failed"),
            ("adjust", json!({"quantity": 0, "reason": "count"}), 422, "validation_failed"),
            ("adjust", json!({"quantity": -1_000_000_001, "reason": "count"}), 422, "validation_failed"),
            ("adjust", json!({"quantity": 1}), 422, "invalid_body"),
            ("adjust", json!({"quantity": 1, "reason": "  "}), 422, "validation_failed"),
            ("adjust", json!({"quantity": 1, "reason": "a\u{0}b"}), 422, "validation_failed"),
            ("transfer", json!({"quantity": 1, "from": "main", "to": "main"}), 422, "validation_failed"),
            ("transfer", json!({"quantity": 1, "from": "main", "to": "mars"}), 422, "validation_failed"),
            ("transfer", json!({"quantity": 1, "from": "mars", "to": "main"}), 422, "validation_failed"),
            ("transfer", json!({"quantity": 0, "from": "main", "to": "leeds"}), 422, "validation_failed"),
            ("transfer", json!({"quantity": 1, "to": "leeds"}), 422, "invalid_body"),
        ];
        for (action, body, status, code) in cases {
            let r = app.post(&format!("/api/v1/stock/CUP-1/{action}"), body.clone(), Some(&seller)).await;
            assert_eq!(r.status.as_u16(), status, "{action} {body}: {}", r.text);
            r.assert_problem(status, code);
        }
        let raw = r#"{"quantity": 99999999999999999999999999999}"#;
        let req = axum::http::Request::post("/api/v1/stock/CUP-1/receive").header("authorization", format!("Bearer {seller}")).header("content-type", "application/json").body(axum::body::Body::from(raw)).unwrap();
        app.send(req).await.assert_problem(422, "invalid_body");
        app.post("/api/v1/stock/%27%3B--/receive", json!({"quantity": 1}), Some(&seller)).await.assert_problem(404, "sku_not_found");
        app.post("/api/v1/stock/NOPE-1/receive", json!({"quantity": 1}), Some(&seller)).await.assert_problem(404, "sku_not_found");
        for (query, status, code) in [("limit=0", 422, "validation_failed"), ("limit=abc", 400, "invalid_query"), ("cursor=zz", 422, "validation_failed")] {
            app.get(&format!("/api/v1/stock/CUP-1/movements?{query}"), Some(&seller)).await.assert_problem(status, code);
        }
        for bad in [json!({"code": "", "name": "X"}), json!({"code": "a b", "name": "X"}), json!({"code": "ok", "name": ""})] {
            app.post("/api/v1/stock/locations", bad, Some(&admin)).await.assert_problem(422, "validation_failed");
        }
        assert_eq!((stock(&app, &seller).await, ledger(&app, &seller, 100).await), before, "nothing was written");
        assert_ledger_explains_all_stock(&app).await;
    }

    async fn twenty_concurrent_removals_of_ten_units_succeed_exactly_ten_times(app) {
        let (seller, _) = shop_with_a_cup(&app).await;
        app.post("/api/v1/stock/CUP-1/receive", json!({"quantity": 10}), Some(&seller)).await;
        let app = std::sync::Arc::new(app);
        let attempts = (0..20).map(|_| {
            let (app, seller) = (app.clone(), seller.clone());
            tokio::spawn(async move {
                let r = app.post("/api/v1/stock/CUP-1/adjust", json!({"quantity": -1, "reason": "race"}), Some(&seller)).await;
                (r.status.as_u16(), r.body["code"].as_str().map(str::to_owned))
            })
        });
        let results: Vec<(u16, Option<String>)> = futures::future::join_all(attempts).await.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(results.iter().filter(|r| r.0 == 200).count(), 10, "{results:?}");
        assert!(results.iter().all(|r| r.0 == 200 || (r.0 == 409 && r.1.as_deref() == Some("insufficient_stock"))), "{results:?}");
        let after = stock(&app, &seller).await;
        assert_eq!((after["on_hand"].as_i64(), after["available"].as_i64()), (Some(0), Some(0)));
        assert_eq!(ledger(&app, &seller, 100).await.len(), 11);
        assert_ledger_explains_all_stock(&app).await;
    }
}
