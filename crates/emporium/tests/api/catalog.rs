use std::collections::HashSet;

use serde_json::json;

use crate::on_both_databases;

on_both_databases! {
    async fn a_draft_is_private_until_its_seller_activates_it(app) {
        let seller = app.seller("s1@example.com").await;
        let r = app.post("/api/v1/products", json!({
            "title": "Blue Teapot",
            "description": "Holds tea.",
            "brand": "Potter",
            "attributes": {"Material": "Ceramic"},
            "images": ["https://img.example.com/teapot.jpg"],
            "variants": [{"sku": "tp-blue", "options": {"colour": "Blue"}, "prices": [{"currency": "GBP", "amount_minor": 1999, "compare_at_minor": 2499}]}]
        }), Some(&seller)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["status"], "draft");
        assert_eq!(r.body["slug"], "blue-teapot");
        assert_eq!(r.body["attributes"]["material"], "Ceramic");
        assert_eq!(r.body["variants"][0]["sku"], "TP-BLUE");
        assert_eq!(r.body["variants"][0]["prices"][0]["display"], "19.99 GBP");
        assert_eq!(r.body["variants"][0]["stock_status"], "out_of_stock");
        let id = r.body["id"].as_str().unwrap().to_owned();

        app.get(&format!("/api/v1/products/{id}"), None).await.assert_problem(404, "product_not_found");
        assert_eq!(app.get(&format!("/api/v1/seller/products/{id}"), Some(&seller)).await.status, 200);
        let listed = app.get("/api/v1/products", None).await;
        assert!(listed.body["items"].as_array().unwrap().is_empty());

        let r = app.patch(&format!("/api/v1/products/{id}"), json!({"status": "active"}), Some(&seller)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let by_slug = app.get("/api/v1/products/blue-teapot", None).await;
        assert_eq!(by_slug.status, 200, "{}", by_slug.text);
        assert_eq!(by_slug.body["id"], id.as_str());
        assert_eq!(app.get("/api/v1/products", None).await.body["items"].as_array().unwrap().len(), 1);
    }

    async fn a_seller_cannot_touch_another_sellers_products(app) {
        let owner = app.seller("owner@example.com").await;
        let other = app.seller("other@example.com").await;
        let product = app.product(&owner, "Mug", "MUG-1", 500).await;
        let id = product["id"].as_str().unwrap();
        let variant = product["variants"][0]["id"].as_str().unwrap();
        app.patch(&format!("/api/v1/products/{id}"), json!({"title": "Stolen"}), Some(&other)).await.assert_problem(404, "product_not_found");
        app.post(&format!("/api/v1/products/{id}/variants"), json!({"sku": "X-1", "prices": []}), Some(&other)).await.assert_problem(404, "product_not_found");
        app.patch(&format!("/api/v1/variants/{variant}"), json!({"prices": [{"currency": "GBP", "amount_minor": 1}]}), Some(&other)).await.assert_problem(404, "variant_not_found");
        app.put(&format!("/api/v1/products/{id}/translations/fr"), json!({"title": "Volé"}), Some(&other)).await.assert_problem(404, "product_not_found");
        let product = app.get(&format!("/api/v1/products/{id}"), None).await;
        assert_eq!(product.body["title"], "Mug");
        let prices = product.body["variants"][0]["prices"].as_array().unwrap();
        assert!(prices.iter().any(|p| p["currency"] == "GBP" && p["amount_minor"] == 500), "{prices:?}");

        let admin = app.admin().await;
        let r = app.patch(&format!("/api/v1/products/{id}"), json!({"title": "Admin's Mug"}), Some(&admin)).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    async fn skus_and_slugs_are_unique(app) {
        let seller = app.seller("s2@example.com").await;
        // The fixture's slug is its SKU in lower case: "lamp-one", as "Lamp One" would get.
        app.product(&seller, "Lamp", "LAMP-ONE", 1000).await;
        let r = app.post("/api/v1/products", json!({"title": "Other Lamp", "variants": [{"sku": "lamp-one", "prices": []}]}), Some(&seller)).await;
        r.assert_problem(409, "sku_taken");
        app.post("/api/v1/products", json!({"title": "Lamp One"}), Some(&seller)).await.assert_problem(409, "slug_taken");
        // The failed creations wrote nothing.
        let mine = app.get("/api/v1/seller/products", Some(&seller)).await;
        assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);
    }

    async fn cursor_pagination_visits_every_product_once_in_every_sort(app) {
        let seller = app.seller("s3@example.com").await;
        for i in 0..23 {
            // Repeated prices and titles exercise the id tie-breaker.
            app.product(&seller, &format!("Item {:02}", i % 7), &format!("SKU-{i}"), 100 + (i % 5) * 10).await;
        }
        for sort in ["newest", "price_asc", "price_desc", "title"] {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!("/api/v1/products?limit=5&sort={sort}");
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let page = app.get(&path, None).await;
                assert_eq!(page.status, 200, "{}", page.text);
                for item in page.body["items"].as_array().unwrap() {
                    seen.push((item["id"].as_str().unwrap().to_owned(), item["price"]["amount_minor"].as_i64().unwrap(), item["title"].as_str().unwrap().to_owned()));
                }
                match page.body["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            assert_eq!(seen.len(), 23, "{sort}");
            assert_eq!(seen.iter().map(|s| &s.0).collect::<HashSet<_>>().len(), 23, "{sort}: duplicates");
            let prices: Vec<i64> = seen.iter().map(|s| s.1).collect();
            match sort {
                "price_asc" => assert!(prices.windows(2).all(|w| w[0] <= w[1]), "{prices:?}"),
                "price_desc" => assert!(prices.windows(2).all(|w| w[0] >= w[1]), "{prices:?}"),
                "title" => assert!(seen.windows(2).all(|w| w[0].2 <= w[1].2)),
                _ => assert!(seen.windows(2).all(|w| w[0].0 > w[1].0), "newest first"),
            }
        }
    }

    async fn listings_filter_by_category_tree_brand_seller_and_price(app) {
        let admin = app.admin().await;
        let home = app.post("/api/v1/categories", json!({"slug": "home", "name": "Home"}), Some(&admin)).await;
        assert_eq!(home.status, 201, "{}", home.text);
        let home_id = home.body["id"].as_str().unwrap().to_owned();
        let kitchen = app.post("/api/v1/categories", json!({"slug": "kitchen", "name": "Kitchen", "parent_id": home_id}), Some(&admin)).await;
        assert_eq!(kitchen.body["path"], "home/kitchen");
        let kitchen_id = kitchen.body["id"].as_str().unwrap().to_owned();
        let tree = app.get("/api/v1/categories", None).await;
        assert_eq!(tree.body["items"][0]["children"][0]["slug"], "kitchen");

        let a = app.seller("a@example.com").await;
        let b = app.seller("b@example.com").await;
        let pan = app.product(&a, "Pan", "PAN", 2000).await;
        app.patch(&format!("/api/v1/products/{}", pan["id"].as_str().unwrap()), json!({"category_id": kitchen_id, "brand": "Acme"}), Some(&a)).await;
        let rug = app.product(&b, "Rug", "RUG", 5000).await;
        app.patch(&format!("/api/v1/products/{}", rug["id"].as_str().unwrap()), json!({"category_id": home_id}), Some(&b)).await;
        app.product(&b, "Book", "BOOK", 800).await;

        let titles = |path: String| {
            let app = &app;
            async move {
                let r = app.get(&path, None).await;
                assert_eq!(r.status, 200, "{}", r.text);
                let mut t: Vec<String> = r.body["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap().to_owned()).collect();
                t.sort();
                t
            }
        };
        assert_eq!(titles("/api/v1/products?category=home".into()).await, ["Pan", "Rug"]);
        assert_eq!(titles("/api/v1/products?category=kitchen".into()).await, ["Pan"]);
        assert_eq!(titles("/api/v1/products?brand=Acme".into()).await, ["Pan"]);
        assert_eq!(titles("/api/v1/products?price_min=1000&price_max=4000".into()).await, ["Pan"]);
        assert_eq!(titles("/api/v1/products?currency=EUR&price_min=5000".into()).await, ["Rug"]);
        let b_id = app.get("/api/v1/products/rug", None).await.body["seller_id"].as_str().unwrap().to_owned();
        assert_eq!(titles(format!("/api/v1/products?seller={b_id}")).await, ["Book", "Rug"]);
        app.get("/api/v1/products?category=nowhere", None).await.assert_problem(422, "validation_failed");
        app.get("/api/v1/products?price_min=10&price_max=5", None).await.assert_problem(422, "validation_failed");
    }

    async fn product_reads_are_cached_with_etags_and_refreshed_by_writes(app) {
        let seller = app.seller("s4@example.com").await;
        let product = app.product(&seller, "Vase", "VASE", 1500).await;
        let path = format!("/api/v1/products/{}", product["id"].as_str().unwrap());
        let first = app.get(&path, None).await;
        let etag = first.header("etag").unwrap().to_owned();
        assert!(first.header("cache-control").unwrap().contains("max-age"));

        let req = axum::http::Request::get(&path).header("if-none-match", &etag).body(axum::body::Body::empty()).unwrap();
        let not_modified = app.send(req).await;
        assert_eq!(not_modified.status, 304);
        assert!(not_modified.text.is_empty());

        app.patch(&path, json!({"title": "Tall Vase"}), Some(&seller)).await;
        let req = axum::http::Request::get(&path).header("if-none-match", &etag).body(axum::body::Body::empty()).unwrap();
        let changed = app.send(req).await;
        assert_eq!(changed.status, 200);
        assert_eq!(changed.body["title"], "Tall Vase");
        assert_ne!(changed.header("etag").unwrap(), etag);
    }

    async fn translations_follow_accept_language_and_the_locale_parameter(app) {
        let seller = app.seller("s5@example.com").await;
        let product = app.product(&seller, "Candle", "CANDLE", 300).await;
        let id = product["id"].as_str().unwrap();
        let r = app.put(&format!("/api/v1/products/{id}/translations/fr"), json!({"title": "Bougie", "description": "Pour la table."}), Some(&seller)).await;
        assert_eq!(r.status, 200, "{}", r.text);

        let req = |lang: &str| axum::http::Request::get(format!("/api/v1/products/{id}")).header("accept-language", lang).body(axum::body::Body::empty()).unwrap();
        let fr = app.send(req("fr-CA, en;q=0.5")).await;
        assert_eq!(fr.body["title"], "Bougie");
        assert_eq!(fr.body["locale"], "fr");
        assert_eq!(fr.header("content-language"), Some("fr"));
        let de = app.send(req("de")).await;
        assert_eq!(de.body["title"], "Candle", "falls back to the base text");
        let en_first = app.send(req("en, fr")).await;
        assert_eq!(en_first.body["title"], "Candle");
        let query = app.get(&format!("/api/v1/products/{id}?locale=fr"), None).await;
        assert_eq!(query.body["title"], "Bougie");
        let listed = app.get("/api/v1/products?locale=fr", None).await;
        assert_eq!(listed.body["items"][0]["title"], "Bougie");
    }

    async fn variants_can_be_added_and_repriced(app) {
        let seller = app.seller("s6@example.com").await;
        let product = app.product(&seller, "Shirt", "SHIRT-S", 1000).await;
        let id = product["id"].as_str().unwrap();
        let r = app.post(&format!("/api/v1/products/{id}/variants"), json!({"sku": "SHIRT-M", "options": {"size": "M"}, "prices": [{"currency": "JPY", "amount_minor": 2500}]}), Some(&seller)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["variants"].as_array().unwrap().len(), 2);
        assert_eq!(r.body["variants"][1]["prices"][0]["display"], "2500 JPY");
        let variant = r.body["variants"][0]["id"].as_str().unwrap();
        let r = app.patch(&format!("/api/v1/variants/{variant}"), json!({"prices": [{"currency": "KWD", "amount_minor": 1250}]}), Some(&seller)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["variants"][0]["prices"][0]["display"], "1.250 KWD");
        assert_eq!(r.body["variants"][0]["prices"].as_array().unwrap().len(), 1);
    }
}
