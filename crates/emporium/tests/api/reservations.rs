use std::sync::Arc;

use emporium_domain::catalog::Sku;
use emporium_shop::inventory::reservations;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_both_databases;

/// An active product with one SKU and `stock` units in location "main"; returns (sku, variant id).
async fn stocked(app: &TestApp, seller: &str, sku: &str, stock: i64) -> (String, String) {
    let product = app
        .product(seller, &format!("Thing {sku}"), sku, 1000)
        .await;
    let variant = product["variants"][0]["id"].as_str().unwrap().to_owned();
    if stock > 0 {
        app.receive(&variant, "main", stock).await;
    }
    (sku.to_owned(), variant)
}

async fn available(app: &TestApp, sku: &str) -> i64 {
    let page = app
        .get(&format!("/api/v1/products/{}", sku.to_lowercase()), None)
        .await;
    page.body["variants"][0]["available"].as_i64().unwrap()
}

fn lines(items: &[(&str, i64)]) -> Value {
    json!({"lines": items.iter().map(|(s, q)| json!({"sku": s, "quantity": q})).collect::<Vec<_>>()})
}

on_both_databases! {
    async fn a_reservation_holds_units_until_it_is_released(app) {
        let seller = app.seller("seller@example.com").await;
        stocked(&app, &seller, "CUP-1", 10).await;
        let buyer = app.customer("buyer@example.com").await;
        let r = app.post("/api/v1/reservations", lines(&[("cup-1", 3)]), Some(&buyer)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["lines"][0]["sku"], "CUP-1");
        assert_eq!(r.body["lines"][0]["quantity"], 3);
        assert_eq!(r.body["status"], "active");
        assert_eq!(available(&app, "CUP-1").await, 7);
        let id = r.body["id"].as_str().unwrap().to_owned();
        assert_eq!(app.get(&format!("/api/v1/reservations/{id}"), Some(&buyer)).await.body["status"], "active");

        let other = app.customer("other@example.com").await;
        app.get(&format!("/api/v1/reservations/{id}"), Some(&other)).await.assert_problem(404, "reservation_not_found");

        let extended = app.post(&format!("/api/v1/reservations/{id}/extend"), json!({"ttl_seconds": 3600}), Some(&buyer)).await;
        assert_eq!(extended.status, 200, "{}", extended.text);
        assert!(extended.body["expires_at"].as_str().unwrap() > r.body["expires_at"].as_str().unwrap());

        let released = app.delete(&format!("/api/v1/reservations/{id}"), Some(&buyer)).await;
        assert_eq!(released.status, 200, "{}", released.text);
        assert_eq!(released.body["status"], "released");
        assert_eq!(available(&app, "CUP-1").await, 10);
        app.delete(&format!("/api/v1/reservations/{id}"), Some(&buyer)).await.assert_problem(409, "reservation_not_active");
        app.assert_stock_equation().await;
    }

    async fn a_short_line_reserves_nothing_and_names_the_sku(app) {
        let seller = app.seller("seller@example.com").await;
        stocked(&app, &seller, "PLATE", 5).await;
        stocked(&app, &seller, "FORK", 1).await;
        let buyer = app.customer("buyer@example.com").await;
        let r = app.post("/api/v1/reservations", lines(&[("PLATE", 2), ("FORK", 2)]), Some(&buyer)).await;
        r.assert_problem(409, "out_of_stock");
        assert_eq!(r.body["sku"], "FORK");
        assert_eq!(r.body["available"], 1);
        assert_eq!(available(&app, "PLATE").await, 5, "all or nothing");
        app.post("/api/v1/reservations", lines(&[("NOPE", 1)]), Some(&buyer)).await.assert_problem(404, "sku_not_found");
        app.post("/api/v1/reservations", lines(&[("PLATE", 0)]), Some(&buyer)).await.assert_problem(422, "validation_failed");
        app.post("/api/v1/reservations", lines(&[]), Some(&buyer)).await.assert_problem(422, "validation_failed");
        app.post("/api/v1/reservations", json!({"lines": [{"sku": "PLATE", "quantity": 1}], "ttl_seconds": 0}), Some(&buyer)).await.assert_problem(422, "validation_failed");
        app.post("/api/v1/reservations", lines(&[("PLATE", 1)]), None).await.assert_problem(401, "authentication_required");
        app.assert_stock_equation().await;
    }

    async fn a_line_is_allocated_across_locations(app) {
        let seller = app.seller("seller@example.com").await;
        let (_, variant) = stocked(&app, &seller, "RUG", 0).await;
        app.receive(&variant, "north", 2).await;
        app.receive(&variant, "south", 3).await;
        let buyer = app.customer("buyer@example.com").await;
        let r = app.post("/api/v1/reservations", lines(&[("RUG", 4)]), Some(&buyer)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let allocations = r.body["lines"][0]["allocations"].as_array().unwrap();
        assert_eq!(allocations.len(), 2);
        assert_eq!(allocations.iter().map(|a| a["quantity"].as_i64().unwrap()).sum::<i64>(), 4);
        app.assert_stock_equation().await;
    }

    async fn a_second_reservation_of_a_held_sku_names_the_first(app) {
        let seller = app.seller("seller@example.com").await;
        stocked(&app, &seller, "LAMP", 10).await;
        let buyer = app.customer("buyer@example.com").await;
        let first = app.post("/api/v1/reservations", lines(&[("LAMP", 1)]), Some(&buyer)).await;
        let second = app.post("/api/v1/reservations", lines(&[("LAMP", 1)]), Some(&buyer)).await;
        second.assert_problem(409, "already_reserved");
        assert_eq!(second.body["reservation_id"], first.body["id"]);
    }

    async fn thousands_of_buyers_racing_for_little_stock_get_exactly_the_stock(app) {
        let seller = app.seller("seller@example.com").await;
        stocked(&app, &seller, "LAST", 50).await;
        let buyers = app.bulk_users(2000).await;
        let shop = Arc::new(app.shop.clone());
        let tasks: Vec<_> = buyers
            .into_iter()
            .map(|user| {
                let shop = shop.clone();
                tokio::spawn(async move {
                    reservations::reserve(&shop, user, vec![(Sku::parse("LAST").unwrap(), 1)], None).await
                })
            })
            .collect();
        let mut granted = 0;
        let mut sold_out = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => granted += 1,
                Err(emporium_shop::ShopError::ConflictDetails { code: "out_of_stock", .. }) => sold_out += 1,
                Err(other) => panic!("unexpected answer: {other:?}"),
            }
        }
        assert_eq!((granted, sold_out), (50, 1950));
        assert_eq!(available(&app, "LAST").await, 0);
        app.assert_stock_equation().await;
    }

    async fn a_customer_racing_itself_holds_one_reservation(app) {
        let seller = app.seller("seller@example.com").await;
        stocked(&app, &seller, "SELF", 100).await;
        let user = app.bulk_users(1).await[0];
        let shop = Arc::new(app.shop.clone());
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let shop = shop.clone();
                tokio::spawn(async move { reservations::reserve(&shop, user, vec![(Sku::parse("SELF").unwrap(), 1)], None).await })
            })
            .collect();
        let mut granted = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => granted += 1,
                Err(emporium_shop::ShopError::ConflictDetails { code: "already_reserved", .. }) => {}
                Err(other) => panic!("unexpected answer: {other:?}"),
            }
        }
        assert_eq!(granted, 1);
        assert_eq!(available(&app, "SELF").await, 99);
        app.assert_stock_equation().await;
    }

    async fn expired_reservations_return_their_stock_and_leave_an_event(app) {
        let seller = app.seller("seller@example.com").await;
        stocked(&app, &seller, "TEA", 5).await;
        let buyer = app.customer("buyer@example.com").await;
        let r = app.post("/api/v1/reservations", json!({"lines": [{"sku": "TEA", "quantity": 2}], "ttl_seconds": 20}), Some(&buyer)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let reaper = emporium_worker::Reaper::new(app.shop.clone());
        assert_eq!(reaper.run_once().await.unwrap(), emporium_worker::Outcome::Idle);
        let sleep = reaper.sleep_time().await.unwrap();
        assert!(sleep <= std::time::Duration::from_secs(20) && sleep > std::time::Duration::from_secs(19), "sleeps until the deadline: {sleep:?}");
        app.clock.advance(chrono::Duration::seconds(19));
        assert_eq!(reaper.run_once().await.unwrap(), emporium_worker::Outcome::Idle, "not before the deadline");
        app.clock.advance(chrono::Duration::seconds(1));
        assert_eq!(reaper.run_once().await.unwrap(), emporium_worker::Outcome::Worked(1));
        assert_eq!(available(&app, "TEA").await, 5);
        let id = r.body["id"].as_str().unwrap();
        assert_eq!(app.get(&format!("/api/v1/reservations/{id}"), Some(&buyer)).await.body["status"], "expired");
        let events = emporium_store::outbox::pending(&app.shop.db, 100).await.unwrap();
        assert!(events.iter().any(|e| e.topic == "inventory.reservation_expired" && e.payload.0["reservation_id"] == id));
        // The customer may reserve the SKU again.
        assert_eq!(app.post("/api/v1/reservations", lines(&[("TEA", 1)]), Some(&buyer)).await.status, 201);
        app.assert_stock_equation().await;
    }

    async fn a_commit_sells_the_units_exactly_once(app) {
        let seller = app.seller("seller@example.com").await;
        stocked(&app, &seller, "BOOK", 4).await;
        let user = app.bulk_users(1).await[0];
        let view = reservations::reserve(&app.shop, user, vec![(Sku::parse("BOOK").unwrap(), 3)], None).await.unwrap();
        let shop = Arc::new(app.shop.clone());
        let commits: Vec<_> = (0..5).map(|_| {
            let shop = shop.clone();
            tokio::spawn(async move { reservations::commit(&shop, user, view.id).await.is_ok() })
        }).collect();
        let mut ok = 0;
        for c in commits {
            ok += usize::from(c.await.unwrap());
        }
        assert_eq!(ok, 1, "exactly one commit wins");
        assert_eq!(available(&app, "BOOK").await, 1);
        let (on_hand, reserved, _, _) = emporium_store::reservations::stock_totals(&app.shop.db).await.unwrap();
        assert_eq!((on_hand, reserved), (1, 0));
        app.assert_stock_equation().await;
    }

    async fn a_full_queue_turns_attempts_away_instead_of_queueing_them(app) {
        let app = app.reconfigured(|c| {
            c.engine.max_queue = 8;
            // A long wait keeps the queue full while the burst arrives.
            c.engine.max_wait = std::time::Duration::from_millis(200);
        });
        let seller = app.seller("seller@example.com").await;
        stocked(&app, &seller, "BURST", 1000).await;
        let buyers = app.bulk_users(200).await;
        let shop = Arc::new(app.shop.clone());
        let tasks: Vec<_> = buyers
            .into_iter()
            .map(|user| {
                let shop = shop.clone();
                tokio::spawn(async move { reservations::reserve(&shop, user, vec![(Sku::parse("BURST").unwrap(), 1)], None).await })
            })
            .collect();
        let (mut granted, mut turned_away) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => granted += 1,
                Err(emporium_shop::ShopError::Overloaded { retry_after_secs }) => {
                    assert!(retry_after_secs >= 1);
                    turned_away += 1;
                }
                Err(other) => panic!("unexpected answer: {other:?}"),
            }
        }
        assert!(turned_away > 0, "some attempts were turned away");
        assert!(granted > 0, "the admitted attempts were served");
        assert_eq!(granted + turned_away, 200);
        assert_eq!(available(&app, "BURST").await, 1000 - granted);
        app.assert_stock_equation().await;
    }
}
