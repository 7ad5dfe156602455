//! Every route group answers malformed input with a 4xx problem+json and a stable code,
//! never a 500, and writes nothing.

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};
use crate::on_both_databases;

/// The mutating routes, with the token each needs (None: public).
async fn mutating_routes(app: &TestApp) -> (Vec<(Method, String, Option<String>)>, String) {
    let admin = app.admin().await;
    let seller = app.seller("seller@example.com").await;
    let customer = app.customer("customer@example.com").await;
    let product = app.product(&seller, "Bowl", "BOWL-1", 900).await;
    let pid = product["id"].as_str().unwrap().to_owned();
    let vid = product["variants"][0]["id"].as_str().unwrap().to_owned();
    let address = app
        .post("/api/v1/me/addresses", json!({"name": "C", "line1": "1 A St", "city": "Leeds", "postal_code": "LS1", "country": "GB"}), Some(&customer))
        .await;
    let aid = address.body["id"].as_str().unwrap().to_owned();
    let routes = vec![
        (Method::POST, "/api/v1/auth/register".to_owned(), None),
        (Method::POST, "/api/v1/auth/login".to_owned(), None),
        (
            Method::POST,
            "/api/v1/me/addresses".to_owned(),
            Some(customer.clone()),
        ),
        (
            Method::PUT,
            format!("/api/v1/me/addresses/{aid}"),
            Some(customer.clone()),
        ),
        (
            Method::POST,
            "/api/v1/categories".to_owned(),
            Some(admin.clone()),
        ),
        (
            Method::POST,
            "/api/v1/products".to_owned(),
            Some(seller.clone()),
        ),
        (
            Method::PATCH,
            format!("/api/v1/products/{pid}"),
            Some(seller.clone()),
        ),
        (
            Method::POST,
            format!("/api/v1/products/{pid}/variants"),
            Some(seller.clone()),
        ),
        (
            Method::PATCH,
            format!("/api/v1/variants/{vid}"),
            Some(seller.clone()),
        ),
        (
            Method::PUT,
            format!("/api/v1/products/{pid}/translations/fr"),
            Some(seller.clone()),
        ),
        (
            Method::POST,
            "/api/v1/stock/locations".to_owned(),
            Some(admin.clone()),
        ),
        (
            Method::POST,
            "/api/v1/stock/BOWL-1/receive".to_owned(),
            Some(seller.clone()),
        ),
        (
            Method::POST,
            "/api/v1/stock/BOWL-1/adjust".to_owned(),
            Some(seller.clone()),
        ),
        (
            Method::POST,
            "/api/v1/stock/BOWL-1/transfer".to_owned(),
            Some(seller.clone()),
        ),
        (
            Method::PUT,
            "/api/v1/stock/BOWL-1/threshold".to_owned(),
            Some(seller.clone()),
        ),
    ];
    (routes, admin)
}

fn request(
    method: &Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut b = Request::builder().method(method.clone()).uri(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    b.body(body.into()).unwrap()
}

/// How many users and products exist, seen through the admin and seller APIs.
async fn counts(app: &TestApp, admin: &str) -> (usize, usize) {
    let users = app
        .get("/api/v1/admin/users?limit=100", Some(admin))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .len();
    let products = emporium_store::catalog::count_products(&app.shop.db)
        .await
        .unwrap();
    (users, usize::try_from(products).unwrap())
}

on_both_databases! {
    async fn malformed_bodies_get_problems_on_every_mutating_route(app) {
        let (routes, admin) = mutating_routes(&app).await;
        let before = counts(&app, &admin).await;
        let huge = vec![b'x'; 2 * 1024 * 1024];
        for (method, path, token) in &routes {
            let t = token.as_deref();
            let cases: Vec<(Request<Body>, u16, &str)> = vec![
                (request(method, path, t, Some("application/json"), "{\"email\": "), 400, "malformed_json"),
                (request(method, path, t, Some("application/json"), ""), 400, "malformed_json"),
                (request(method, path, t, Some("application/json"), vec![0xff, 0xfe, 0x7b, 0x7d]), 400, "malformed_json"),
                (request(method, path, t, Some("application/json"), "[1, 2, 3]"), 422, "invalid_body"),
                (request(method, path, t, Some("application/json"), "{\"title\": 5, \"email\": 5, \"name\": [], \"slug\": {}}"), 422, "invalid_body"),
                (request(method, path, t, Some("application/json"), "{\"surprise\": true}"), 422, "invalid_body"),
                (request(method, path, t, Some("text/plain"), "{}"), 415, "unsupported_media_type"),
                (request(method, path, t, None, "{}"), 415, "unsupported_media_type"),
                (request(method, path, t, Some("application/json"), huge.clone()), 413, "payload_too_large"),
            ];
            for (req, status, code) in cases {
                let r = app.send(req).await;
                assert_eq!(r.status.as_u16(), status, "{method} {path}: {}", r.text);
                r.assert_problem(status, code);
            }
        }
        assert_eq!(counts(&app, &admin).await, before, "nothing was written");
    }

    async fn forged_and_expired_tokens_get_401_on_every_protected_route(app) {
        let (routes, _) = mutating_routes(&app).await;
        let forged = "emp_0190f0b8a0b07a3c8d5e6f7a8b9c0d1e_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        for (method, path, token) in routes.iter().filter(|r| r.2.is_some()) {
            let r = app.send(request(method, path, Some(forged), Some("application/json"), "{}")).await;
            r.assert_problem(401, "invalid_token");
            let r = app.send(request(method, path, Some("not-even-close"), Some("application/json"), "{}")).await;
            r.assert_problem(401, "invalid_token");
            let r = app.send(request(method, path, None, Some("application/json"), "{}")).await;
            r.assert_problem(401, "authentication_required");
            let _ = token;
        }
        app.clock.advance(chrono::Duration::days(30));
        for (method, path, token) in routes.iter().filter(|r| r.2.is_some()) {
            let r = app.send(request(method, path, token.as_deref(), Some("application/json"), "{}")).await;
            r.assert_problem(401, "invalid_token");
        }
    }

    async fn huge_numbers_and_out_of_range_values_are_refused(app) {
        let seller = app.seller("nums@example.com").await;
        let cases = [
            json!({"title": "A", "variants": [{"sku": "A1", "prices": [{"currency": "GBP", "amount_minor": -1}]}]}),
            json!({"title": "A", "variants": [{"sku": "A1", "prices": [{"currency": "GBP", "amount_minor": 9_000_000_000_000_000_000u64}]}]}),
            json!({"title": "A", "variants": [{"sku": "A1", "prices": [{"currency": "GBP", "amount_minor": 1.5}]}]}),
            json!({"title": "A", "variants": [{"sku": "A1", "prices": [{"currency": "XXX", "amount_minor": 1}]}]}),
            json!({"title": "A", "variants": [{"sku": "A1", "prices": [{"currency": "GBP", "amount_minor": 1}, {"currency": "gbp", "amount_minor": 2}]}]}),
            json!({"title": "", "variants": []}),
            json!({"title": "x".repeat(201)}),
            json!({"title": "A", "images": ["javascript:alert(1)"]}),
            json!({"title": "A", "status": "published"}),
            json!({"title": "A", "slug": "Not A Slug"}),
            json!({"title": "A", "variants": [{"sku": "'; DROP TABLE variants; --", "prices": []}]}),
        ];
        for body in cases {
            let r = app.post("/api/v1/products", body.clone(), Some(&seller)).await;
            assert!(r.status == 422, "{body}: {} {}", r.status, r.text);
            assert!(r.body["code"] == "validation_failed" || r.body["code"] == "invalid_body", "{}", r.text);
        }
        let raw = r#"{"title": "A", "variants": [{"sku": "A1", "prices": [{"currency": "GBP", "amount_minor": 99999999999999999999999999999}]}]}"#;
        let r = app.send(request(&Method::POST, "/api/v1/products", Some(&seller), Some("application/json"), raw)).await;
        r.assert_problem(422, "invalid_body");
        assert!(app.get("/api/v1/seller/products", Some(&seller)).await.body["items"].as_array().unwrap().is_empty());
    }

    async fn hostile_strings_are_stored_verbatim_and_never_executed(app) {
        let hostile = "<script>alert('x')</script> Robert'); DROP TABLE users;-- \u{202e}";
        let r = app.post("/api/v1/auth/register", json!({"email": "bobby@example.com", "password": PASSWORD, "name": hostile}), None).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["name"], hostile.trim());
        let seller = app.seller("tables@example.com").await;
        let product = app.product(&seller, "Robert'); DROP TABLE products;--", "SAFE-1", 100).await;
        assert_eq!(product["title"], "Robert'); DROP TABLE products;--");
        // Filters with injection attempts match nothing and break nothing.
        let r = app.get("/api/v1/products?brand=%27%20OR%20%271%27%3D%271", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body["items"].as_array().unwrap().is_empty());
        assert_eq!(app.get("/api/v1/products", None).await.body["items"].as_array().unwrap().len(), 1);
        let r = app.post("/api/v1/auth/register", json!({"email": "a'--@example.com\u{0}", "password": PASSWORD, "name": "N"}), None).await;
        r.assert_problem(422, "validation_failed");
        let r = app.post("/api/v1/auth/register", json!({"email": "nul@example.com", "password": PASSWORD, "name": "a\u{0}b"}), None).await;
        r.assert_problem(422, "validation_failed");
    }

    async fn bad_queries_paths_and_unknown_ids_are_4xx(app) {
        let admin = app.admin().await;
        let customer = app.customer("q@example.com").await;
        let unknown = uuid::Uuid::now_v7();
        let cases: Vec<(&str, Option<&str>, u16, &str)> = vec![
            ("/api/v1/products?limit=abc", None, 400, "invalid_query"),
            ("/api/v1/products?limit=1000", None, 422, "validation_failed"),
            ("/api/v1/products?limit=0", None, 422, "validation_failed"),
            ("/api/v1/products?price_min=99999999999999999999999", None, 400, "invalid_query"),
            ("/api/v1/products?price_min=-5", None, 422, "validation_failed"),
            ("/api/v1/products?cursor=zzzz", None, 422, "validation_failed"),
            ("/api/v1/products?cursor=7b7d", None, 422, "validation_failed"),
            ("/api/v1/products?sort=random", None, 422, "validation_failed"),
            ("/api/v1/products?currency=DOGE", None, 422, "validation_failed"),
            ("/api/v1/products?seller=not-a-uuid", None, 400, "invalid_query"),
            ("/api/v1/products?locale=%FF%FE", None, 422, "validation_failed"),
            ("/api/v1/products?category=%27%3B--", None, 422, "validation_failed"),
            ("/api/v1/products/no-such-product", None, 404, "product_not_found"),
            ("/api/v1/products/%00%01", None, 404, "product_not_found"),
            ("/api/v1/seller/products/not-a-uuid", Some(&admin), 400, "invalid_path_parameter"),
            ("/api/v1/admin/users?role=king", Some(&admin), 422, "validation_failed"),
            ("/api/v1/admin/users?cursor=nope", Some(&admin), 422, "validation_failed"),
        ];
        for (path, token, status, code) in cases {
            let r = app.get(path, token).await;
            assert_eq!(r.status.as_u16(), status, "{path}: {}", r.text);
            r.assert_problem(status, code);
        }
        app.get(&format!("/api/v1/products/{unknown}"), None).await.assert_problem(404, "product_not_found");
        app.post(&format!("/api/v1/admin/users/{unknown}/approve"), json!({}), Some(&admin)).await.assert_problem(404, "user_not_found");
        app.post("/api/v1/admin/users/not-a-uuid/disable", json!({}), Some(&admin)).await.assert_problem(400, "invalid_path_parameter");
        app.delete(&format!("/api/v1/me/addresses/{unknown}"), Some(&customer)).await.assert_problem(404, "address_not_found");
        app.delete("/api/v1/me/addresses/42", Some(&customer)).await.assert_problem(400, "invalid_path_parameter");
        app.patch(&format!("/api/v1/variants/{unknown}"), json!({}), Some(&admin)).await.assert_problem(404, "variant_not_found");
        app.patch("/api/v1/products/not-an-id", json!({}), Some(&admin)).await.assert_problem(404, "product_not_found");
        let r = app.post("/api/v1/categories", json!({"slug": "child", "name": "Child", "parent_id": unknown}), Some(&admin)).await;
        r.assert_problem(422, "validation_failed");
        let r = app.patch(&format!("/api/v1/products/{}", app.product(&admin, "P", "P-1", 1).await["id"].as_str().unwrap()), json!({"category_id": unknown}), Some(&admin)).await;
        r.assert_problem(422, "validation_failed");
    }
}
