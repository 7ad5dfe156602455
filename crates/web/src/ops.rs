//! Operations: `/healthz`, `/readyz`, `/metrics`, and the request middleware (metrics,
//! timeouts, panics, unknown routes).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
}

/// The process is alive. Touches nothing.
async fn healthz() -> &'static str {
    "ok"
}

/// The database answers.
async fn readyz(State(app): State<AppState>) -> Result<&'static str, ApiError> {
    app.shop.db.ping().await.map_err(|e| {
        tracing::warn!(
            error = format!("{:#}", anyhow_chain(&e)),
            "readiness check failed"
        );
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database does not answer",
        )
    })?;
    Ok("ready")
}

fn anyhow_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The Prometheus recorder of this process (installed once, shared by every app).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let builder = PrometheusBuilder::new();
        let builder = builder
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), &buckets)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        handle
    })
}

async fn metrics_text(State(app): State<AppState>) -> Response {
    for (pool, size, idle) in app.shop.db.pool_stats() {
        metrics::gauge!("db_pool_connections", "pool" => pool).set(f64::from(size));
        metrics::gauge!("db_pool_idle_connections", "pool" => pool).set(idle as f64);
    }
    let mut response = metrics_handle().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Counts requests and their latency by method, route template and status.
pub async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    record_request(
        [("method", method), ("route", route), ("status", status)],
        started,
    );
    response
}

/// Counts one request and its latency under `labels` (method, route template, status).
pub(crate) fn record_request(labels: [(&'static str, String); 3], started: Instant) {
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!(REQUESTS, &labels).increment(1);
    metrics::histogram!(REQUEST_DURATION, &labels).record(elapsed);
}

/// Requests answered, by method, route template and status.
pub(crate) const REQUESTS: &str = "http_requests_total";
/// Their latency, by the same labels.
pub(crate) const REQUEST_DURATION: &str = "http_request_duration_seconds";

/// Answers a request that ran past its time limit.
pub fn timed_out(_: axum::BoxError) -> TimedOut {
    Box::pin(async { timed_out_error() })
}

/// The answer to a request that ran past its time limit, for code in front of the timeout layer.
pub fn timed_out_response() -> Response {
    timed_out_error().into_response()
}

fn timed_out_error() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "timeout",
        "the request took too long and was stopped",
    )
}

/// The layers that stop a request at its time limit and answer with [`timed_out`].
pub type TimeoutLayers = tower::ServiceBuilder<
    tower::layer::util::Stack<
        tower::timeout::TimeoutLayer,
        tower::layer::util::Stack<
            axum::error_handling::HandleErrorLayer<fn(axum::BoxError) -> TimedOut, ()>,
            tower::layer::util::Identity,
        >,
    >,
>;

/// `tower`'s timeout with its error turned into a problem+json 503.
pub fn timeout_layer(limit: Duration) -> TimeoutLayers {
    tower::ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(
            timed_out as fn(axum::BoxError) -> TimedOut,
        ))
        .timeout(limit)
}

/// The future type of [`timed_out`].
pub type TimedOut = std::pin::Pin<Box<dyn std::future::Future<Output = ApiError> + Send>>;

pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::internal().into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept this method",
    )
}
