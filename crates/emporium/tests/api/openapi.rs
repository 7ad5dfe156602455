use crate::on_both_databases;

on_both_databases! {
    async fn the_openapi_document_matches_its_snapshot(app) {
        let r = app.get("/api/v1/openapi.json", None).await;
        assert_eq!(r.status, 200);
        assert!(r.body["openapi"].as_str().unwrap().starts_with("3.1"));
        insta::assert_json_snapshot!("openapi", r.body, {".info.version" => "[version]"});
    }

    async fn the_docs_page_needs_no_external_network(app) {
        let r = app.get("/api/docs/", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.text.contains("swagger"), "{}", r.text);
        for external in ["http://", "https://", "//cdn", "unpkg", "jsdelivr"] {
            assert!(!r.text.contains(external), "the docs page loads {external}: {}", r.text);
        }
        let init = app.get("/api/docs/swagger-initializer.js", None).await;
        assert_eq!(init.status, 200);
        assert!(init.text.contains("/api/v1/openapi.json"), "{}", init.text);
        assert!(!init.text.contains("https://"), "{}", init.text);
        let bundle = app.get("/api/docs/swagger-ui-bundle.js", None).await;
        assert_eq!(bundle.status, 200);
        assert!(bundle.text.len() > 100_000, "the UI bundle is served locally");
    }
}
