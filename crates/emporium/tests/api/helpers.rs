//! The test application: the real router over a fresh database per test (a temporary SQLite
//! file, or a fresh PostgreSQL schema), driven in-process with `oneshot`, plus fixtures.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use emporium_domain::identity::{Email, Password, PersonName, Role, UserStatus};
use emporium_shop::identity::{HashingCost, Registration, create_user};
use emporium_shop::throttle::ThrottleConfig;
use emporium_shop::{ManualClock, Shop, ShopConfig};
use emporium_store::{Db, DbConfig};
use emporium_web::{AppState, HttpConfig};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Generates one test per backend: `name::sqlite` always, `name::postgres` when the suite
/// was built with `EMPORIUM_TEST_DATABASE_URL` set.
#[macro_export]
macro_rules! on_both_databases {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(clippy::allow_attributes, unused_imports, reason = "not every test uses its module's imports")]
                use super::*;

                #[tokio::test]
                async fn sqlite() {
                    let $app = $crate::helpers::TestApp::sqlite().await;
                    $body
                }

                #[cfg(pg_tests)]
                #[tokio::test]
                async fn postgres() {
                    let $app = $crate::helpers::TestApp::postgres().await;
                    $body
                }
            }
        )*
    };
}

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub router: Router,
    pub shop: Shop,
    pub clock: Arc<ManualClock>,
    _dir: Option<tempfile::TempDir>,
}

/// A response, with the body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.text
        );
        assert_eq!(self.body["code"], code, "body: {}", self.text);
        assert_eq!(self.body["status"], status);
    }
}

pub fn test_config() -> ShopConfig {
    ShopConfig {
        // Still Argon2id, at a cost that keeps hundreds of test logins fast.
        password_hashing: HashingCost {
            memory_kib: 256,
            passes: 1,
        },
        login_throttle: ThrottleConfig {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            ..ThrottleConfig::default()
        },
        ..ShopConfig::default()
    }
}

impl TestApp {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&DbConfig::sqlite_in(dir.path())).await.unwrap();
        Self::with_db(db, Some(dir)).await
    }

    #[cfg_attr(
        not(pg_tests),
        expect(dead_code, reason = "only the PostgreSQL half uses it")
    )]
    pub async fn postgres() -> Self {
        let url = std::env::var("EMPORIUM_TEST_DATABASE_URL").expect("EMPORIUM_TEST_DATABASE_URL");
        let schema = format!("test_{}", uuid::Uuid::now_v7().simple());
        let admin: sqlx::PgPool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let db = Db::connect(&DbConfig {
            url,
            max_connections: 4,
            schema: Some(schema),
            sqlite_writer_priority: None,
        })
        .await
        .unwrap();
        Self::with_db(db, None).await
    }

    /// The same database and clock behind a shop with changed settings.
    pub fn reconfigured(mut self, change: impl FnOnce(&mut ShopConfig)) -> Self {
        let mut config = test_config();
        change(&mut config);
        self.shop = Shop::new(self.shop.db.clone(), self.clock.clone(), config);
        attach_search(&self.shop);
        self.router = emporium_web::app(AppState::new(self.shop.clone()), &HttpConfig::default())
            .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        self
    }

    async fn with_db(db: Db, dir: Option<tempfile::TempDir>) -> Self {
        db.migrate().await.unwrap();
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let shop = Shop::new(db, clock.clone(), test_config());
        attach_search(&shop);
        let router = emporium_web::app(AppState::new(shop.clone()), &HttpConfig::default())
            .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        Self {
            router,
            shop,
            clock,
            _dir: dir,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> TestResponse {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(b) => {
                builder = builder.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&b).unwrap())
            }
            None => Body::empty(),
        };
        self.send(builder.body(body).unwrap()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.call(Method::GET, path, None, token).await
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> TestResponse {
        self.call(Method::POST, path, Some(body), token).await
    }

    pub async fn patch(&self, path: &str, body: Value, token: Option<&str>) -> TestResponse {
        self.call(Method::PATCH, path, Some(body), token).await
    }

    pub async fn put(&self, path: &str, body: Value, token: Option<&str>) -> TestResponse {
        self.call(Method::PUT, path, Some(body), token).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.call(Method::DELETE, path, None, token).await
    }

    /// Creates an account directly (any role and status) and logs it in: (token, user id).
    pub async fn user(&self, email: &str, role: Role, status: UserStatus) -> (String, String) {
        let reg = Registration {
            email: Email::parse(email).unwrap(),
            password: Password::parse(PASSWORD.to_owned()).unwrap(),
            name: PersonName::parse("Test User").unwrap(),
            role,
        };
        let user = create_user(&self.shop, &reg, status).await.unwrap();
        (self.login(email).await, user.id.to_string())
    }

    pub async fn login(&self, email: &str) -> String {
        let r = self
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["token"].as_str().unwrap().to_owned()
    }

    pub async fn customer(&self, email: &str) -> String {
        self.user(email, Role::Customer, UserStatus::Active).await.0
    }

    pub async fn seller(&self, email: &str) -> String {
        self.user(email, Role::Seller, UserStatus::Active).await.0
    }

    pub async fn admin(&self) -> String {
        self.user("admin@example.com", Role::Admin, UserStatus::Active)
            .await
            .0
    }

    /// Creates an active product (slug: the SKU in lower case) with one variant priced in GBP
    /// and EUR; returns its JSON.
    pub async fn product(&self, token: &str, title: &str, sku: &str, gbp_minor: i64) -> Value {
        let r = self
            .post(
                "/api/v1/products",
                json!({
                    "title": title,
                    "slug": sku.to_lowercase(),
                    "status": "active",
                    "variants": [{"sku": sku, "prices": [
                        {"currency": "GBP", "amount_minor": gbp_minor},
                        {"currency": "EUR", "amount_minor": gbp_minor * 115 / 100}
                    ]}]
                }),
                Some(token),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body
    }
}

/// Every test shop searches an index in memory.
fn attach_search(shop: &Shop) {
    let index = emporium_search::SearchIndex::in_ram(emporium_search::RankingConfig::default());
    shop.search.attach(Arc::new(index.unwrap()));
}

impl TestApp {
    /// Brings the search index up to date with the outbox, as the worker would.
    pub async fn sync_search(&self) {
        let mut feed = emporium_shop::search::feed::Feed::default();
        while feed.run_once(&self.shop).await.unwrap() > 0 {}
    }

    /// `n` customer accounts inserted directly (no password), for load and race tests.
    pub async fn bulk_users(&self, n: usize) -> Vec<emporium_domain::ids::UserId> {
        let now = self.shop.now();
        let mut tx = self.shop.db.begin().await.unwrap();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let id = emporium_domain::ids::UserId::new();
            let row = emporium_store::identity::UserRow {
                id: id.0,
                email: format!("buyer{i}-{}@example.com", id.0.simple()),
                password_hash: None,
                name: format!("Buyer {i}"),
                role: "customer".into(),
                status: "active".into(),
                created_at: now,
                updated_at: now,
            };
            emporium_store::identity::insert_user(&mut tx, &row)
                .await
                .unwrap();
            ids.push(id);
        }
        tx.commit().await.unwrap();
        ids
    }

    /// Receives `quantity` units of a variant into the location `code`; returns the location.
    pub async fn receive(&self, variant: &str, code: &str, quantity: i64) -> uuid::Uuid {
        let now = self.shop.now();
        let mut tx = self.shop.db.begin().await.unwrap();
        let location = emporium_store::inventory::ensure_location(&mut tx, code, code, now)
            .await
            .unwrap();
        let movement = emporium_store::inventory::Movement {
            variant_id: variant.parse().unwrap(),
            location_id: location,
            delta: quantity,
            kind: "receive",
            reason: None,
            actor_id: None,
            at: now,
        };
        emporium_store::inventory::apply_movement(&mut tx, &movement)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        self.shop.catalog_version.bump();
        location
    }

    /// Asserts the stock equation: on hand equals the ledger, and reserved units equal the
    /// units of active reservations plus those still earmarked by open sales.
    pub async fn assert_stock_equation(&self) {
        let (on_hand, reserved, held, earmarked) =
            emporium_store::reservations::stock_totals(&self.shop.db)
                .await
                .unwrap();
        assert_eq!(
            reserved,
            held + earmarked,
            "reserved = active reservations + open sales' earmarks"
        );
        assert!(
            on_hand >= reserved,
            "on hand {on_hand} < reserved {reserved}"
        );
        let ledger = emporium_store::reservations::ledger_total(&self.shop.db)
            .await
            .unwrap();
        assert_eq!(on_hand, ledger, "on hand equals the ledger");
    }
}
