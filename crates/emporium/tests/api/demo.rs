use crate::on_both_databases;

on_both_databases! {
    async fn the_demo_catalog_loads_once_and_serves_products(app) {
        let account = |email: &str| emporium_shop::demo::DemoAccount {
            email: email.to_owned(),
            password: "demo password 123".to_owned(),
            generated: false,
        };
        let report = emporium_shop::demo::load_if_empty(&app.shop, emporium::DEMO_CATALOG, account("admin@example.com"), account("seller@example.com"))
            .await
            .unwrap()
            .expect("an empty database gets the demo data");
        assert!(report.products > 3000, "{}", report.products);
        assert!(report.categories > 20);
        let again = emporium_shop::demo::load_if_empty(&app.shop, emporium::DEMO_CATALOG, account("a2@example.com"), account("s2@example.com")).await.unwrap();
        assert!(again.is_none(), "demo data is loaded on first start only");

        let r = app.get("/api/v1/products/white-hanging-heart-t-light-holder", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["variants"][0]["sku"], "85123A");
        assert_eq!(r.body["variants"][0]["stock_status"], "in_stock");
        assert_eq!(r.body["category"]["path"], "home-decor/candles-and-holders");
        let gbp = r.body["variants"][0]["prices"].as_array().unwrap().iter().find(|p| p["currency"] == "GBP").unwrap();
        assert!(gbp["amount_minor"].as_i64().unwrap() > 0);
        let r = app.get("/api/v1/products?category=christmas-and-seasonal&limit=100", None).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 100);

        let login = app.post("/api/v1/auth/login", serde_json::json!({"email": "seller@example.com", "password": "demo password 123"}), None).await;
        assert_eq!(login.status, 200, "{}", login.text);
        assert_eq!(login.body["user"]["role"], "seller");
    }
}
