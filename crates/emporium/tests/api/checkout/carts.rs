//! Cart edits racing each other: an addition is decided on the cart as a read connection
//! saw it and written only if the cart is unchanged since, so none is lost and the limits
//! hold whatever the interleaving.

use std::sync::Arc;

use serde_json::json;

use super::{cart_with, shop_with};
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
}
