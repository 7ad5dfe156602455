//! Search never fails on what a shopper (or a fuzzer) types: bad input is a 4xx problem or
//! a sensible empty result.

use serde_json::json;

use crate::on_both_databases;
use crate::search::item;

on_both_databases! {
    async fn bad_search_input_gets_a_problem_or_an_empty_result(app) {
        let seller = app.seller("s@example.com").await;
        item(&app, &seller, "B-1", json!({"title": "Oak Table"})).await;
        app.sync_search().await;
        for ok in [
            "", "?q=", "?q=%20%20", "?q=%22oak", "?q=oak%22%22%22", "?q=oak+AND+OR+NOT+-table+%2B*%3A()%5B%5D%7B%7D%5E~",
            "?q=title%3Aoak", "?q=%00%01", "?q=%F0%9F%98%80", "?q=%E2%80%AEoak", "?q=a&q=b", "?q=oak&utm_source=x",
        ] {
            let r = app.get(&format!("/api/v1/search{ok}"), None).await;
            assert_eq!(r.status, 200, "{ok}: {}", r.text);
        }
        assert_eq!(app.get("/api/v1/search?q=oak+AND+OR+NOT+-table", None).await.body["total"], 1);
        let huge = "x".repeat(201);
        let cases = [
            (format!("?q={huge}"), 422, "validation_failed"),
            ("?q=%FF%FE".into(), 400, "invalid_encoding"),
            ("?q=%E2%82".into(), 400, "invalid_encoding"),
            ("?q=%ZZ".into(), 400, "invalid_encoding"),
            ("?price_min=500&price_max=100".into(), 422, "validation_failed"),
            ("?price_min=-1".into(), 422, "validation_failed"),
            ("?price_max=99999999999999999999999".into(), 422, "validation_failed"),
            ("?rating_min=7".into(), 422, "validation_failed"),
            ("?rating_min=NaN".into(), 422, "validation_failed"),
            ("?in_stock=maybe".into(), 422, "validation_failed"),
            ("?sort=bogus".into(), 422, "validation_failed"),
            ("?limit=0".into(), 422, "validation_failed"),
            ("?limit=100000".into(), 422, "validation_failed"),
            ("?cursor=garbage".into(), 422, "validation_failed"),
            ("?currency=XYZ".into(), 422, "validation_failed"),
            ("?category=nope".into(), 422, "validation_failed"),
            ("?attr.=red".into(), 422, "validation_failed"),
            (format!("?{}", "a=1&".repeat(70)), 400, "invalid_query"),
        ];
        for (query, status, code) in cases {
            app.get(&format!("/api/v1/search{query}"), None).await.assert_problem(status, code);
        }
        let deep = emporium_shop::search::view::cursor_of(5000);
        app.get(&format!("/api/v1/search?cursor={deep}"), None).await.assert_problem(422, "validation_failed");
        assert_eq!(app.get("/api/v1/search?brand=Nobody", None).await.body["total"], 0);
        assert_eq!(app.get("/api/v1/search?q=zzzzqqqq", None).await.body["total"], 0);
        assert_eq!(app.get("/api/v1/search/suggest?q=", None).await.status, 200);
        assert_eq!(app.get("/api/v1/search/suggest", None).await.status, 200);
        app.get("/api/v1/search/suggest?q=%FF", None).await.assert_problem(400, "invalid_encoding");
        app.get(&format!("/api/v1/search/suggest?q={huge}"), None).await.assert_problem(422, "validation_failed");
    }
}
