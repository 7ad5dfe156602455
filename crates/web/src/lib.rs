//! HTTP only: the JSON API under `/api/v1`, its OpenAPI document and docs page, health,
//! readiness and metrics. Handlers parse, authorize (by the extractor they ask for), call one
//! shop operation and map its result; no SQL and no business rules here.
//!
//! Layout: `api` (one module per business component, each exporting `router()`), `error`
//! (the API error type and the error policy), `extract` (rejection-safe extractors and
//! authentication), `cache` (the catalog read cache with ETags), `idempotency` (the
//! `Idempotency-Key` middleware of mutating routes), `ops` (health, readiness, metrics,
//! request middleware), `openapi` (the generated document).

pub mod api;
pub mod cache;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod openapi;
pub mod ops;
pub mod sold_out;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use emporium_shop::Shop;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// What every handler can reach. Cloned for every request, so it is one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

pub struct AppParts {
    pub shop: Shop,
    pub cache: cache::ReadCache,
}

impl AppState {
    pub fn new(shop: Shop) -> Self {
        Self(Arc::new(AppParts {
            shop,
            cache: cache::ReadCache::default(),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// HTTP limits.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Larger request bodies get 413.
    pub max_body_bytes: usize,
    /// A request that takes longer gets 503.
    pub request_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The header carrying a request's id (the client's, or one made for it).
pub(crate) const REQUEST_ID: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-request-id");

/// The whole HTTP application.
pub fn app(state: AppState, config: &HttpConfig) -> Router {
    ops::metrics_handle();
    let idempotent = axum::middleware::from_fn_with_state(state.clone(), idempotency::middleware);
    let routed = Router::new()
        .nest("/api/v1", api::router().route_layer(idempotent))
        .merge(openapi::router())
        .merge(ops::router())
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(axum::middleware::from_fn(ops::record_metrics))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(ops::timeout_layer(config.request_timeout))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            ops::panic_response,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state.clone());
    // In front of every layer above: see `sold_out`.
    let front = sold_out::Front {
        app: state,
        timeout: config.request_timeout,
    };
    Router::new()
        .fallback_service(routed)
        .layer(axum::middleware::from_fn_with_state(
            front,
            sold_out::middleware,
        ))
}
