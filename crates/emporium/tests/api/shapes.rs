//! Lists of any length give back the rows of their values and write exactly their rows: the
//! store pads the lists it binds into SQL text (`IN` lists, multi-row `VALUES`) to a few
//! lengths, so that their statements stay prepared. 131 values are a full statement of 128
//! and one of 3 padded to 4.

use chrono::Duration;
use emporium_store::outbox::{self, EventRow, Json};
use emporium_store::reservations::{self, LineRow, ReservationRow};
use emporium_store::{Writes, identity};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::on_both_databases;

const MANY: usize = 131;

on_both_databases! {
    async fn reservations_holds_and_purchases_of_any_length_are_exact(app) {
        let seller = app.seller("shapes-seller@example.com").await;
        let product = app.product(&seller, "Shapes", "SHAPES-1", 1000).await;
        let sku = product["variants"][0]["id"].as_str().unwrap().to_owned();
        let variant: Uuid = sku.parse().unwrap();
        let location = app.receive(&sku, "main", 1000).await;
        let admin = app.admin().await;
        let now = app.shop.now();
        let sale = app
            .post(
                "/api/v1/admin/flash-sales",
                json!({"sku": "SHAPES-1", "price": 500, "currency": "GBP", "starts_at": now,
                       "ends_at": now + Duration::hours(1), "quantity": 10, "per_customer_limit": 3}),
                Some(&admin),
            )
            .await;
        assert_eq!(sale.status, 201, "{}", sale.text);
        let sale: Uuid = sale.body["id"].as_str().unwrap().parse().unwrap();
        let buyers = app.bulk_users(MANY).await;
        let strangers = app.bulk_users(2).await;

        let rows: Vec<ReservationRow> = buyers
            .iter()
            .map(|u| ReservationRow {
                user_id: u.0,
                id: Uuid::now_v7(),
                status: "active".into(),
                flash_sale_id: None,
                expires_at: now + Duration::minutes(10),
                created_at: now,
                updated_at: now,
            })
            .collect();
        let lines: Vec<LineRow> = rows
            .iter()
            .map(|r| LineRow {
                user_id: r.user_id,
                reservation_id: r.id,
                variant_id: variant,
                location_id: location,
                quantity: 1,
                unit_price_minor: None,
                currency: None,
            })
            .collect();
        let mut tx = app.shop.db.begin().await.unwrap();
        let before = reservations::lock_levels(&mut tx, &[variant]).await.unwrap()[0].reserved;
        assert!(reservations::add_reserved(&mut tx, variant, location, MANY as i64).await.unwrap());
        reservations::insert_reservations(&mut tx, &rows, &lines).await.unwrap();

        // Every buyer's hold once, none for the strangers.
        let pairs: Vec<(Uuid, Uuid)> = buyers.iter().chain(&strangers).map(|u| (u.0, variant)).collect();
        let holds = reservations::find_holds(&mut tx, &pairs).await.unwrap();
        assert_eq!(holds.len(), MANY);
        let mut held: Vec<Uuid> = holds.iter().map(|h| h.user_id).collect();
        held.sort_unstable();
        held.dedup();
        assert_eq!(held.len(), MANY);
        assert!(strangers.iter().all(|s| !held.contains(&s.0)));
        let by_id: std::collections::HashMap<Uuid, Uuid> = rows.iter().map(|r| (r.user_id, r.id)).collect();
        assert!(holds.iter().all(|h| by_id[&h.user_id] == h.reservation_id));

        // One level, whatever the length of the list asking for it.
        let levels = reservations::lock_levels(&mut tx, &[variant, Uuid::now_v7(), Uuid::now_v7()]).await.unwrap();
        assert_eq!(levels.len(), 1);
        assert_eq!((levels[0].on_hand, levels[0].reserved), (1000, before + MANY as i64));

        // Purchases: every buyer once, five of them twice (the conflict adds up).
        let deltas: Vec<(Uuid, i64)> = buyers.iter().map(|u| (u.0, 1)).collect();
        reservations::add_sale_purchases(&mut tx, sale, &deltas).await.unwrap();
        reservations::add_sale_purchases(&mut tx, sale, &deltas[..5]).await.unwrap();
        let asked: Vec<Uuid> = buyers.iter().chain(&strangers).map(|u| u.0).collect();
        let mut bought = reservations::sale_purchases(&mut tx, sale, &asked).await.unwrap();
        bought.sort_unstable();
        assert_eq!(bought.len(), MANY);
        let twice: Vec<Uuid> = bought.iter().filter(|(_, q)| *q == 2).map(|(u, _)| *u).collect();
        let mut first_five: Vec<Uuid> = buyers[..5].iter().map(|u| u.0).collect();
        first_five.sort_unstable();
        assert_eq!(twice, first_five);
        assert!(bought.iter().all(|(_, q)| *q == 1 || *q == 2));
        tx.commit().await.unwrap();

        // Nothing but the rows asked for reached the tables.
        let (_, reserved, held_units, _) = reservations::stock_totals(&app.shop.db).await.unwrap();
        assert_eq!(held_units, MANY as i64);
        assert!(reserved >= held_units);
        for r in [&rows[0], &rows[MANY - 1]] {
            let (found, found_lines) = reservations::find_reservation(&app.shop.db, r.user_id, r.id).await.unwrap().unwrap();
            assert_eq!(found.status, "active");
            assert_eq!(found_lines.len(), 1);
        }
    }

    async fn session_lookups_of_any_length_find_exactly_the_live_pairs(app) {
        let mut pairs = Vec::new();
        let mut users = Vec::new();
        for i in 0..3 {
            let token = app.customer(&format!("shapes{i}@example.com")).await;
            let me = app.get("/api/v1/me", Some(&token)).await;
            assert_eq!(me.status, 200, "{}", me.text);
            let user: Uuid = me.body["id"].as_str().unwrap().parse().unwrap();
            pairs.push((user, Sha256::digest(token.as_bytes()).to_vec()));
            users.push(user);
        }
        // Unknown pairs around them, and a known user with a wrong hash.
        for _ in 0..MANY {
            pairs.push((Uuid::now_v7(), vec![7; 32]));
        }
        pairs.push((users[0], vec![9; 32]));
        let found = identity::find_session_actors(&app.shop.db, &pairs).await.unwrap();
        let mut found: Vec<Uuid> = found.iter().map(|s| s.user_id).collect();
        found.sort_unstable();
        users.sort_unstable();
        assert_eq!(found, users);
    }

    async fn delivering_any_number_of_events_marks_exactly_those(app) {
        let users = app.bulk_users(2).await;
        let now = app.shop.now();
        let before = outbox::count_pending(&app.shop.db).await.unwrap();
        let events: Vec<EventRow> = (0..MANY)
            .map(|n| EventRow {
                user_id: users[n % 2].0,
                id: Uuid::now_v7(),
                topic: "test.shapes".into(),
                payload: Json(json!({ "n": n })),
                created_at: now,
                attempts: 0,
            })
            .collect();
        let mut tx = app.shop.db.begin().await.unwrap();
        let mut w = Writes::new();
        for e in &events {
            outbox::queue_insert(&mut w, e);
        }
        w.run(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(outbox::count_pending(&app.shop.db).await.unwrap(), before + MANY as i64);

        // All but the first: the first stays pending.
        let delivered: Vec<(Uuid, Uuid)> = events[1..].iter().map(|e| (e.user_id, e.id)).collect();
        let mut tx = app.shop.db.begin().await.unwrap();
        outbox::mark_delivered(&mut tx, &delivered, now).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(outbox::count_pending(&app.shop.db).await.unwrap(), before + 1);
        let pending = outbox::pending(&app.shop.db, 1000).await.unwrap();
        let mine: Vec<_> = pending.iter().filter(|e| e.topic == "test.shapes").collect();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].id, events[0].id);
    }
}
