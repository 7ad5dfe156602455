//! Price and FX locks, coupons under concurrency, guest carts merging at login, abandoned
//! carts.

use std::sync::Arc;

use serde_json::json;

use super::{address, cart_with, checkout, shop_with};
use crate::helpers::TestApp;
use crate::on_both_databases;

async fn set_price(app: &TestApp, seller: &str, variant: &str, gbp: i64) {
    let r = app
        .patch(
            &format!("/api/v1/variants/{variant}"),
            json!({"prices": [{"currency": "GBP", "amount_minor": gbp}]}),
            Some(seller),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

on_both_databases! {
    async fn a_locked_price_is_honoured_until_the_lock_ends_then_repriced(app) {
        let (_, seller, variant) = shop_with(&app, "LOCK-1", 10).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "LOCK-1", 1).await;
        set_price(&app, &seller, &variant, 1500).await;
        app.clock.advance(chrono::Duration::minutes(29));
        let shown = app.get(&format!("/api/v1/carts/{cart}"), Some(&buyer)).await;
        assert_eq!(shown.body["lines"][0]["unit_price_minor"], 1000, "locked");
        assert_eq!(shown.body["repriced"], false);
        app.clock.advance(chrono::Duration::minutes(2));
        let late = checkout(&app, &buyer, &cart, "tok_success").await;
        late.assert_problem(409, "cart_repriced");
        let shown = app.get(&format!("/api/v1/carts/{cart}"), Some(&buyer)).await;
        assert_eq!(shown.body["lines"][0]["unit_price_minor"], 1500, "{}", shown.text);
        let paid = checkout(&app, &buyer, &cart, "tok_success").await;
        assert_eq!(paid.body["status"], "paid", "{}", paid.text);
        assert_eq!(paid.body["total_minor"], 1500 + 395);

        // Within the lock, a price change during checkout does not change the order.
        let other = app.customer("other@example.com").await;
        let cart2 = cart_with(&app, &other, "LOCK-1", 1).await;
        set_price(&app, &seller, &variant, 9900).await;
        let r = checkout(&app, &other, &cart2, "tok_success").await;
        assert_eq!(r.body["total_minor"], 1500 + 395, "{}", r.text);
    }

    async fn another_nodes_price_change_reaches_new_carts_within_a_second(app) {
        let (_, seller, variant) = shop_with(&app, "NODE-1", 10).await;
        let id: uuid::Uuid = variant.parse().unwrap();
        let price_here = || async {
            let found = app.shop.variants.get(&app.shop.db, &[id]).await.unwrap();
            found[&id].prices.iter().find(|(c, _)| c == "GBP").map(|(_, a)| *a)
        };
        assert_eq!(price_here().await, Some(1000));
        // Another node (here: a write straight to the shared database) changes the price.
        let mut tx = app.shop.db.begin().await.unwrap();
        emporium_store::catalog::replace_prices(&mut tx, id, &[emporium_store::catalog::PriceRow {
            variant_id: id,
            currency: "GBP".into(),
            amount_minor: 1200,
            compare_at_minor: None,
        }]).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(price_here().await, Some(1000), "remembered for a moment");
        let price_in_new_cart = |token: String| {
            let app = &app;
            async move {
                let cart = cart_with(app, &token, "NODE-1", 1).await;
                let shown = app.get(&format!("/api/v1/carts/{cart}"), Some(&token)).await;
                shown.body["lines"][0]["unit_price_minor"].as_i64().unwrap()
            }
        };
        tokio::time::sleep(emporium_shop::cart::VariantCache::TTL).await;
        let third = app.customer("third@example.com").await;
        assert_eq!(price_in_new_cart(third).await, 1200, "seen once the moment passed");
        // This node's own change is seen at once.
        set_price(&app, &seller, &variant, 1300).await;
        let fourth = app.customer("fourth@example.com").await;
        assert_eq!(price_in_new_cart(fourth).await, 1300);
    }

    async fn a_cart_keeps_its_fx_rate_and_rounds_to_the_currency(app) {
        let (admin, _, _) = shop_with(&app, "FX-1", 10).await;
        app.put("/api/v1/admin/fx-rates/JPY", json!({"rate": "187.456"}), Some(&admin)).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = app.post("/api/v1/carts", json!({"currency": "JPY"}), Some(&buyer)).await;
        assert_eq!(cart.status, 201, "{}", cart.text);
        let id = cart.body["id"].as_str().unwrap().to_owned();
        let added = app.post(&format!("/api/v1/carts/{id}/items"), json!({"sku": "FX-1", "quantity": 1}), Some(&buyer)).await;
        assert_eq!(added.body["lines"][0]["unit_price_minor"], 1875, "£10 at 187.456 = ¥1874.56 → ¥1875");
        assert_eq!(added.body["fx_rate"], "187.456");
        // The rate changes mid-checkout: the cart's locked rate is used.
        app.put("/api/v1/admin/fx-rates/JPY", json!({"rate": "250"}), Some(&admin)).await;
        app.post("/api/v1/admin/shipping-methods", json!({"code": "world", "name": "World", "countries": ["*"], "rate_minor": 1000, "currency": "GBP"}), Some(&admin)).await;
        let r = app.post("/api/v1/checkout", json!({"cart_id": id, "shipping_address": address(), "shipping_method": "world", "payment_method": {"type": "card", "token": "tok_success"}}), Some(&buyer)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["currency"], "JPY");
        assert_eq!(r.body["total_minor"], 1875 + 1875, "goods and £10 shipping at the locked rate");
        app.post("/api/v1/carts", json!({"currency": "KWD"}), Some(&buyer)).await.assert_problem(409, "currency_not_enabled");
        app.put("/api/v1/admin/fx-rates/JPY", json!({"rate": "-3"}), Some(&admin)).await.assert_problem(422, "validation_failed");
    }

    async fn a_one_time_code_is_redeemed_once_under_concurrency(app) {
        let (admin, _, _) = shop_with(&app, "CPN-1", 20).await;
        let batch = app.post("/api/v1/admin/coupons/batch", json!({"code": "ONCE", "kind": "percent", "amount": 1000, "count": 3}), Some(&admin)).await;
        assert_eq!(batch.status, 201, "{}", batch.text);
        let code = batch.body["codes"][0].as_str().unwrap().to_owned();
        let mut carts = Vec::new();
        for i in 0..4 {
            let token = app.customer(&format!("c{i}@example.com")).await;
            let cart = cart_with(&app, &token, "CPN-1", 1).await;
            let r = app.post(&format!("/api/v1/carts/{cart}/coupons"), json!({"code": code}), Some(&token)).await;
            assert_eq!(r.body["discount_minor"], 100, "{}", r.text);
            carts.push((token, cart));
        }
        let app = Arc::new(app);
        let mut tasks = Vec::new();
        for (token, cart) in carts {
            let app = app.clone();
            tasks.push(tokio::spawn(async move { checkout(&app, &token, &cart, "tok_success").await }));
        }
        let mut paid = 0;
        for t in tasks {
            let r = t.await.unwrap();
            if r.status == 201 {
                assert_eq!(r.body["total_minor"], 900 + 395, "{}", r.text);
                paid += 1;
            } else {
                r.assert_problem(409, "coupon_used_up");
            }
        }
        assert_eq!(paid, 1, "exactly one redemption");
        let listed = app.get("/api/v1/admin/coupons", Some(&admin)).await;
        let used: Vec<i64> = listed.body["items"].as_array().unwrap().iter().filter(|c| c["code"] == code.as_str()).map(|c| c["times_used"].as_i64().unwrap()).collect();
        assert_eq!(used, vec![1]);
        app.assert_stock_equation().await;
    }

    async fn coupons_stack_only_when_allowed_and_respect_minimums(app) {
        let (admin, _, _) = shop_with(&app, "STK-1", 20).await;
        for (code, stackable) in [("TENOFF", false), ("FIVE", true), ("MORE", true)] {
            let r = app.post("/api/v1/admin/coupons", json!({"code": code, "kind": "fixed", "amount": 100, "currency": "GBP", "stackable": stackable}), Some(&admin)).await;
            assert_eq!(r.status, 201, "{}", r.text);
        }
        app.post("/api/v1/admin/coupons", json!({"code": "BIG", "kind": "percent", "amount": 2000, "min_subtotal_minor": 10000, "stackable": true}), Some(&admin)).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "STK-1", 2).await;
        let ok = app.post(&format!("/api/v1/carts/{cart}/coupons"), json!({"code": "tenoff"}), Some(&buyer)).await;
        assert_eq!(ok.body["discount_minor"], 100, "{}", ok.text);
        app.post(&format!("/api/v1/carts/{cart}/coupons"), json!({"code": "FIVE"}), Some(&buyer)).await.assert_problem(409, "coupon_not_stackable");
        app.delete(&format!("/api/v1/carts/{cart}/coupons/TENOFF"), Some(&buyer)).await;
        app.post(&format!("/api/v1/carts/{cart}/coupons"), json!({"code": "FIVE"}), Some(&buyer)).await;
        let both = app.post(&format!("/api/v1/carts/{cart}/coupons"), json!({"code": "MORE"}), Some(&buyer)).await;
        assert_eq!(both.body["discount_minor"], 200, "{}", both.text);
        app.post(&format!("/api/v1/carts/{cart}/coupons"), json!({"code": "BIG"}), Some(&buyer)).await.assert_problem(409, "coupon_minimum_not_met");
        app.post(&format!("/api/v1/carts/{cart}/coupons"), json!({"code": "NOPE"}), Some(&buyer)).await.assert_problem(404, "coupon_not_found");
        app.post("/api/v1/admin/coupons", json!({"code": "FIVE", "kind": "fixed", "amount": 1, "currency": "GBP"}), Some(&admin)).await.assert_problem(409, "coupon_code_taken");
    }

    async fn a_guest_cart_merges_into_the_customers_cart_at_login(app) {
        let (admin, _, _) = shop_with(&app, "GST-1", 20).await;
        let guest = app.post("/api/v1/carts", json!({}), None).await;
        let id = guest.body["id"].as_str().unwrap().to_owned();
        let token = guest.body["token"].as_str().unwrap().to_owned();
        let add = axum::http::Request::post(format!("/api/v1/carts/{id}/items"))
            .header("content-type", "application/json")
            .header("x-cart-token", &token)
            .body(axum::body::Body::from(r#"{"sku": "GST-1", "quantity": 3}"#))
            .unwrap();
        assert_eq!(app.send(add).await.status, 200);
        app.get(&format!("/api/v1/carts/{id}"), None).await.assert_problem(404, "cart_not_found");
        app.customer("buyer@example.com").await;
        let login = app.post("/api/v1/auth/login", json!({"email": "buyer@example.com", "password": crate::helpers::PASSWORD, "guest_cart_id": id, "guest_cart_token": token}), None).await;
        assert_eq!(login.status, 200, "{}", login.text);
        let bearer = login.body["token"].as_str().unwrap();
        let fresh = app.post("/api/v1/carts", json!({}), Some(bearer)).await;
        assert_eq!(fresh.body["lines"].as_array().unwrap().len(), 0);
        // The merged cart is the customer's newest cart before `fresh`: find it by checkout.
        app.clock.advance(chrono::Duration::minutes(90));
        let abandoned = app.get("/api/v1/admin/carts/abandoned?idle_minutes=60", Some(&admin)).await;
        assert_eq!(abandoned.body["by_currency"][0]["carts"], 1, "{}", abandoned.text);
        assert_eq!(abandoned.body["by_currency"][0]["value_minor"], 3000);
    }
}
