//! Product search: the index follows the outbox, typo tolerance, facets, synonyms,
//! suggestions, analytics, sorting and paging.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_both_databases;

/// Creates an active product from a JSON body (slug from the SKU); returns its id.
pub async fn item(app: &TestApp, token: &str, sku: &str, mut body: Value) -> String {
    body["status"] = json!("active");
    body["slug"] = json!(sku.to_lowercase());
    let price = body.get("price").cloned().unwrap_or(json!(1000));
    body.as_object_mut().unwrap().remove("price");
    body["variants"] =
        json!([{"sku": sku, "prices": [{"currency": "GBP", "amount_minor": price}]}]);
    let r = app.post("/api/v1/products", body, Some(token)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().unwrap().to_owned()
}

pub fn titles(r: &Value) -> Vec<String> {
    r["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["title"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls `path` until `done` holds; returns how long it took (fails after 3 s).
async fn within(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Duration {
    let started = Instant::now();
    loop {
        let r = app.get(path, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if done(&r.body) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "never happened: {path} → {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

on_both_databases! {
    async fn changes_reach_search_within_a_second_through_the_worker(app) {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(emporium_worker::run(app.shop.clone(), stopped));
        let seller = app.seller("s@example.com").await;
        let id = item(&app, &seller, "LAMP-1", json!({"title": "Brass Reading Lamp"})).await;
        let took = within(&app, "/api/v1/search?q=reading+lamp", |b| b["total"] == 1).await;
        assert!(took < Duration::from_secs(1), "created: {took:?}");

        app.patch(&format!("/api/v1/products/{id}"), json!({"title": "Brass Desk Lamp"}), Some(&seller)).await;
        let took = within(&app, "/api/v1/search?q=desk", |b| b["total"] == 1).await;
        assert!(took < Duration::from_secs(1), "updated: {took:?}");

        let r = app.post("/api/v1/stock/LAMP-1/receive", json!({"quantity": 3}), Some(&seller)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let took = within(&app, "/api/v1/search?q=lamp&in_stock=true", |b| b["total"] == 1).await;
        assert!(took < Duration::from_secs(1), "stock: {took:?}");

        // A reservation of the last units takes the product out of stock; its release brings it back.
        let buyer = app.customer("buyer@example.com").await;
        let held = app.post("/api/v1/reservations", json!({"lines": [{"sku": "LAMP-1", "quantity": 3}]}), Some(&buyer)).await;
        assert_eq!(held.status, 201, "{}", held.text);
        let took = within(&app, "/api/v1/search?q=lamp&in_stock=true", |b| b["total"] == 0).await;
        assert!(took < Duration::from_secs(1), "reserved: {took:?}");
        let released = app.delete(&format!("/api/v1/reservations/{}", held.body["id"].as_str().unwrap()), Some(&buyer)).await;
        assert!(released.status.is_success(), "{}", released.text);
        let took = within(&app, "/api/v1/search?q=lamp&in_stock=true", |b| b["total"] == 1).await;
        assert!(took < Duration::from_secs(1), "released: {took:?}");

        let product = emporium_domain::ids::ProductId(id.parse().unwrap());
        emporium_shop::catalog::signals::record_rating(&app.shop, product, 4.5, 12).await.unwrap();
        let took = within(&app, "/api/v1/search?q=lamp", |b| b["hits"][0]["rating"] == 4.5).await;
        assert!(took < Duration::from_secs(1), "rating: {took:?}");
        let r = app.get("/api/v1/search?q=lamp&rating_min=4", None).await;
        assert_eq!(r.body["total"], 1, "{}", r.text);

        let other = item(&app, &seller, "LAMP-2", json!({"title": "Floor Lamp"})).await;
        within(&app, "/api/v1/search?q=lamp", |b| b["total"] == 2).await;
        let other_id = emporium_domain::ids::ProductId(other.parse().unwrap());
        emporium_shop::catalog::signals::record_sales(&app.shop, other_id, 7).await.unwrap();
        let took = within(&app, "/api/v1/search?q=lamp&sort=best_selling", |b| b["hits"][0]["title"] == "Floor Lamp").await;
        assert!(took < Duration::from_secs(1), "sales: {took:?}");

        app.patch(&format!("/api/v1/products/{id}"), json!({"status": "archived"}), Some(&seller)).await;
        let took = within(&app, "/api/v1/search?q=desk", |b| b["total"] == 0).await;
        assert!(took < Duration::from_secs(1), "archived: {took:?}");
        stop.send(true).unwrap();
        worker.await.unwrap();
    }

    async fn typos_are_tolerated_by_word_length_and_rank_below_exact_words(app) {
        let seller = app.seller("s@example.com").await;
        item(&app, &seller, "T-1", json!({"title": "Porcelain Lantern"})).await;
        item(&app, &seller, "T-2", json!({"title": "Porcelain Lanterns Set"})).await;
        item(&app, &seller, "T-3", json!({"title": "Cat Bowl"})).await;
        item(&app, &seller, "T-4", json!({"title": "Candle Holder"})).await;
        item(&app, &seller, "T-5", json!({"title": "Candel Snuffer"})).await;
        app.sync_search().await;
        // Two typos in a long word, one in a medium word, none in a short one.
        assert_eq!(app.get("/api/v1/search?q=procelian", None).await.body["total"], 2);
        assert_eq!(app.get("/api/v1/search?q=lantren", None).await.body["total"], 2);
        assert_eq!(app.get("/api/v1/search?q=cta", None).await.body["total"], 0);
        // The exact word first, then the one-typo match.
        let r = app.get("/api/v1/search?q=candle", None).await;
        assert_eq!(titles(&r.body), ["Candle Holder", "Candel Snuffer"], "{}", r.text);
        let r = app.get("/api/v1/search?q=candel", None).await;
        assert_eq!(titles(&r.body), ["Candel Snuffer", "Candle Holder"], "{}", r.text);
        // Highlights mark the matched word.
        let r = app.get("/api/v1/search?q=lantern", None).await;
        assert!(r.body["hits"][0]["title_html"].as_str().unwrap().contains("<em>Lantern"), "{}", r.text);
        // The last word is completed; a finished word is not.
        assert_eq!(app.get("/api/v1/search?q=porcelain+lant", None).await.body["total"], 2);
        assert_eq!(app.get("/api/v1/search?q=hold", None).await.body["total"], 1);
        // Few results offer a correction.
        let r = app.get("/api/v1/search?q=snufer+zzqx", None).await;
        assert_eq!(r.body["did_you_mean"], "snuffer zzqx", "{}", r.text);
    }

    async fn facets_are_disjunctive_and_filters_combine(app) {
        let admin = app.admin().await;
        let seller = app.seller("s@example.com").await;
        let root = app.post("/api/v1/categories", json!({"slug": "lighting", "name": "Lighting"}), Some(&admin)).await;
        let lamps = app.post("/api/v1/categories", json!({"slug": "lamps", "name": "Lamps", "parent_id": root.body["id"]}), Some(&admin)).await;
        let lamps = lamps.body["id"].clone();
        item(&app, &seller, "F-1", json!({"title": "Desk Lamp", "brand": "Acme", "category_id": lamps, "attributes": {"colour": "red"}, "price": 1500})).await;
        item(&app, &seller, "F-2", json!({"title": "Floor Lamp", "brand": "Acme", "category_id": lamps, "attributes": {"colour": "blue"}, "price": 8000})).await;
        item(&app, &seller, "F-3", json!({"title": "Wall Lamp", "brand": "Lumo", "attributes": {"colour": "red"}, "price": 30000})).await;
        app.sync_search().await;

        let r = app.get("/api/v1/search?q=lamp&brand=Acme", None).await;
        assert_eq!(r.body["total"], 2, "{}", r.text);
        let brands = &r.body["facets"]["brands"];
        assert_eq!(brands, &json!([{"value": "Acme", "count": 2}, {"value": "Lumo", "count": 1}]));
        let colours = &r.body["facets"]["attributes"]["colour"];
        assert_eq!(colours, &json!([{"value": "blue", "count": 1}, {"value": "red", "count": 1}]));
        let tree = &r.body["facets"]["categories"][0];
        assert_eq!((tree["path"].as_str(), tree["name"].as_str(), tree["count"].as_u64()), (Some("lighting"), Some("Lighting"), Some(2)));
        assert_eq!(tree["children"][0]["path"], "lighting/lamps");

        let r = app.get("/api/v1/search?q=lamp&brand=Acme&brand=Lumo&attr.colour=red", None).await;
        assert_eq!(titles(&r.body).len(), 2, "{}", r.text);
        assert_eq!(r.body["facets"]["attributes"]["colour"], json!([{"value": "red", "count": 2}, {"value": "blue", "count": 1}]));
        let r = app.get("/api/v1/search?q=lamp&category=lighting&price_min=1000&price_max=5000", None).await;
        assert_eq!(titles(&r.body), ["Desk Lamp"], "{}", r.text);
        let buckets: Vec<u64> = r.body["facets"]["price"].as_array().unwrap().iter().map(|b| b["count"].as_u64().unwrap()).collect();
        assert_eq!(buckets, [1, 1], "the price facet ignores the price filter, not the category: {}", r.text);
        let r = app.get("/api/v1/search?category=lamps&sort=price_desc", None).await;
        assert_eq!(titles(&r.body), ["Floor Lamp", "Desk Lamp"], "{}", r.text);
        assert_eq!(r.body["hits"][0]["price"]["amount_minor"], 8000);
    }

    async fn admins_manage_synonyms_that_apply_at_once(app) {
        let admin = app.admin().await;
        let seller = app.seller("s@example.com").await;
        item(&app, &seller, "S-1", json!({"title": "Velvet Sofa"})).await;
        item(&app, &seller, "S-2", json!({"title": "Flat Screen Television"})).await;
        app.sync_search().await;
        assert_eq!(app.get("/api/v1/search?q=couch", None).await.body["total"], 0);
        let r = app.post("/api/v1/admin/search/synonyms", json!({"kind": "multi_way", "terms": ["sofa", "couch", "settee"]}), Some(&admin)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let group = r.body["id"].as_str().unwrap().to_owned();
        app.post("/api/v1/admin/search/synonyms", json!({"kind": "one_way", "source": "tv", "terms": ["television"]}), Some(&admin)).await;
        assert_eq!(titles(&app.get("/api/v1/search?q=couch", None).await.body), ["Velvet Sofa"]);
        assert_eq!(titles(&app.get("/api/v1/search?q=tv", None).await.body), ["Flat Screen Television"]);
        let listed = app.get("/api/v1/admin/search/synonyms", Some(&admin)).await;
        assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
        assert_eq!(app.delete(&format!("/api/v1/admin/search/synonyms/{group}"), Some(&admin)).await.status, 204);
        assert_eq!(app.get("/api/v1/search?q=couch", None).await.body["total"], 0);
        app.delete(&format!("/api/v1/admin/search/synonyms/{group}"), Some(&admin)).await.assert_problem(404, "synonym_not_found");
        app.post("/api/v1/admin/search/synonyms", json!({"kind": "one_way", "terms": ["x"]}), Some(&admin)).await.assert_problem(422, "validation_failed");
        app.post("/api/v1/admin/search/synonyms", json!({"kind": "multi_way", "terms": ["a"]}), Some(&seller)).await.assert_problem(403, "forbidden");
    }

    async fn suggestions_complete_titles_and_past_queries_and_analytics_are_recorded(app) {
        let admin = app.admin().await;
        let seller = app.seller("s@example.com").await;
        item(&app, &seller, "G-1", json!({"title": "Cordless Drill"})).await;
        item(&app, &seller, "G-2", json!({"title": "Cordless Driver Set"})).await;
        app.sync_search().await;
        let r = app.get("/api/v1/search/suggest?q=cordless+dri", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let completions: Vec<&str> = r.body["completions"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert!(completions.contains(&"cordless drill") && completions.contains(&"cordless driver"), "{}", r.text);
        assert_eq!(r.body["products"].as_array().unwrap().len(), 2);

        for q in ["cordless drill", "cordless drill", "Cordless  DRILL", "hammer"] {
            app.get(&format!("/api/v1/search?q={}", q.replace(' ', "+")), None).await;
        }
        app.shop.search.analytics.flush(&app.shop).await.unwrap();
        let top = app.get("/api/v1/admin/search/queries", Some(&admin)).await;
        assert_eq!(top.body["items"][0]["query"], "cordless drill", "{}", top.text);
        assert_eq!(top.body["items"][0]["searches"], 3);
        let zero = app.get("/api/v1/admin/search/queries?kind=zero_results", Some(&admin)).await;
        assert_eq!(zero.body["items"], json!([zero.body["items"][0].clone()]));
        assert_eq!(zero.body["items"][0]["query"], "hammer");
        app.get("/api/v1/admin/search/queries", Some(&seller)).await.assert_problem(403, "forbidden");

        emporium_shop::search::analytics::refresh_popular(&app.shop).await.unwrap();
        let r = app.get("/api/v1/search/suggest?q=cord", None).await;
        assert_eq!(r.body["completions"][0], "cordless drill", "{}", r.text);
    }

    async fn pages_follow_the_cursor_and_locales_use_their_stemmer(app) {
        let seller = app.seller("s@example.com").await;
        for i in 0..5 {
            item(&app, &seller, &format!("P-{i}"), json!({"title": format!("Garden Chair {i}"), "price": 1000 + i})).await;
        }
        let id = item(&app, &seller, "DE-1", json!({"title": "Lantern"})).await;
        app.put(&format!("/api/v1/products/{id}/translations/de"), json!({"title": "Laterne für den Garten", "description": "Eine Laterne"}), Some(&seller)).await;
        app.sync_search().await;
        let first = app.get("/api/v1/search?q=chair&sort=price_asc&limit=2", None).await;
        assert_eq!(titles(&first.body), ["Garden Chair 0", "Garden Chair 1"]);
        let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
        let second = app.get(&format!("/api/v1/search?q=chair&sort=price_asc&limit=2&cursor={cursor}"), None).await;
        assert_eq!(titles(&second.body), ["Garden Chair 2", "Garden Chair 3"]);
        let r = app.get("/api/v1/search?q=laternen&locale=de", None).await;
        assert_eq!(titles(&r.body), ["Laterne für den Garten"], "{}", r.text);
        assert_eq!(r.body["hits"][0]["locale"], "de");
    }
}
