//! The flood after a sell-out, answered before routing.
//!
//! Once a flash sale sells out, most requests a node gets are shoppers retrying it. The
//! engine already answers them from memory; this layer answers them before the router, the
//! idempotency layer and the extractors run, with a problem body serialized once. It answers
//! only when the full path would give the same answer:
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

use crate::AppState;
use crate::error::ApiError;
use crate::extract::bearer;
use crate::idempotency::KEY_HEADER;

/// The largest body looked at here; `{"quantity":1000000}` is 20 bytes.
const MAX_BODY: usize = 64;

/// The one body shape answered here (the handler's `FlashReserveRequest`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reserve {
    quantity: i64,
}

pub async fn middleware(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Some(limit) = candidate(&app, &parts) else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    // The length was checked: only a broken connection fails here, as it would in the
    // handler's extractor.
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "the body could not be read",
            )
            .into_response();
        }
    };
    let accepted = serde_json::from_slice::<Reserve>(&bytes)
        .is_ok_and(|r| (1..=limit.min(flash::MAX_QUANTITY)).contains(&r.quantity));
    if !accepted {
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    }
    app.shop
        .engine
        .memory
        .memory_answers
        .fetch_add(1, Ordering::Relaxed);
    answer()
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
