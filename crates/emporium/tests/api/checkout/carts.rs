//! Cart edits racing each other: an addition is decided on the cart as a read connection
//! saw it and written only if the cart is unchanged since, so none is lost and the limits
//! hold whatever the interleaving.

use std::sync::Arc;

use serde_json::json;

use super::{cart_with, checkout, shop_with, stock};
use crate::helpers::TestApp;
use crate::on_both_databases;

async fn add(
    app: &TestApp,
    token: &str,
    cart: &str,
    sku: &str,
    quantity: i64,
) -> crate::helpers::TestResponse {
    app.post(
        &format!("/api/v1/carts/{cart}/items"),
        json!({"sku": sku, "quantity": quantity}),
        Some(token),
    )
    .await
}

on_both_databases! {
    async fn racing_additions_to_one_cart_lose_none_and_keep_the_line_limit(app) {
        let (_, seller, _) = shop_with(&app, "RACE-0", 10).await;
        for i in 1..8 {
            app.product(&seller, &format!("Race {i}"), &format!("RACE-{i}"), 100 * i).await;
        }
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "RACE-0", 1).await;
        let app = Arc::new(app);
        // Twelve additions of 9 units race for a line that holds at most 100 (1 already in
        // it: eleven fit), and seven additions of other SKUs race with them.
        let mut tasks = Vec::new();
        for i in 0..19 {
            let (app, buyer, cart) = (app.clone(), buyer.clone(), cart.clone());
            tasks.push(tokio::spawn(async move {
                let (sku, quantity) = if i < 12 { ("RACE-0".to_owned(), 9) } else { (format!("RACE-{}", i - 11), i) };
                (sku.clone(), add(&app, &buyer, &cart, &sku, quantity).await)
            }));
        }
        let mut refused = 0;
        for t in tasks {
            let (sku, r) = t.await.unwrap();
            if r.status == 422 {
                assert_eq!(sku, "RACE-0", "{}", r.text);
                r.assert_problem(422, "validation_failed");
                refused += 1;
            } else {
                assert_eq!(r.status, 200, "{}", r.text);
            }
        }
        assert_eq!(refused, 1, "eleven additions of 9 fit beside the first unit, the twelfth does not");
        let shown = app.get(&format!("/api/v1/carts/{cart}"), Some(&buyer)).await;
        let lines = shown.body["lines"].as_array().unwrap();
        let quantity = |sku: &str| lines.iter().find(|l| l["sku"] == sku).map(|l| l["quantity"].as_i64().unwrap());
        assert_eq!(quantity("RACE-0"), Some(100), "{}", shown.text);
        for i in 1..8 {
            assert_eq!(quantity(&format!("RACE-{i}")), Some(i + 11), "{}", shown.text);
        }
        assert_eq!(lines.len(), 8);
        let subtotal: i64 = 100 * 1000 + (1..8).map(|i| (i + 11) * 100 * i).sum::<i64>();
        assert_eq!(shown.body["subtotal_minor"], subtotal);
    }

    async fn a_change_decided_on_a_cart_changed_since_is_not_written(app) {
        use emporium_store::carts;
        shop_with(&app, "STALE-1", 10).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "STALE-1", 2).await;
        let id: uuid::Uuid = cart.parse().unwrap();
        let (read, items) = carts::find_cart_with_items(&app.shop.db, id).await.unwrap().unwrap();
        // Another request changes the cart after it was read.
        let line = items[0].id;
        let r = app.patch(&format!("/api/v1/carts/{cart}/items/{line}"), json!({"quantity": 3}), Some(&buyer)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let mut writes = emporium_store::Writes::new();
        carts::queue_update_unchanged_cart(&mut writes, &read);
        carts::queue_add_item(&mut writes, &carts::CartItemRow { quantity: 5, ..items[0].clone() });
        let mut tx = app.shop.db.begin().await.unwrap();
        let refused = writes.run(&mut tx).await;
        assert!(matches!(refused, Err(emporium_store::StoreError::Unexpected(_))), "{refused:?}");
        drop(tx);
        let (now, items) = carts::find_cart_with_items(&app.shop.db, id).await.unwrap().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].quantity, 3, "the refused change wrote nothing");
        assert_eq!(now.version, read.version + 1);
        // Read again, the same change is written.
        let mut writes = emporium_store::Writes::new();
        carts::queue_update_unchanged_cart(&mut writes, &now);
        carts::queue_add_item(&mut writes, &carts::CartItemRow { quantity: 5, ..items[0].clone() });
        let mut tx = app.shop.db.begin().await.unwrap();
        writes.run(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
        let (_, items) = carts::find_cart_with_items(&app.shop.db, id).await.unwrap().unwrap();
        assert_eq!(items[0].quantity, 8);
    }

    async fn a_grant_for_a_cart_changed_since_it_was_priced_places_nothing(app) {
        use emporium_shop::inventory::engine::{Attempt, Placement};
        let (_, _, variant) = shop_with(&app, "MOVED-1", 5).await;
        let (token, user) = app.user("buyer@example.com", emporium_domain::identity::Role::Customer, emporium_domain::identity::UserStatus::Active).await;
        let user = emporium_domain::ids::UserId(user.parse().unwrap());
        let cart: uuid::Uuid = cart_with(&app, &token, "MOVED-1", 1).await.parse().unwrap();
        let priced_at = emporium_store::carts::find_cart(&app.shop.db, cart).await.unwrap().unwrap().version;
        // The cart moves on after the checkout priced it.
        assert_eq!(add(&app, &token, &cart.to_string(), "MOVED-1", 1).await.status, 200);
        let placed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = placed.clone();
        let reservation = uuid::Uuid::now_v7();
        let refused = app.shop.engine.reserve(Attempt::Stock {
            user,
            lines: vec![(variant.parse().unwrap(), "MOVED-1".to_owned(), 1)],
            ttl: chrono::Duration::minutes(5),
            then: Some(Arc::new(Placement {
                cart,
                cart_version: priced_at,
                reservation,
                rows: Box::new(move |w| {
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    emporium_store::carts::queue_close_locked_cart(w, user.0, cart, priced_at, chrono::Utc::now());
                }),
            })),
        }).await;
        assert!(matches!(refused, Err(emporium_shop::ShopError::Conflict { code: "cart_changed", .. })), "{refused:?}");
        assert_eq!(placed.load(std::sync::atomic::Ordering::SeqCst), 0, "no rows queued");
        assert!(emporium_store::reservations::find_reservation(&app.shop.db, user.0, reservation).await.unwrap().is_none());
        assert_eq!(stock(&app, "MOVED-1").await, (5, 0));
        assert_eq!(emporium_store::carts::find_cart(&app.shop.db, cart).await.unwrap().unwrap().status, "open");
        // Checked out now, the order holds both units.
        let r = checkout(&app, &token, &cart.to_string(), "tok_success").await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["total_minor"], 2000 + 395, "two units and shipping: {}", r.text);
        app.assert_stock_equation().await;
    }

    async fn an_order_holds_exactly_the_cart_it_closed(app) {
        let (_, seller, _) = shop_with(&app, "TAB-A", 100).await;
        let b = app.product(&seller, "Thing TAB-B", "TAB-B", 700).await;
        app.receive(b["variants"][0]["id"].as_str().unwrap(), "main", 100).await;
        let mut buyers = Vec::new();
        for i in 0..12 {
            let token = app.customer(&format!("tab{i}@example.com")).await;
            let cart = cart_with(&app, &token, "TAB-A", 1).await;
            buyers.push((token, cart));
        }
        let app = Arc::new(app);
        // Each buyer checks out while adding an item from another tab.
        let mut tasks = Vec::new();
        for (token, cart) in buyers {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                let (placed, added) = tokio::join!(
                    checkout(&app, &token, &cart, "tok_success"),
                    add(&app, &token, &cart, "TAB-B", 1),
                );
                (token, cart, placed, added)
            }));
        }
        for t in tasks {
            let (token, cart, placed, added) = t.await.unwrap();
            let shown = app.get(&format!("/api/v1/carts/{cart}"), Some(&token)).await;
            let in_cart: std::collections::BTreeMap<String, i64> = shown.body["lines"].as_array().unwrap().iter()
                .map(|l| (l["sku"].as_str().unwrap().to_owned(), l["quantity"].as_i64().unwrap())).collect();
            match placed.status.as_u16() {
                201 => {
                    let order = app.get(&format!("/api/v1/orders/{}", placed.body["order_id"].as_str().unwrap()), Some(&token)).await;
                    let in_order: std::collections::BTreeMap<String, i64> = order.body["lines"].as_array().unwrap().iter()
                        .map(|l| (l["sku"].as_str().unwrap().to_owned(), l["quantity"].as_i64().unwrap())).collect();
                    assert_eq!(in_order, in_cart, "the order is the cart it closed: {}", order.text);
                    assert_eq!(shown.body["status"], "checked_out");
                    if added.status == 200 {
                        assert_eq!(in_order.get("TAB-B"), Some(&1), "an addition answered 200 before the close is in the order");
                    } else {
                        added.assert_problem(409, "cart_not_open");
                    }
                }
                _ => {
                    placed.assert_problem(409, "cart_changed");
                    assert_eq!(added.status, 200, "{}", added.text);
                    assert_eq!(shown.body["status"], "open");
                }
            }
        }
        let (paid, succeeded, _) = emporium_store::payments::integrity(&app.shop.db).await.unwrap();
        assert_eq!(paid, succeeded);
        app.assert_stock_equation().await;
    }
}
