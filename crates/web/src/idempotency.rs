//! The `Idempotency-Key` middleware of every mutating route (POST, PUT, PATCH, DELETE).
//!
//! A request without the header passes untouched. With it: the key is parsed (400
//! `invalid_idempotency_key`), the caller's scope resolved (the user of the bearer token,
//! anonymous without one; an invalid token is a 401), the body buffered (within the body
//! limit) and the key claimed in the database. Then:
//!
//! - the key is new: the handler runs, and its answer is stored for 24 hours — unless it is
//!   a 5xx or a 429 (a transient failure: the claim is dropped so a retry runs again) or the
//!   handler marked it [`DoNotStore`] (it carries a secret, such as a session token);
//! - the key finished with the same method, path and body: the stored answer is replayed
//!   with `Idempotent-Replayed: true`;
//! - the key names another request: 422 `idempotency_key_reused`;
//! - the same request still runs: 409 `idempotency_key_in_flight` with `Retry-After: 1`.
//!
//! If the request is dropped before the handler answers (client gone, timeout, panic), the
//! claim is dropped too: the handler's transaction rolls back with it. (A reservation already
//! queued in the engine may still be granted; a retry then meets `already_reserved`, which
//! names it.) Once the handler has answered, its answer is stored by a task of its own, so a
//! disconnect cannot lose it.

use axum::body::Body;
use axum::extract::{FromRequest, OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use emporium_domain::idempotency::IdempotencyKey;
use emporium_shop::idempotency::{self, Claim, Scope, StoredResponse, Ticket};
use emporium_shop::{Shop, ShopError, identity};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{bearer, body_rejection};

pub const KEY_HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Put in a response's extensions (`axum::Extension(DoNotStore)`) when the response must not
/// be stored for replay, e.g. because it carries a fresh session token. The claim is dropped
/// instead, so a retry with the same key runs the request again.
#[derive(Debug, Clone, Copy)]
pub struct DoNotStore;

/// The headers of a response that a replay repeats.
const KEPT_HEADERS: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::CONTENT_LANGUAGE,
    header::ETAG,
    header::WWW_AUTHENTICATE,
];

pub async fn middleware(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let mutating = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !mutating || !request.headers().contains_key(KEY_HEADER) {
        return next.run(request).await;
    }
    // Boxed: the keyed path's future is large, and every request (keyed or not) would
    // otherwise carry and move it through the middleware stack.
    Box::pin(keyed(app, request, next))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn keyed(app: AppState, request: Request, next: Next) -> Result<Response, ApiError> {
    let key = parse_key(request.headers())?;
    let scope = scope(&app.shop, request.headers()).await?;
    let (parts, body) = request.into_parts();
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), &())
        .await
        .map_err(body_rejection)?;
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |o| &o.0);
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let described = idempotency::Request {
        method: parts.method.as_str(),
        path,
        body: &bytes,
    };
    // Armed before the claim is written: a request dropped during the write still drops it.
    let mut guard = ClaimGuard {
        shop: app.shop.clone(),
        ticket: Ticket::new(scope, key),
        armed: true,
    };
    let claim = idempotency::claim(&app.shop, &guard.ticket, described).await?;
    if !matches!(claim, Claim::Acquired) {
        guard.disarm();
    }
    match claim {
        Claim::Acquired => {
            let request = Request::from_parts(parts, Body::from(bytes));
            run(guard, request, next).await
        }
        Claim::Replay(stored) => replay(stored),
        Claim::InFlight => {
            let mut err = ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_flight",
                "a request with this Idempotency-Key is still running; retry shortly",
            );
            err.retry_after_secs = Some(1);
            Err(err)
        }
        Claim::Mismatch => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request (method, path or body)",
        )),
    }
}

fn parse_key(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    let invalid = |detail: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            format!("Idempotency-Key {detail}"),
        )
    };
    let mut values = headers.get_all(KEY_HEADER).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(invalid("must be sent once"));
    };
    let raw = value
        .to_str()
        .map_err(|_| invalid("must be printable ASCII"))?;
    IdempotencyKey::parse(raw).map_err(|e| invalid(&e.message))
}

/// The user of the bearer token, or anonymous when none was sent. A token that was sent
/// but is not valid is refused here (401, not stored), as the handler would refuse it: a
/// keyed request never runs under a scope other than its caller's.
async fn scope(shop: &Shop, headers: &HeaderMap) -> Result<Scope, ApiError> {
    match bearer(headers)? {
        None => Ok(Scope::Anonymous),
        Some(token) => {
            let actor = identity::authenticate(shop, &token).await?;
            Ok(Scope::User(actor.user_id))
        }
    }
}

/// Runs the handler under the claim, then stores or drops the claim.
async fn run(mut guard: ClaimGuard, request: Request, next: Next) -> Result<Response, ApiError> {
    let shop = guard.shop.clone();
    let response = next.run(request).await;
    let ticket = guard.disarm();
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let keep = status.as_u16() < 500
        && status != StatusCode::TOO_MANY_REQUESTS
        && parts.extensions.get::<DoNotStore>().is_none();
    let headers = kept_headers(&parts.headers);
    // From here the handler's effect is done: finish in a task of its own, so a request
    // dropped now (a client gone) still stores its answer.
    let finish = tokio::spawn(async move {
        let bytes = axum::body::to_bytes(body, usize::MAX).await;
        let outcome = match (&bytes, keep) {
            (Ok(body), true) => {
                let stored = StoredResponse {
                    status: i32::from(status.as_u16()),
                    headers,
                    body: body.to_vec(),
                };
                idempotency::complete(&shop, &ticket, &stored).await
            }
            _ => idempotency::abandon(&shop, &ticket).await,
        };
        if let Err(e) = outcome {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not finish an idempotency claim"
            );
        }
        bytes
    });
    let bytes = finish
        .await
        .map_err(ShopError::internal)?
        .map_err(ShopError::internal)?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect()
}

fn replay(stored: StoredResponse) -> Result<Response, ApiError> {
    let status = u16::try_from(stored.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| {
            ShopError::internal(std::io::Error::other(format!(
                "stored idempotent response has status {}",
                stored.status
            )))
        })?;
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.insert(name, value);
        }
    }
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    metrics::counter!("idempotent_replays_total").increment(1);
    Ok(response)
}

/// Drops the claim when the request is dropped (or panics) before the handler answered.
struct ClaimGuard {
    shop: Shop,
    ticket: Ticket,
    armed: bool,
}

impl ClaimGuard {
    fn disarm(&mut self) -> Ticket {
        self.armed = false;
        self.ticket.clone()
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (shop, ticket) = (self.shop.clone(), self.ticket.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = idempotency::abandon(&shop, &ticket).await {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "could not drop an idempotency claim"
                    );
                }
            });
        }
    }
}
