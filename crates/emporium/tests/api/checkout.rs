//! Carts, checkout, payments and orders: the seeds' edge cases, on both databases.

mod carts;
mod payments;
mod pricing;

use std::sync::Arc;

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_both_databases;

/// A shop ready to sell: an admin, a seller, GB tax at 20% (prices include it), a UK
/// shipping method (£3.95, free over £50), and one product `sku` priced £10 with `stock`
/// units. Returns (admin token, seller token, variant id).
pub async fn shop_with(app: &TestApp, sku: &str, stock: i64) -> (String, String, String) {
    let admin = app.admin().await;
    let seller = app
        .seller(&format!("seller-{}@example.com", sku.to_lowercase()))
        .await;
    let r = app
        .post(
            "/api/v1/admin/tax-rates",
            json!({"country": "GB", "name": "VAT", "rate_basis_points": 2000}),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app.post("/api/v1/admin/shipping-methods", json!({"code": "uk-standard", "name": "UK", "countries": ["GB"], "rate_minor": 395, "currency": "GBP", "free_over_minor": 5000}), Some(&admin)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let product = app
        .product(&seller, &format!("Thing {sku}"), sku, 1000)
        .await;
    let variant = product["variants"][0]["id"].as_str().unwrap().to_owned();
    if stock > 0 {
        app.receive(&variant, "main", stock).await;
    }
    (admin, seller, variant)
}

pub fn address() -> Value {
    json!({"name": "Ada Lovelace", "line1": "1 Analytical St", "city": "London", "postal_code": "N1 9GU", "country": "GB"})
}

/// A customer's cart holding `quantity` of `sku`; returns the cart id.
pub async fn cart_with(app: &TestApp, token: &str, sku: &str, quantity: i64) -> String {
    let cart = app.post("/api/v1/carts", json!({}), Some(token)).await;
    assert_eq!(cart.status, 201, "{}", cart.text);
    let id = cart.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/carts/{id}/items"),
            json!({"sku": sku, "quantity": quantity}),
            Some(token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    id
}

pub async fn checkout(
    app: &TestApp,
    token: &str,
    cart: &str,
    card: &str,
) -> crate::helpers::TestResponse {
    app.post(
        "/api/v1/checkout",
        json!({"cart_id": cart, "shipping_address": address(), "payment_method": {"type": "card", "token": card}}),
        Some(token),
    )
    .await
}

/// Checks `cart` out with `tok_success` while the server "dies" between the provider's
/// capture and applying it: returns the rows the grant wrote, still `pending_payment` and
/// `pending`, as the checkout would have applied them.
pub async fn placed_without_applying(
    app: &TestApp,
    buyer: &str,
    cart: &str,
) -> emporium_shop::payments::Placed {
    let faults = app.shop.config.checkout.faults.clone();
    faults
        .after_charge
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(checkout(app, buyer, cart, "tok_success").await.status, 500);
    faults
        .after_charge
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let db = &app.shop.db;
    let cart = emporium_store::carts::find_cart(db, cart.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let order = emporium_store::orders::order_for_cart(db, cart.user_id, cart.id)
        .await
        .unwrap()
        .unwrap();
    let payment = emporium_store::payments::payments_of_order(db, order.user_id, order.id)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let (reservation, lines) =
        emporium_store::reservations::find_reservation(db, order.user_id, order.reservation_id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        (order.status.as_str(), payment.status.as_str()),
        ("pending_payment", "pending")
    );
    emporium_shop::payments::Placed {
        order,
        payment,
        reservation,
        lines,
    }
}

/// What the provider answered for a captured card.
pub fn capture_report() -> emporium_shop::payments::Report {
    emporium_shop::payments::Report {
        status: emporium_domain::order::PaymentStatus::Succeeded,
        reference: Some("ch_fast".into()),
        card_brand: Some("visa".into()),
        card_last4: Some("4242".into()),
        failure_code: None,
    }
}

/// (on hand, reserved) of a SKU in total.
pub async fn stock(app: &TestApp, sku: &str) -> (i64, i64) {
    let r = app
        .get(
            &format!("/api/v1/stock/{sku}"),
            Some(&app.login("admin@example.com").await),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    (
        r.body["on_hand"].as_i64().unwrap(),
        r.body["reserved"].as_i64().unwrap(),
    )
}

on_both_databases! {
    async fn a_paid_checkout_commits_stock_and_snapshots_the_order(app) {
        shop_with(&app, "MUG-1", 5).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "MUG-1", 2).await;
        let shown = app.get(&format!("/api/v1/carts/{cart}"), Some(&buyer)).await;
        assert_eq!(shown.body["subtotal_minor"], 2000);
        assert_eq!(shown.body["shipping_minor"], 395);
        assert_eq!(shown.body["tax_minor"], 333 + 66, "20% VAT included in goods and shipping");
        assert_eq!(shown.body["total_minor"], 2395);

        let r = checkout(&app, &buyer, &cart, "tok_success").await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["status"], "paid");
        assert_eq!(r.body["payment"]["status"], "succeeded");
        assert_eq!(r.body["payment"]["card_last4"], "4242");
        assert_eq!(r.body["total_minor"], 2395);
        assert_eq!(stock(&app, "MUG-1").await, (3, 0), "two units sold, none left reserved");

        let order_id = r.body["order_id"].as_str().unwrap();
        let order = app.get(&format!("/api/v1/orders/{order_id}"), Some(&buyer)).await;
        assert_eq!(order.body["lines"][0]["title"], "Thing MUG-1");
        assert_eq!(order.body["lines"][0]["unit_price_minor"], 1000);
        assert_eq!(order.body["fulfilments"].as_array().unwrap().len(), 1);
        let history = app.get("/api/v1/orders", Some(&buyer)).await;
        assert_eq!(history.body["items"].as_array().unwrap().len(), 1);
        // A repeated submit of the same cart answers with the same order.
        let again = checkout(&app, &buyer, &cart, "tok_success").await;
        assert_eq!(again.body["order_id"], r.body["order_id"], "{}", again.text);
        assert_eq!(emporium_store::payments::integrity(&app.shop.db).await.unwrap(), (1, 1, 0));
        for topic in ["order.created", "order.paid"] {
            assert_eq!(emporium_store::outbox::count_topic(&app.shop.db, topic).await.unwrap(), 1, "{topic}");
        }
        app.assert_stock_equation().await;
    }

    async fn two_customers_racing_for_the_last_unit_get_one_order(app) {
        shop_with(&app, "LAST-1", 1).await;
        let a = app.customer("a@example.com").await;
        let b = app.customer("b@example.com").await;
        let cart_a = cart_with(&app, &a, "LAST-1", 1).await;
        let cart_b = cart_with(&app, &b, "LAST-1", 1).await;
        let app = Arc::new(app);
        let (ra, rb) = tokio::join!(
            { let app = app.clone(); async move { checkout(&app, &a, &cart_a, "tok_success").await } },
            { let app = app.clone(); async move { checkout(&app, &b, &cart_b, "tok_success").await } },
        );
        let statuses = [ra.status.as_u16(), rb.status.as_u16()];
        assert!(statuses.contains(&201) && statuses.contains(&409), "{} / {}", ra.text, rb.text);
        let loser = if ra.status == 409 { &ra } else { &rb };
        assert_eq!(loser.body["code"], "out_of_stock");
        assert_eq!(stock(&app, "LAST-1").await, (0, 0));
        app.assert_stock_equation().await;
    }

    async fn a_declined_card_cancels_the_order_and_frees_the_stock(app) {
        shop_with(&app, "DEC-1", 3).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "DEC-1", 2).await;
        let r = checkout(&app, &buyer, &cart, "tok_decline").await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["status"], "cancelled");
        assert_eq!(r.body["payment"]["failure_code"], "card_declined");
        assert_eq!(stock(&app, "DEC-1").await, (3, 0));
        assert_eq!(emporium_store::outbox::count_topic(&app.shop.db, "payment.failed").await.unwrap(), 1);
        // The cart reopened: another card works.
        let retry = checkout(&app, &buyer, &cart, "tok_success").await;
        assert_eq!(retry.body["status"], "paid", "{}", retry.text);
        assert_ne!(retry.body["order_id"], r.body["order_id"]);
        // Submitting the cart once more answers with the live order, not the cancelled one.
        let again = checkout(&app, &buyer, &cart, "tok_success").await;
        assert_eq!(again.body["order_id"], retry.body["order_id"], "{}", again.text);
        let poor = checkout(&app, &app.customer("poor@example.com").await, &cart, "tok_insufficient_funds").await;
        poor.assert_problem(404, "cart_not_found");
        app.assert_stock_equation().await;
    }

    async fn concurrent_double_submits_create_one_order(app) {
        shop_with(&app, "DUP-1", 10).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "DUP-1", 1).await;
        let app = Arc::new(app);
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (app, buyer, cart) = (app.clone(), buyer.clone(), cart.clone());
            tasks.push(tokio::spawn(async move { checkout(&app, &buyer, &cart, "tok_success").await }));
        }
        let mut orders = std::collections::BTreeSet::new();
        for t in tasks {
            let r = t.await.unwrap();
            assert!(r.status == 201 || r.status == 409, "{}", r.text);
            if r.status == 201 {
                orders.insert(r.body["order_id"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(orders.len(), 1, "one order whatever the double submits");
        assert_eq!(emporium_store::payments::integrity(&app.shop.db).await.unwrap(), (1, 1, 0));
        assert_eq!(stock(&app, "DUP-1").await, (9, 0));
        app.assert_stock_equation().await;
    }

    async fn rows_placed_with_a_grant_stand_or_fall_with_it(app) {
        use emporium_shop::inventory::engine::{Attempt, Placement};
        use emporium_domain::ids::UserId;
        let (_, _, a) = shop_with(&app, "WITH-A", 5).await;
        let b = app.product(&app.seller("seller-with-b@example.com").await, "Thing B", "WITH-B", 1000).await;
        let b = b["variants"][0]["id"].as_str().unwrap().to_owned();
        app.receive(&b, "main", 5).await;
        let (token, user) = app.user("buyer@example.com", emporium_domain::identity::Role::Customer, emporium_domain::identity::UserStatus::Active).await;
        let user = UserId(user.parse().unwrap());
        let cart: uuid::Uuid = cart_with(&app, &token, "WITH-A", 1).await.parse().unwrap();
        let version = emporium_store::carts::find_cart(&app.shop.db, cart).await.unwrap().unwrap().version;
        let placed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let attempt = |variant: &str, sku: &str| {
            let placed = placed.clone();
            Attempt::Stock {
                user,
                lines: vec![(variant.parse().unwrap(), sku.to_owned(), 1)],
                ttl: chrono::Duration::minutes(5),
                then: Some(Arc::new(Placement {
                    cart,
                    cart_version: version,
                    reservation: uuid::Uuid::now_v7(),
                    rows: Box::new(move |w| {
                        placed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        emporium_store::carts::queue_close_locked_cart(w, user.0, cart, version, chrono::Utc::now());
                    }),
                })),
            }
        };
        // Two attempts for the same open cart, racing: one is granted with its rows (the
        // cart closed in the same transaction), the other refused without a grant.
        let (first, second) = tokio::join!(
            app.shop.engine.reserve(attempt(&a, "WITH-A")),
            app.shop.engine.reserve(attempt(&b, "WITH-B")),
        );
        let (granted, refused) = match (first, second) {
            (Ok(g), Err(r)) | (Err(r), Ok(g)) => (g, r),
            other => panic!("one grant and one refusal, got {other:?}"),
        };
        assert!(matches!(refused, emporium_shop::ShopError::Conflict { code: "already_checked_out", .. }), "{refused:?}");
        assert_eq!(placed.load(std::sync::atomic::Ordering::SeqCst), 1, "only the grant's rows are queued");
        let cart_row = emporium_store::carts::find_cart(&app.shop.db, cart).await.unwrap().unwrap();
        assert_eq!(cart_row.status, "checked_out");
        assert!(emporium_store::reservations::find_reservation(&app.shop.db, user.0, granted.id).await.unwrap().is_some());
        let reserved = stock(&app, "WITH-A").await.1 + stock(&app, "WITH-B").await.1;
        assert_eq!(reserved, 1, "one unit reserved, by the grant");
        // The cart is closed now: a further attempt is refused and reserves nothing.
        let late = app.shop.engine.reserve(attempt(&a, "WITH-A")).await;
        assert!(matches!(late, Err(emporium_shop::ShopError::Conflict { code: "already_checked_out", .. })), "{late:?}");
        assert_eq!(stock(&app, "WITH-A").await.1 + stock(&app, "WITH-B").await.1, 1);
        assert_eq!(placed.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Rows that fail (they close a cart that is not there) take the grant down with
        // them: the batch's transaction is lost whole, nothing stays reserved. (A SKU the
        // buyer holds nothing of, so the grant itself would go through.)
        let c = app.product(&app.seller("seller-with-c@example.com").await, "Thing C", "WITH-C", 1000).await;
        let c = c["variants"][0]["id"].as_str().unwrap().to_owned();
        app.receive(&c, "main", 5).await;
        let open: uuid::Uuid = cart_with(&app, &token, "WITH-C", 1).await.parse().unwrap();
        let doomed = uuid::Uuid::now_v7();
        let failing = app.shop.engine.reserve(Attempt::Stock {
            user,
            lines: vec![(c.parse().unwrap(), "WITH-C".to_owned(), 1)],
            ttl: chrono::Duration::minutes(5),
            then: Some(Arc::new(Placement {
                cart: open,
                cart_version: emporium_store::carts::find_cart(&app.shop.db, open).await.unwrap().unwrap().version,
                reservation: doomed,
                rows: Box::new(move |w| {
                    emporium_store::carts::queue_close_locked_cart(w, user.0, uuid::Uuid::now_v7(), 0, chrono::Utc::now());
                }),
            })),
        }).await;
        assert!(matches!(failing, Err(emporium_shop::ShopError::Internal(_))), "{failing:?}");
        assert!(emporium_store::reservations::find_reservation(&app.shop.db, user.0, doomed).await.unwrap().is_none());
        assert_eq!(stock(&app, "WITH-A").await.1 + stock(&app, "WITH-B").await.1, 1);
        assert_eq!(stock(&app, "WITH-C").await, (5, 0));
        assert_eq!(emporium_store::carts::find_cart(&app.shop.db, open).await.unwrap().unwrap().status, "open");
        app.assert_stock_equation().await;
    }

    async fn a_capture_applied_in_one_round_trip_is_whole_or_not_at_all(app) {
        use emporium_shop::payments::apply_capture;
        shop_with(&app, "FAST-1", 5).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "FAST-1", 2).await;
        let placed = placed_without_applying(&app, &buyer, &cart).await;
        let db = &app.shop.db;
        let captured = capture_report();
        let state = || async {
            let o = emporium_store::orders::find_order(db, placed.order.user_id, placed.order.id).await.unwrap().unwrap();
            let p = emporium_store::payments::payments_of_order(db, o.user_id, o.id).await.unwrap().pop().unwrap();
            let r = emporium_store::reservations::find_reservation(db, o.user_id, o.reservation_id).await.unwrap().unwrap().0;
            (o.status, p.status, r.status, stock(&app, "FAST-1").await)
        };
        let untouched = ("pending_payment".to_owned(), "pending".to_owned(), "active".to_owned(), (5, 2));
        // Rows that are not as the checkout wrote them (here: more units than are reserved)
        // fail one write of the round trip; the payment's and the order's writes, which went
        // through, are undone with it.
        let mut wrong = placed.clone();
        wrong.lines[0].quantity = 3;
        assert!(apply_capture(&app.shop, &wrong, &captured).await.unwrap().is_none());
        assert_eq!(state().await, untouched);
        // As written: paid, the reservation committed, the units sold, `order.paid` once.
        let applied = apply_capture(&app.shop, &placed, &captured).await.unwrap().expect("applied");
        assert_eq!(applied.order.unwrap().status, "paid");
        let paid = ("paid".to_owned(), "succeeded".to_owned(), "committed".to_owned(), (3, 0));
        assert_eq!(state().await, paid);
        // Once more (a repeated answer): the payment is no longer pending, nothing changes.
        assert!(apply_capture(&app.shop, &placed, &captured).await.unwrap().is_none());
        assert_eq!(state().await, paid);
        assert_eq!(emporium_store::outbox::count_topic(db, "order.paid").await.unwrap(), 1);
        assert_eq!(emporium_store::payments::integrity(db).await.unwrap(), (1, 1, 0));
        app.assert_stock_equation().await;
    }

    async fn orders_split_by_seller_and_move_through_fulfilment(app) {
        let (admin, seller, _) = shop_with(&app, "SHIP-1", 5).await;
        let other = app.seller("other-seller@example.com").await;
        let p = app.product(&other, "Other thing", "SHIP-2", 500).await;
        app.receive(p["variants"][0]["id"].as_str().unwrap(), "main", 5).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "SHIP-1", 1).await;
        app.post(&format!("/api/v1/carts/{cart}/items"), json!({"sku": "SHIP-2", "quantity": 1}), Some(&buyer)).await;
        let r = checkout(&app, &buyer, &cart, "tok_success").await;
        let id = r.body["order_id"].as_str().unwrap().to_owned();
        let mine = app.get(&format!("/api/v1/orders/{id}"), Some(&seller)).await;
        assert_eq!(mine.body["lines"].as_array().unwrap().len(), 1, "a seller sees only its lines");
        assert_eq!(app.get("/api/v1/seller/orders", Some(&other)).await.body["items"].as_array().unwrap().len(), 1);
        app.post(&format!("/api/v1/seller/orders/{id}/deliver"), json!({}), Some(&seller)).await.assert_problem(409, "illegal_transition");
        let shipped = app.post(&format!("/api/v1/seller/orders/{id}/ship"), json!({"carrier": "Royal Mail", "tracking_number": "RM123"}), Some(&seller)).await;
        assert_eq!(shipped.body["status"], "partially_fulfilled", "{}", shipped.text);
        let shipped = app.post(&format!("/api/v1/seller/orders/{id}/ship"), json!({"carrier": "DPD", "tracking_number": "D9"}), Some(&other)).await;
        assert_eq!(shipped.body["status"], "fulfilled");
        app.post(&format!("/api/v1/seller/orders/{id}/deliver"), json!({}), Some(&seller)).await;
        let done = app.post(&format!("/api/v1/seller/orders/{id}/deliver"), json!({}), Some(&other)).await;
        assert_eq!(done.body["status"], "delivered", "{}", done.text);
        let tracked = app.get(&format!("/api/v1/orders/{id}"), Some(&buyer)).await;
        assert_eq!(tracked.body["fulfilments"].as_array().unwrap().iter().filter(|f| f["tracking_number"] == "RM123").count(), 1);
        // A return: requested, approved, received (restocked), refunded.
        let ret = app.post(&format!("/api/v1/orders/{id}/returns"), json!({"lines": [{"line_no": 1, "quantity": 1}], "reason": "too small"}), Some(&buyer)).await;
        assert_eq!(ret.status, 201, "{}", ret.text);
        let rid = ret.body["id"].as_str().unwrap();
        for action in ["approve", "receive", "refund"] {
            let r = app.post(&format!("/api/v1/admin/returns/{rid}/{action}"), json!({}), Some(&admin)).await;
            assert_eq!(r.status, 200, "{action}: {}", r.text);
        }
        let after = app.get(&format!("/api/v1/orders/{id}"), Some(&buyer)).await;
        assert_eq!(after.body["status"], "partially_refunded", "{}", after.text);
        assert_eq!(stock(&app, "SHIP-1").await.0, 5, "the returned unit is back on hand");
        assert_eq!(emporium_store::outbox::count_topic(&app.shop.db, "refund.succeeded").await.unwrap(), 1);
        let admin_list = app.get("/api/v1/admin/orders?email=buyer@example.com", Some(&admin)).await;
        assert_eq!(admin_list.body["items"].as_array().unwrap().len(), 1);
        app.get("/api/v1/admin/orders", Some(&buyer)).await.assert_problem(403, "forbidden");
        app.assert_stock_equation().await;
    }

    async fn bad_checkout_input_gets_problems_and_changes_nothing(app) {
        shop_with(&app, "BAD-1", 2).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "BAD-1", 1).await;
        let card_number = app.post("/api/v1/checkout", json!({"cart_id": cart, "shipping_address": address(), "payment_method": {"type": "card", "token": "4242424242424242"}}), Some(&buyer)).await;
        card_number.assert_problem(422, "validation_failed");
        let wrong = app.post("/api/v1/checkout", json!({"cart_id": 12, "shipping_address": address()}), Some(&buyer)).await;
        assert_eq!(wrong.status, 422, "{}", wrong.text);
        let unknown = checkout(&app, &buyer, &uuid::Uuid::now_v7().to_string(), "tok_success").await;
        unknown.assert_problem(404, "cart_not_found");
        let far = app.post("/api/v1/checkout", json!({"cart_id": cart, "shipping_address": {"name": "X", "line1": "1", "city": "Tokyo", "postal_code": "100", "country": "JP"}, "payment_method": {"type": "card", "token": "tok_success"}}), Some(&buyer)).await;
        far.assert_problem(409, "shipping_unavailable");
        let bogus = checkout(&app, &buyer, &cart, "tok_bogus").await;
        assert_eq!(bogus.body["status"], "cancelled", "{}", bogus.text);
        app.post(&format!("/api/v1/carts/{cart}/items"), json!({"sku": "BAD-1", "quantity": 1000}), Some(&buyer)).await.assert_problem(422, "validation_failed");
        app.post(&format!("/api/v1/carts/{cart}/items"), json!({"sku": "NOPE-1", "quantity": 1}), Some(&buyer)).await.assert_problem(404, "sku_not_found");
        let stranger = app.customer("stranger@example.com").await;
        app.get(&format!("/api/v1/carts/{cart}"), Some(&stranger)).await.assert_problem(404, "cart_not_found");
        assert_eq!(stock(&app, "BAD-1").await, (2, 0));
        app.assert_stock_equation().await;
    }
}
