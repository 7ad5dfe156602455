//! The flood after a sell-out, answered in front of the whole HTTP stack.
//!
//! Once a flash sale sells out, most requests a node gets are shoppers retrying it. The
//! engine already answers them from memory; this layer answers them before anything else
//! runs (request ids, tracing, the time limit, metrics, routing, the idempotency layer and the
//! extractors), with a problem body serialized once. It keeps what those layers give every
//! answer: the `x-request-id` header (the client's, or a new one) and the request's count and
//! duration in `http_requests_total` and `http_request_duration_seconds`, under the same
//! labels as the routed path. Its own limit on reading the body is the request time limit.
//! It answers only when the full path would give the same answer:
//!
//! - `POST /api/v1/flash-sales/{id}/reserve` without `Idempotency-Key` (a keyed retry may
//!   have to replay an earlier 201, which only the idempotency layer knows);
//! - a sale this node remembers as sold out, inside its window;
//! - a bearer token this node's session cache vouches for (no database read here);
//! - an `application/json` body of at most [`MAX_BODY`] bytes, `{"quantity": q}` with a
//!   quantity the sale accepts.
//!
//! Everything else goes on, unchanged, to the full path.

use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use emporium_shop::identity;
use emporium_shop::inventory::flash;
use serde::Deserialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::bearer;
use crate::idempotency::KEY_HEADER;
use crate::{AppState, REQUEST_ID, ops};

/// The largest body looked at here; `{"quantity":1000000}` is 20 bytes.
const MAX_BODY: usize = 64;

/// The one body shape answered here (the handler's `FlashReserveRequest`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reserve {
    quantity: i64,
}

/// What the layer needs: the application, and the request time limit (it runs in front of
/// the timeout layer).
#[derive(Clone)]
pub struct Front {
    pub app: AppState,
    pub timeout: Duration,
}

/// The route label of the answers given here, as the router names the route.
const ROUTE: &str = "/api/v1/flash-sales/{id}/reserve";

pub async fn middleware(State(front): State<Front>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let Some(limit) = candidate(&front.app, &parts) else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    // The length was checked, and the body nearly always came with the headers; a client
    // that holds it back gets as long as the time limit gives any request.
    let mut reading = std::pin::pin!(axum::body::to_bytes(body, MAX_BODY));
    let read = match std::future::poll_fn(|cx| Poll::Ready(reading.as_mut().poll(cx))).await {
        Poll::Ready(read) => Some(read),
        Poll::Pending => tokio::time::timeout(front.timeout, reading).await.ok(),
    };
    let bytes = match read {
        Some(Ok(bytes)) => bytes,
        // Only a broken connection fails here, as it would in the handler's extractor.
        Some(Err(_)) => {
            let unreadable = ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "the body could not be read",
            );
            return finish(unreadable.into_response(), &parts, started);
        }
        None => return finish(ops::timed_out_response(), &parts, started),
    };
    let accepted = serde_json::from_slice::<Reserve>(&bytes)
        .is_ok_and(|r| (1..=limit.min(flash::MAX_QUANTITY)).contains(&r.quantity));
    if !accepted {
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    }
    front
        .app
        .shop
        .engine
        .memory
        .memory_answers
        .fetch_add(1, Ordering::Relaxed);
    finish(answer(), &parts, started)
}

/// What the layers in front would have added: the request id and the request's metrics.
fn finish(mut response: Response, parts: &Parts, started: Instant) -> Response {
    let id = parts
        .headers
        .get(&REQUEST_ID)
        .cloned()
        .unwrap_or_else(new_request_id);
    response.headers_mut().insert(REQUEST_ID, id);
    if response.status() == StatusCode::CONFLICT {
        // The one answer of the flood: its handles are made once (the others label anew,
        // as `ops::record_metrics` does).
        static SOLD_OUT: OnceLock<(metrics::Counter, metrics::Histogram)> = OnceLock::new();
        let (requests, duration) = SOLD_OUT.get_or_init(|| {
            let labels = [("method", "POST"), ("route", ROUTE), ("status", "409")];
            (
                metrics::counter!(ops::REQUESTS, &labels),
                metrics::histogram!(ops::REQUEST_DURATION, &labels),
            )
        });
        requests.increment(1);
        duration.record(started.elapsed().as_secs_f64());
    } else {
        let status = response.status().as_u16().to_string();
        ops::record_request(
            [
                ("method", "POST".to_owned()),
                ("route", ROUTE.to_owned()),
                ("status", status),
            ],
            started,
        );
    }
    response
}

/// A request id as `SetRequestIdLayer` would make it.
fn new_request_id() -> HeaderValue {
    let mut text = Uuid::encode_buffer();
    let text = Uuid::new_v4().hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The sale's per-customer limit when everything but the body says "answer here".
fn candidate(app: &AppState, parts: &Parts) -> Option<i64> {
    if parts.method != Method::POST {
        return None;
    }
    let sale = parts
        .uri
        .path()
        .strip_prefix("/api/v1/flash-sales/")?
        .strip_suffix("/reserve")?;
    let sale = Uuid::try_parse(sale).ok()?;
    let headers = &parts.headers;
    if headers.contains_key(KEY_HEADER) {
        return None;
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/json");
    let small = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n <= MAX_BODY);
    if !json || !small {
        return None;
    }
    let limit = flash::sold_out_in_memory(&app.shop, sale)?;
    let token = bearer(headers).ok()??;
    identity::cached_actor(&app.shop, &token)?;
    Some(limit)
}

/// The same answer as the handler's, from a body serialized once.
fn answer() -> Response {
    static BODY: OnceLock<Bytes> = OnceLock::new();
    let body = BODY
        .get_or_init(|| Bytes::from(ApiError::from(flash::sold_out()).problem_body()))
        .clone();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::CONFLICT;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}
