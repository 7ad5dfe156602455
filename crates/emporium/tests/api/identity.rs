use emporium_domain::identity::{Role, UserStatus};
use serde_json::json;

use crate::helpers::PASSWORD;
use crate::on_both_databases;

fn registration(email: &str) -> serde_json::Value {
    json!({"email": email, "password": PASSWORD, "name": "Ada Lovelace"})
}

on_both_databases! {
    async fn a_customer_registers_logs_in_sees_itself_and_logs_out(app) {
        let r = app.post("/api/v1/auth/register", registration("Ada@Example.com"), None).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["email"], "ada@example.com");
        assert_eq!(r.body["role"], "customer");
        assert!(r.body.get("password_hash").is_none());

        let login = app.post("/api/v1/auth/login", json!({"email": "ADA@example.com ", "password": PASSWORD}), None).await;
        assert_eq!(login.status, 200, "{}", login.text);
        let token = login.body["token"].as_str().unwrap().to_owned();
        assert!(login.body["expires_at"].as_str().unwrap().ends_with('Z'));

        let me = app.get("/api/v1/me", Some(&token)).await;
        assert_eq!(me.status, 200);
        assert_eq!(me.body["email"], "ada@example.com");

        assert_eq!(app.post("/api/v1/auth/logout", json!({}), Some(&token)).await.status, 204);
        app.get("/api/v1/me", Some(&token)).await.assert_problem(401, "invalid_token");
    }

    async fn emails_are_unique_whatever_their_case(app) {
        assert_eq!(app.post("/api/v1/auth/register", registration("bob@example.com"), None).await.status, 201);
        app.post("/api/v1/auth/register", registration("BOB@Example.COM"), None).await.assert_problem(409, "email_taken");
    }

    async fn concurrent_registrations_of_one_email_create_exactly_one_account(app) {
        let app = std::sync::Arc::new(app);
        let attempts = (0..8).map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.post("/api/v1/auth/register", registration("race@example.com"), None).await.status.as_u16()
            })
        });
        let statuses: Vec<u16> = futures::future::join_all(attempts).await.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    }

    async fn wrong_passwords_and_unknown_emails_are_the_same_401(app) {
        app.customer("carol@example.com").await;
        let wrong = app.post("/api/v1/auth/login", json!({"email": "carol@example.com", "password": "not the password"}), None).await;
        wrong.assert_problem(401, "invalid_credentials");
        let unknown = app.post("/api/v1/auth/login", json!({"email": "nobody@example.com", "password": PASSWORD}), None).await;
        unknown.assert_problem(401, "invalid_credentials");
        assert_eq!(wrong.body["detail"], unknown.body["detail"]);
    }

    async fn repeated_failed_logins_are_slowed_then_refused_with_retry_after(app) {
        app.customer("dave@example.com").await;
        let mut refused = None;
        for attempt in 0..15 {
            let r = app.post("/api/v1/auth/login", json!({"email": "dave@example.com", "password": "guess number one"}), None).await;
            if r.status == 429 {
                refused = Some((attempt, r));
                break;
            }
            r.assert_problem(401, "invalid_credentials");
        }
        let (attempt, r) = refused.expect("never refused");
        assert_eq!(attempt, 10, "refused after the account limit of 10 failures");
        r.assert_problem(429, "too_many_attempts");
        assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() > 0);
        // Even the right password is refused while the account is locked.
        let right = app.post("/api/v1/auth/login", json!({"email": "dave@example.com", "password": PASSWORD}), None).await;
        right.assert_problem(429, "too_many_attempts");
    }

    async fn passwords_must_be_long_enough(app) {
        let r = app.post("/api/v1/auth/register", json!({"email": "e@example.com", "password": "short", "name": "E"}), None).await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], "password");
    }

    async fn expired_forged_and_malformed_tokens_are_refused(app) {
        let token = app.customer("frank@example.com").await;
        assert_eq!(app.get("/api/v1/me", Some(&token)).await.status, 200);
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        app.get("/api/v1/me", Some(&forged)).await.assert_problem(401, "invalid_token");
        app.get("/api/v1/me", Some("emp_00000000000000000000000000000000_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")).await.assert_problem(401, "invalid_token");
        app.get("/api/v1/me", Some("' OR 1=1 --")).await.assert_problem(401, "invalid_token");
        app.get("/api/v1/me", None).await.assert_problem(401, "authentication_required");
        app.clock.advance(chrono::Duration::days(15));
        app.get("/api/v1/me", Some(&token)).await.assert_problem(401, "invalid_token");
    }

    async fn a_registered_seller_waits_for_approval_and_an_admin_approves_it(app) {
        let r = app.post("/api/v1/auth/register", json!({"email": "shop@example.com", "password": PASSWORD, "name": "Shop", "account_type": "seller"}), None).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["status"], "pending");
        let seller_id = r.body["id"].as_str().unwrap().to_owned();
        let seller = app.login("shop@example.com").await;
        let product = json!({"title": "Teapot", "variants": []});
        app.post("/api/v1/products", product.clone(), Some(&seller)).await.assert_problem(403, "forbidden");

        let admin = app.admin().await;
        let approved = app.post(&format!("/api/v1/admin/users/{seller_id}/approve"), json!({}), Some(&admin)).await;
        assert_eq!(approved.status, 200, "{}", approved.text);
        assert_eq!(approved.body["status"], "active");
        assert_eq!(app.post("/api/v1/products", product, Some(&seller)).await.status, 201);
    }

    async fn nobody_registers_as_admin(app) {
        let r = app.post("/api/v1/auth/register", json!({"email": "x@example.com", "password": PASSWORD, "name": "X", "account_type": "admin"}), None).await;
        r.assert_problem(422, "validation_failed");
    }

    async fn a_disabled_account_loses_its_sessions_and_cannot_log_in(app) {
        let (token, id) = app.user("gina@example.com", Role::Customer, UserStatus::Active).await;
        let admin = app.admin().await;
        let r = app.post(&format!("/api/v1/admin/users/{id}/disable"), json!({}), Some(&admin)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        app.get("/api/v1/me", Some(&token)).await.assert_problem(401, "invalid_token");
        let login = app.post("/api/v1/auth/login", json!({"email": "gina@example.com", "password": PASSWORD}), None).await;
        login.assert_problem(403, "account_disabled");
        assert_eq!(app.post(&format!("/api/v1/admin/users/{id}/enable"), json!({}), Some(&admin)).await.status, 200);
        app.login("gina@example.com").await;
    }

    async fn customers_and_sellers_cannot_use_admin_routes(app) {
        let customer = app.customer("hal@example.com").await;
        let seller = app.seller("ivy@example.com").await;
        for token in [&customer, &seller] {
            app.get("/api/v1/admin/users", Some(token)).await.assert_problem(403, "forbidden");
            app.post("/api/v1/categories", json!({"slug": "x", "name": "X"}), Some(token)).await.assert_problem(403, "forbidden");
        }
        app.get("/api/v1/seller/products", Some(&customer)).await.assert_problem(403, "forbidden");
        app.post("/api/v1/products", json!({"title": "T"}), Some(&customer)).await.assert_problem(403, "forbidden");
        let admin = app.admin().await;
        let users = app.get("/api/v1/admin/users?role=seller", Some(&admin)).await;
        assert_eq!(users.status, 200);
        assert_eq!(users.body["items"].as_array().unwrap().len(), 1);
    }

    async fn addresses_have_exactly_one_default(app) {
        let token = app.customer("jo@example.com").await;
        let address = |line1: &str, is_default: bool| json!({
            "name": "Jo", "line1": line1, "city": "London", "postal_code": "N1 9GU", "country": "gb", "is_default": is_default
        });
        let first = app.post("/api/v1/me/addresses", address("1 First St", false), Some(&token)).await;
        assert_eq!(first.status, 201, "{}", first.text);
        assert_eq!(first.body["is_default"], true, "the first address is the default");
        assert_eq!(first.body["country"], "GB");
        let second = app.post("/api/v1/me/addresses", address("2 Second St", true), Some(&token)).await;
        assert_eq!(second.body["is_default"], true);
        let list = app.get("/api/v1/me/addresses", Some(&token)).await;
        let defaults: Vec<bool> = list.body["items"].as_array().unwrap().iter().map(|a| a["is_default"].as_bool().unwrap()).collect();
        assert_eq!(defaults, [false, true]);

        let second_id = second.body["id"].as_str().unwrap();
        let edited = app.put(&format!("/api/v1/me/addresses/{second_id}"), address("2b Second St", false), Some(&token)).await;
        assert_eq!(edited.status, 200, "{}", edited.text);
        assert_eq!(edited.body["line1"], "2b Second St");
        assert_eq!(edited.body["is_default"], true, "editing keeps the default");

        assert_eq!(app.delete(&format!("/api/v1/me/addresses/{second_id}"), Some(&token)).await.status, 204);
        let list = app.get("/api/v1/me/addresses", Some(&token)).await;
        assert_eq!(list.body["items"][0]["is_default"], true, "the remaining address became the default");

        // Another customer cannot see or touch these addresses.
        let other = app.customer("kim@example.com").await;
        let first_id = first.body["id"].as_str().unwrap();
        app.delete(&format!("/api/v1/me/addresses/{first_id}"), Some(&other)).await.assert_problem(404, "address_not_found");
        assert!(app.get("/api/v1/me/addresses", Some(&other)).await.body["items"].as_array().unwrap().is_empty());
    }
}

on_both_databases! {
    async fn concurrent_requests_with_one_token_all_authenticate(app) {
        let token = app.customer("c@example.com").await;
        let app = std::sync::Arc::new(app);
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (app, token) = (app.clone(), token.clone());
                tokio::spawn(async move { app.get("/api/v1/me", Some(&token)).await })
            })
            .collect();
        for task in tasks {
            let r = task.await.unwrap();
            assert_eq!(r.status, 200, "{}", r.text);
        }
    }
}
