use crate::on_both_databases;

on_both_databases! {
    async fn health_and_readiness_answer_with_request_ids(app) {
        let r = app.get("/healthz", None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text, "ok");
        assert!(r.header("x-request-id").is_some_and(|id| id.len() == 36));
        let r = app.get("/readyz", None).await;
        assert_eq!(r.status, 200);
    }

    async fn metrics_count_requests_by_route_and_show_the_pool(app) {
        app.get("/api/v1/categories", None).await;
        let r = app.get("/metrics", None).await;
        assert_eq!(r.status, 200);
        assert!(r.text.contains("http_requests_total"), "{}", r.text);
        assert!(r.text.contains("route=\"/api/v1/categories\""), "{}", r.text);
        assert!(r.text.contains("http_request_duration_seconds_bucket"), "{}", r.text);
        assert!(r.text.contains("db_pool_connections"), "{}", r.text);
    }

    async fn unknown_routes_and_methods_are_problems(app) {
        app.get("/api/v1/nope", None).await.assert_problem(404, "route_not_found");
        app.delete("/api/v1/categories", None).await.assert_problem(405, "method_not_allowed");
    }

    async fn readiness_fails_when_the_database_is_gone(app) {
        app.shop.db.close().await;
        app.get("/readyz", None).await.assert_problem(503, "database_unavailable");
        assert_eq!(app.get("/healthz", None).await.status, 200);
    }
}
