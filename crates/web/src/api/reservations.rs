//! Reservations and flash sales.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{DateTime, Duration, Utc};
use emporium_domain::Invalid;
use emporium_domain::catalog::Sku;
use emporium_shop::inventory::flash::{self, FlashSaleView, NewFlashSale};
use emporium_shop::inventory::reservations::{self, ReservationView};
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, Problem};
use crate::extract::{AdminUser, ApiJson, ApiPath, CurrentUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reservations", post(create))
        .route("/reservations/{id}", get(show).delete(release))
        .route("/reservations/{id}/extend", post(extend))
        .route("/admin/flash-sales", post(create_sale))
        .route("/flash-sales/{id}", get(sale_status))
        .route("/flash-sales/{id}/reserve", post(reserve_sale))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    pub sku: String,
    pub quantity: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservationRequest {
    pub lines: Vec<LineRequest>,
    /// How long to hold the units (default 900, at most 7200).
    pub ttl_seconds: Option<i64>,
}

fn ttl(seconds: Option<i64>) -> Result<Option<Duration>, Invalid> {
    match seconds {
        None => Ok(None),
        Some(s) if (1..=reservations::MAX_TTL.num_seconds()).contains(&s) => {
            Ok(Some(Duration::seconds(s)))
        }
        Some(_) => Err(Invalid::new(
            "ttl_seconds",
            format!(
                "must be between 1 and {}",
                reservations::MAX_TTL.num_seconds()
            ),
        )),
    }
}

/// Reserve units of several SKUs, all or nothing.
#[utoipa::path(post, path = "/api/v1/reservations", tag = "inventory", security(("bearer" = [])), request_body = ReservationRequest,
    responses((status = 201, body = ReservationView),
              (status = 409, description = "out_of_stock (with sku and available), already_reserved (with reservation_id)", body = Problem),
              (status = 429, description = "overloaded, with Retry-After", body = Problem)))]
async fn create(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
    ApiJson(req): ApiJson<ReservationRequest>,
) -> ApiResult<(StatusCode, axum::Json<ReservationView>)> {
    let lines = req
        .lines
        .iter()
        .map(|l| Ok((Sku::parse(&l.sku)?, l.quantity)))
        .collect::<Result<Vec<_>, Invalid>>()?;
    let view =
        reservations::reserve(&app.shop, actor.user_id, lines, ttl(req.ttl_seconds)?).await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// One of the caller's reservations.
#[utoipa::path(get, path = "/api/v1/reservations/{id}", tag = "inventory", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)), responses((status = 200, body = ReservationView), (status = 404, body = Problem)))]
async fn show(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<axum::Json<ReservationView>> {
    Ok(axum::Json(
        reservations::get(&app.shop, actor.user_id, id).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    pub ttl_seconds: Option<i64>,
}

/// Hold the units longer: the new deadline is now plus the time to live.
#[utoipa::path(post, path = "/api/v1/reservations/{id}/extend", tag = "inventory", security(("bearer" = [])), request_body = ExtendRequest,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = ReservationView), (status = 404, body = Problem), (status = 409, description = "reservation_not_active", body = Problem)))]
async fn extend(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ExtendRequest>,
) -> ApiResult<axum::Json<ReservationView>> {
    let ttl = ttl(req.ttl_seconds)?.unwrap_or(reservations::DEFAULT_TTL);
    Ok(axum::Json(
        reservations::extend(&app.shop, actor.user_id, id, ttl).await?,
    ))
}

/// Release the units now.
#[utoipa::path(delete, path = "/api/v1/reservations/{id}", tag = "inventory", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = ReservationView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn release(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<axum::Json<ReservationView>> {
    Ok(axum::Json(
        reservations::release(&app.shop, actor.user_id, id).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlashSaleRequest {
    pub sku: String,
    /// The sale price in minor units.
    pub price: i64,
    pub currency: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Units taken from available stock and earmarked for the sale.
    pub quantity: i64,
    pub per_customer_limit: i64,
}

/// Create a flash sale (admin).
#[utoipa::path(post, path = "/api/v1/admin/flash-sales", tag = "inventory", security(("bearer" = [])), request_body = FlashSaleRequest,
    responses((status = 201, body = FlashSaleView), (status = 409, description = "insufficient_stock", body = Problem), (status = 422, body = Problem)))]
async fn create_sale(
    State(app): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(req): ApiJson<FlashSaleRequest>,
) -> ApiResult<(StatusCode, axum::Json<FlashSaleView>)> {
    let sku = Sku::parse(&req.sku)?;
    if req.ends_at <= req.starts_at {
        return Err(Invalid::new("ends_at", "must be after starts_at").into());
    }
    if !(1..=1_000_000_000).contains(&req.quantity) {
        return Err(Invalid::new("quantity", "must be between 1 and 1000000000").into());
    }
    if !(1..=req.quantity).contains(&req.per_customer_limit) {
        return Err(
            Invalid::new("per_customer_limit", "must be between 1 and the quantity").into(),
        );
    }
    let variant = emporium_shop::inventory::stock_variant(&app.shop, &sku).await?;
    let new = NewFlashSale {
        variant,
        price: flash::price(req.price, &req.currency)?,
        starts_at: req.starts_at,
        ends_at: req.ends_at,
        quantity: req.quantity,
        per_customer_limit: req.per_customer_limit,
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(flash::create(&app.shop, &admin, sku.as_str(), new).await?),
    ))
}

/// A flash sale's status and remaining units (may lag by up to 100 ms).
#[utoipa::path(get, path = "/api/v1/flash-sales/{id}", tag = "inventory",
    params(("id" = String, Path, format = Uuid)), responses((status = 200, body = FlashSaleView), (status = 404, body = Problem)))]
async fn sale_status(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<axum::Json<FlashSaleView>> {
    Ok(axum::Json(flash::status(&app.shop, id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlashReserveRequest {
    pub quantity: i64,
}

/// Reserve units of a flash sale at the sale price.
#[utoipa::path(post, path = "/api/v1/flash-sales/{id}/reserve", tag = "inventory", security(("bearer" = [])), request_body = FlashReserveRequest,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 201, body = ReservationView),
              (status = 409, description = "sold_out, sale_not_started, sale_ended, purchase_limit_exceeded, already_reserved", body = Problem),
              (status = 429, description = "overloaded, with Retry-After", body = Problem)))]
async fn reserve_sale(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<FlashReserveRequest>,
) -> ApiResult<(StatusCode, axum::Json<ReservationView>)> {
    let view = flash::reserve(&app.shop, actor.user_id, id, req.quantity).await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}
