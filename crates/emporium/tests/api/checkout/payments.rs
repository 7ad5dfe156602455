//! Payments: 3-D Secure confirm racing the webhook, asynchronous settlement, webhook
//! signatures, replays and out-of-order delivery, timeouts and crash reconciliation.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::Request;
use emporium_payments::Webhook;

use super::{capture_report, cart_with, checkout, placed_without_applying, shop_with, stock};
use crate::helpers::{TestApp, TestResponse};
use crate::on_both_databases;

async fn post_webhook(app: &TestApp, hook: &Webhook) -> TestResponse {
    let request = Request::post("/api/v1/payments/webhooks/test")
        .header("content-type", "application/json")
        .header("emporium-signature", &hook.signature)
        .body(Body::from(hook.body.clone()))
        .unwrap();
    app.send(request).await
}

fn fast_gateway(app: TestApp) -> TestApp {
    app.reconfigured(|c| {
        c.checkout.test_gateway.async_settle_after = None;
        c.checkout.test_gateway.hang = std::time::Duration::from_secs(5);
        c.checkout.gateway_timeout = std::time::Duration::from_millis(200);
    })
}

on_both_databases! {
    async fn a_confirm_racing_the_webhook_pays_the_order_once(app) {
        let app = fast_gateway(app);
        shop_with(&app, "TDS-1", 3).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "TDS-1", 2).await;
        let r = checkout(&app, &buyer, &cart, "tok_requires_action").await;
        assert_eq!(r.body["status"], "pending_payment", "{}", r.text);
        assert_eq!(r.body["payment"]["status"], "requires_action");
        let url = r.body["payment"]["next_action"]["url"].as_str().unwrap().to_owned();
        assert_eq!(stock(&app, "TDS-1").await, (3, 2), "held while the customer confirms");
        // The customer confirms; the provider's webhook for the same capture arrives at once.
        let confirmed = app.post(&url, serde_json::json!({}), Some(&buyer)).await;
        assert_eq!(confirmed.body["status"], "succeeded", "{}", confirmed.text);
        let hooks = app.shop.test_gateway.take_webhooks();
        let app = Arc::new(app);
        let mut tasks = Vec::new();
        for hook in hooks.iter().chain(hooks.iter()) {
            let (app, hook) = (app.clone(), hook.clone());
            tasks.push(tokio::spawn(async move { post_webhook(&app, &hook).await }));
        }
        let retried = { let app = app.clone(); let buyer = buyer.clone(); tokio::spawn(async move { app.post(&url, serde_json::json!({}), Some(&buyer)).await }) };
        for t in tasks {
            assert_eq!(t.await.unwrap().status, 200);
        }
        assert_eq!(retried.await.unwrap().body["status"], "succeeded");
        let order = app.get(&format!("/api/v1/orders/{}", r.body["order_id"].as_str().unwrap()), Some(&buyer)).await;
        assert_eq!(order.body["status"], "paid");
        assert_eq!(stock(&app, "TDS-1").await, (1, 0), "committed exactly once");
        assert_eq!(emporium_store::payments::integrity(&app.shop.db).await.unwrap(), (1, 1, 0));
        assert_eq!(emporium_store::outbox::count_topic(&app.shop.db, "order.paid").await.unwrap(), 1);
        app.assert_stock_equation().await;
    }

    async fn the_checkouts_one_round_trip_capture_racing_the_webhook_pays_once(app) {
        let app = fast_gateway(app);
        shop_with(&app, "RACE-CAP", 5).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "RACE-CAP", 2).await;
        let placed = placed_without_applying(&app, &buyer, &cart).await;
        let hooks = app.shop.test_gateway.take_webhooks();
        assert_eq!(hooks.len(), 1, "the provider reports the capture");
        // The checkout's own answer (in one round trip) and two deliveries of the webhook
        // (the usual way, locking the payment) apply the same capture at once.
        let app = Arc::new(app);
        let own = {
            let app = app.clone();
            tokio::spawn(async move { emporium_shop::payments::apply_capture(&app.shop, &placed, &capture_report()).await.unwrap() })
        };
        let webhooks: Vec<_> = (0..2).map(|_| {
            let (app, hook) = (app.clone(), hooks[0].clone());
            tokio::spawn(async move { post_webhook(&app, &hook).await })
        }).collect();
        let mut applied = usize::from(own.await.unwrap().is_some());
        for w in webhooks {
            let answer = w.await.unwrap();
            assert_eq!(answer.status, 200, "{}", answer.text);
            applied += usize::from(answer.body["applied"] == true);
        }
        assert_eq!(applied, 1, "one of them applies the capture, the others find it applied");
        let orders = app.get("/api/v1/orders", Some(&buyer)).await;
        assert_eq!(orders.body["items"][0]["status"], "paid", "{}", orders.text);
        assert_eq!(stock(&app, "RACE-CAP").await, (3, 0), "committed exactly once");
        assert_eq!(emporium_store::payments::integrity(&app.shop.db).await.unwrap(), (1, 1, 0));
        assert_eq!(emporium_store::outbox::count_topic(&app.shop.db, "order.paid").await.unwrap(), 1);
        app.assert_stock_equation().await;
    }

    async fn the_webhook_after_a_paid_checkout_changes_nothing_and_writes_nothing(app) {
        let app = fast_gateway(app);
        shop_with(&app, "WHK-1", 3).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "WHK-1", 1).await;
        let r = checkout(&app, &buyer, &cart, "tok_success").await;
        assert_eq!(r.body["status"], "paid", "{}", r.text);
        let hooks = app.shop.test_gateway.take_webhooks();
        assert_eq!(hooks.len(), 1, "the provider reports the capture it already answered");
        let events_before = emporium_store::outbox::count_pending(&app.shop.db).await.unwrap();
        for _ in 0..2 {
            let answer = post_webhook(&app, &hooks[0]).await;
            assert_eq!(answer.status, 200, "{}", answer.text);
            assert_eq!(answer.body["applied"], false, "the checkout applied the capture first");
        }
        let order_id = r.body["order_id"].as_str().unwrap();
        assert_eq!(app.get(&format!("/api/v1/orders/{order_id}"), Some(&buyer)).await.body["status"], "paid");
        assert_eq!(emporium_store::outbox::count_pending(&app.shop.db).await.unwrap(), events_before, "no event for nothing");
        assert_eq!(stock(&app, "WHK-1").await, (2, 0), "committed once");
        assert_eq!(emporium_store::payments::integrity(&app.shop.db).await.unwrap(), (1, 1, 0));
    }

    async fn webhooks_are_verified_applied_once_and_never_undo_a_capture(app) {
        let app = fast_gateway(app);
        shop_with(&app, "ASY-1", 3).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "ASY-1", 1).await;
        let r = checkout(&app, &buyer, &cart, "tok_async").await;
        assert_eq!(r.body["payment"]["status"], "processing", "{}", r.text);
        assert_eq!(app.shop.test_gateway.settle(), 1);
        let hooks = app.shop.test_gateway.take_webhooks();
        assert_eq!(hooks.len(), 1);
        let hook = &hooks[0];
        // A forged body, a wrong signature, a stale timestamp: 400, nothing changes.
        let mut forged = hook.clone();
        forged.body = String::from_utf8(hook.body.clone()).unwrap().replace("payment.succeeded", "payment.failed").into_bytes();
        post_webhook(&app, &forged).await.assert_problem(400, "invalid_signature");
        let mut unsigned = hook.clone();
        unsigned.signature = "t=1,v1=00".to_owned();
        post_webhook(&app, &unsigned).await.assert_problem(400, "invalid_signature");
        let order_id = r.body["order_id"].as_str().unwrap();
        assert_eq!(app.get(&format!("/api/v1/orders/{order_id}"), Some(&buyer)).await.body["status"], "pending_payment");
        let first = post_webhook(&app, hook).await;
        assert_eq!(first.body["applied"], true, "{}", first.text);
        let replay = post_webhook(&app, hook).await;
        assert_eq!(replay.body["applied"], false, "a repeated delivery changes nothing");
        assert_eq!(app.get(&format!("/api/v1/orders/{order_id}"), Some(&buyer)).await.body["status"], "paid");
        // A late failure report for the same payment (out of order) cannot undo the capture.
        let late = emporium_payments::WebhookEvent {
            id: "evt_late_failure".into(),
            kind: emporium_payments::WebhookKind::PaymentFailed,
            failure_code: Some("card_declined".into()),
            ..hook.event.clone()
        };
        let body = serde_json::to_vec(&late).unwrap();
        let signature = emporium_payments::signature::sign(app.shop.test_gateway.secret(), late.created, &body).unwrap();
        let applied = post_webhook(&app, &Webhook { signature, body, event: late }).await;
        assert_eq!(applied.status, 200, "{}", applied.text);
        assert_eq!(app.get(&format!("/api/v1/orders/{order_id}"), Some(&buyer)).await.body["status"], "paid");
        assert_eq!(stock(&app, "ASY-1").await, (2, 0));
        app.post("/api/v1/payments/webhooks/stripe", serde_json::json!({}), None).await.assert_problem(404, "provider_not_found");
        app.assert_stock_equation().await;
    }

    async fn the_worker_delivers_webhooks_to_the_server_over_http(app) {
        let app = fast_gateway(app);
        shop_with(&app, "HOOK-1", 5).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = emporium_web::app(emporium_web::AppState::new(app.shop.clone()), &emporium_web::HttpConfig::default());
        let served = tokio::spawn(async move { axum::serve(listener, server).await });
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let delivering = tokio::spawn(emporium_worker::payments::deliver_webhooks(app.shop.clone(), base, shutdown));
        let mut orders = Vec::new();
        for i in 0..3 {
            let buyer = app.customer(&format!("hook{i}@example.com")).await;
            let cart = cart_with(&app, &buyer, "HOOK-1", 1).await;
            let r = checkout(&app, &buyer, &cart, "tok_async").await;
            assert_eq!(r.body["payment"]["status"], "processing", "{}", r.text);
            orders.push((buyer, r.body["order_id"].as_str().unwrap().to_owned()));
        }
        // The provider settles; its signed webhooks reach the endpoint only through the worker.
        assert_eq!(app.shop.test_gateway.settle(), 3);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        for (buyer, order) in &orders {
            loop {
                let status = app.get(&format!("/api/v1/orders/{order}"), Some(buyer)).await.body["status"].clone();
                if status == "paid" {
                    break;
                }
                assert_eq!(status, "pending_payment");
                assert!(std::time::Instant::now() < deadline, "order {order} not paid by a delivered webhook");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        assert!(app.shop.test_gateway.take_webhooks().is_empty(), "every webhook was delivered");
        assert_eq!(stock(&app, "HOOK-1").await, (2, 0));
        assert_eq!(emporium_store::payments::integrity(&app.shop.db).await.unwrap(), (3, 3, 0));
        stop.send(true).unwrap();
        delivering.await.unwrap();
        served.abort();
        app.assert_stock_equation().await;
    }

    async fn a_timeout_cancels_and_a_late_capture_is_refunded(app) {
        let app = fast_gateway(app);
        shop_with(&app, "TMO-1", 2).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "TMO-1", 1).await;
        let r = checkout(&app, &buyer, &cart, "tok_timeout").await;
        assert_eq!(r.body["status"], "cancelled", "{}", r.text);
        assert_eq!(r.body["payment"]["failure_code"], "timeout");
        assert_eq!(stock(&app, "TMO-1").await, (2, 0), "stock released");
        // The provider did capture: its webhook arrives, and reconciliation refunds.
        for hook in app.shop.test_gateway.take_webhooks() {
            assert_eq!(post_webhook(&app, &hook).await.status, 200);
        }
        let out = emporium_shop::payments::reconcile_once(&app.shop).await.unwrap();
        assert_eq!(out.refunded, 1, "{out:?}");
        let order = app.get(&format!("/api/v1/orders/{}", r.body["order_id"].as_str().unwrap()), Some(&buyer)).await;
        assert_eq!(order.body["status"], "cancelled");
        assert_eq!(order.body["payments"][0]["status"], "refunded", "{}", order.text);
        assert!(emporium_shop::payments::reconcile_once(&app.shop).await.unwrap().is_idle(), "nothing left to do");
        app.assert_stock_equation().await;
    }

    async fn a_crash_between_charge_and_order_write_is_completed_by_reconciliation(app) {
        let app = fast_gateway(app);
        shop_with(&app, "CRS-1", 2).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "CRS-1", 1).await;
        app.shop.config.checkout.faults.after_charge.store(true, Ordering::SeqCst);
        let r = checkout(&app, &buyer, &cart, "tok_success").await;
        assert_eq!(r.status, 500, "{}", r.text);
        app.shop.config.checkout.faults.after_charge.store(false, Ordering::SeqCst);
        assert_eq!(stock(&app, "CRS-1").await, (2, 1), "the order waits, its stock held");
        assert!(emporium_shop::payments::reconcile_once(&app.shop).await.unwrap().is_idle(), "too recent to chase");
        app.clock.advance(chrono::Duration::minutes(2));
        let out = emporium_shop::payments::reconcile_once(&app.shop).await.unwrap();
        assert_eq!(out.resolved, 1, "{out:?}");
        let orders = app.get("/api/v1/orders", Some(&buyer)).await;
        assert_eq!(orders.body["items"][0]["status"], "paid", "{}", orders.text);
        assert_eq!(stock(&app, "CRS-1").await, (1, 0));
        assert_eq!(emporium_store::payments::integrity(&app.shop.db).await.unwrap(), (1, 1, 0));
        app.assert_stock_equation().await;
    }

    async fn a_capture_that_arrives_after_the_hold_ended_is_refunded(app) {
        let app = fast_gateway(app);
        shop_with(&app, "LATE-1", 1).await;
        let buyer = app.customer("buyer@example.com").await;
        let cart = cart_with(&app, &buyer, "LATE-1", 1).await;
        app.shop.config.checkout.faults.after_charge.store(true, Ordering::SeqCst);
        checkout(&app, &buyer, &cart, "tok_success").await;
        app.shop.config.checkout.faults.after_charge.store(false, Ordering::SeqCst);
        // The payment window passes: the reservation expires before anyone learns of the capture.
        app.clock.advance(chrono::Duration::minutes(31));
        emporium_shop::inventory::reservations::expire_overdue(&app.shop, 100).await.unwrap();
        let first = emporium_shop::payments::reconcile_once(&app.shop).await.unwrap();
        assert_eq!(first.resolved, 1, "{first:?}");
        let second = emporium_shop::payments::reconcile_once(&app.shop).await.unwrap();
        assert_eq!(first.refunded + second.refunded, 1, "{first:?} {second:?}");
        let orders = app.get("/api/v1/orders", Some(&buyer)).await;
        assert_eq!(orders.body["items"][0]["status"], "cancelled", "{}", orders.text);
        assert_eq!(stock(&app, "LATE-1").await, (1, 0), "never sold, never lost");
        app.assert_stock_equation().await;
    }
}
