//! Stock: locations, levels per location, receive, adjust, transfer, low-stock thresholds and
//! the movement ledger. Sellers manage their own SKUs, admins any; only admins add locations.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use emporium_domain::Invalid;
use emporium_domain::catalog::Sku;
use emporium_domain::identity::text;
use emporium_domain::paging::{Cursor, Limit};
use emporium_domain::stock::{Adjustment, LocationCode, Quantity, Reason, Threshold};
use emporium_shop::inventory::stock::{
    self, Correction, LocationView, MovementPage, NewLocation, Receipt, StockView, Transfer,
};
use serde::Deserialize;

use super::Items;
use crate::AppState;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AdminUser, ApiJson, ApiPath, ApiQuery, SellerUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/stock/locations",
            get(list_locations).post(create_location),
        )
        .route("/stock/{sku}", get(get_stock))
        .route("/stock/{sku}/movements", get(list_movements))
        .route("/stock/{sku}/receive", post(receive))
        .route("/stock/{sku}/adjust", post(adjust))
        .route("/stock/{sku}/transfer", post(transfer))
        .route("/stock/{sku}/threshold", put(put_threshold))
}

/// A SKU from the path. A code that cannot be a SKU names no SKU: 404, like an unknown one.
fn sku(raw: &str) -> Result<Sku, ApiError> {
    Sku::parse(raw).map_err(|_| ApiError::not_found("sku"))
}

fn reason(raw: Option<&str>) -> Result<Option<Reason>, Invalid> {
    raw.map(Reason::parse).transpose()
}

fn location(field: &str, raw: Option<&str>) -> Result<Option<LocationCode>, Invalid> {
    raw.map(|c| LocationCode::parse(field, c)).transpose()
}

/// Stock locations (sellers and admins).
#[utoipa::path(get, path = "/api/v1/stock/locations", tag = "stock", security(("bearer" = [])),
    responses((status = 200, body = Items<LocationView>), (status = 403, body = Problem)))]
async fn list_locations(
    State(app): State<AppState>,
    SellerUser(_seller): SellerUser,
) -> ApiResult<axum::Json<Items<LocationView>>> {
    Ok(axum::Json(Items {
        items: stock::list_locations(&app.shop).await?,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationRequest {
    /// 1-32 letters, digits, '-' or '_'; stored lower case.
    pub code: String,
    pub name: String,
}

/// Add a stock location (admin).
#[utoipa::path(post, path = "/api/v1/stock/locations", tag = "stock", security(("bearer" = [])), request_body = LocationRequest,
    responses((status = 201, body = LocationView), (status = 403, body = Problem),
              (status = 409, description = "location_code_taken", body = Problem), (status = 422, body = Problem)))]
async fn create_location(
    State(app): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(req): ApiJson<LocationRequest>,
) -> ApiResult<(StatusCode, axum::Json<LocationView>)> {
    let new = NewLocation {
        code: LocationCode::parse("code", &req.code)?,
        name: text("name", &req.name, 1, 120)?,
    };
    let view = stock::create_location(&app.shop, &admin, new).await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// The stock of a SKU, in total and per location (its seller or an admin).
#[utoipa::path(get, path = "/api/v1/stock/{sku}", tag = "stock", security(("bearer" = [])),
    params(("sku" = String, Path, description = "SKU code, case-insensitive")),
    responses((status = 200, body = StockView), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_stock(
    State(app): State<AppState>,
    SellerUser(seller): SellerUser,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<axum::Json<StockView>> {
    let sku = sku(&raw)?;
    Ok(axum::Json(stock::stock_of(&app.shop, &seller, &sku).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MovementQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<i64>,
}

/// The ledger of a SKU, newest first: who changed its stock, when, where, by how much, why.
#[utoipa::path(get, path = "/api/v1/stock/{sku}/movements", tag = "stock", security(("bearer" = [])),
    params(("sku" = String, Path, description = "SKU code, case-insensitive"), MovementQuery),
    responses((status = 200, body = MovementPage), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_movements(
    State(app): State<AppState>,
    SellerUser(seller): SellerUser,
    ApiPath(raw): ApiPath<String>,
    ApiQuery(q): ApiQuery<MovementQuery>,
) -> ApiResult<axum::Json<MovementPage>> {
    let sku = sku(&raw)?;
    let cursor = q.cursor.as_deref().map(Cursor::decode).transpose()?;
    let limit = Limit::parse(q.limit)?;
    let page = stock::movements(&app.shop, &seller, &sku, cursor, limit).await?;
    Ok(axum::Json(page))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveRequest {
    /// Units that arrived: 1 to 1000000000.
    pub quantity: i64,
    /// A location code; the main location when absent.
    pub location: Option<String>,
    pub reason: Option<String>,
}

/// Record goods arriving at a location.
#[utoipa::path(post, path = "/api/v1/stock/{sku}/receive", tag = "stock", security(("bearer" = [])), request_body = ReceiveRequest,
    params(("sku" = String, Path, description = "SKU code, case-insensitive")),
    responses((status = 200, body = StockView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn receive(
    State(app): State<AppState>,
    SellerUser(seller): SellerUser,
    ApiPath(raw): ApiPath<String>,
    ApiJson(req): ApiJson<ReceiveRequest>,
) -> ApiResult<axum::Json<StockView>> {
    let sku = sku(&raw)?;
    let receipt = Receipt {
        quantity: Quantity::parse("quantity", req.quantity)?,
        location: location("location", req.location.as_deref())?,
        reason: reason(req.reason.as_deref())?,
    };
    Ok(axum::Json(
        stock::receive(&app.shop, &seller, &sku, receipt).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustRequest {
    /// Units to add (positive) or remove (negative), non-zero, at most 1000000000 either way.
    pub quantity: i64,
    /// A location code; the main location when absent.
    pub location: Option<String>,
    /// Why: a count, damage, loss.
    pub reason: String,
}

/// Correct the on-hand units of a SKU at a location. Reserved units cannot be removed.
#[utoipa::path(post, path = "/api/v1/stock/{sku}/adjust", tag = "stock", security(("bearer" = [])), request_body = AdjustRequest,
    params(("sku" = String, Path, description = "SKU code, case-insensitive")),
    responses((status = 200, body = StockView), (status = 404, body = Problem),
              (status = 409, description = "insufficient_stock", body = Problem), (status = 422, body = Problem)))]
async fn adjust(
    State(app): State<AppState>,
    SellerUser(seller): SellerUser,
    ApiPath(raw): ApiPath<String>,
    ApiJson(req): ApiJson<AdjustRequest>,
) -> ApiResult<axum::Json<StockView>> {
    let sku = sku(&raw)?;
    let correction = Correction {
        delta: Adjustment::parse("quantity", req.quantity)?,
        location: location("location", req.location.as_deref())?,
        reason: Reason::parse(&req.reason)?,
    };
    Ok(axum::Json(
        stock::adjust(&app.shop, &seller, &sku, correction).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// Units to move: 1 to 1000000000, at most what is available (not reserved) at `from`.
    pub quantity: i64,
    /// The code of the location the units leave.
    pub from: String,
    /// The code of the location the units arrive at.
    pub to: String,
    pub reason: Option<String>,
}

/// Move units of a SKU between two locations.
#[utoipa::path(post, path = "/api/v1/stock/{sku}/transfer", tag = "stock", security(("bearer" = [])), request_body = TransferRequest,
    params(("sku" = String, Path, description = "SKU code, case-insensitive")),
    responses((status = 200, body = StockView), (status = 404, body = Problem),
              (status = 409, description = "insufficient_stock", body = Problem), (status = 422, body = Problem)))]
async fn transfer(
    State(app): State<AppState>,
    SellerUser(seller): SellerUser,
    ApiPath(raw): ApiPath<String>,
    ApiJson(req): ApiJson<TransferRequest>,
) -> ApiResult<axum::Json<StockView>> {
    let sku = sku(&raw)?;
    let t = Transfer {
        quantity: Quantity::parse("quantity", req.quantity)?,
        from: LocationCode::parse("from", &req.from)?,
        to: LocationCode::parse("to", &req.to)?,
        reason: reason(req.reason.as_deref())?,
    };
    Ok(axum::Json(
        stock::transfer(&app.shop, &seller, &sku, t).await?,
    ))
}

/// A low-stock threshold.
// Parsed from an object only: serde would otherwise also take `[n, ...]` and report the
// extra elements as malformed JSON rather than as a body of the wrong shape.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(
    try_from = "serde_json::Map<String, serde_json::Value>",
    deny_unknown_fields
)]
pub struct ThresholdRequest {
    /// 0 to 1000000000, or null to never report low stock.
    #[schema(required = true)]
    pub low_stock_threshold: Option<i64>,
}

impl TryFrom<serde_json::Map<String, serde_json::Value>> for ThresholdRequest {
    type Error = serde_json::Error;

    fn try_from(map: serde_json::Map<String, serde_json::Value>) -> Result<Self, Self::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields {
            // Present but possibly null: a missing field is an error, not a silent clear.
            #[serde(deserialize_with = "Option::deserialize")]
            low_stock_threshold: Option<i64>,
        }
        let fields: Fields = serde_json::from_value(serde_json::Value::Object(map))?;
        Ok(Self {
            low_stock_threshold: fields.low_stock_threshold,
        })
    }
}

/// Set or clear the low-stock threshold of a SKU. Running low writes `inventory.low_stock`.
#[utoipa::path(put, path = "/api/v1/stock/{sku}/threshold", tag = "stock", security(("bearer" = [])), request_body = ThresholdRequest,
    params(("sku" = String, Path, description = "SKU code, case-insensitive")),
    responses((status = 200, body = StockView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn put_threshold(
    State(app): State<AppState>,
    SellerUser(seller): SellerUser,
    ApiPath(raw): ApiPath<String>,
    ApiJson(req): ApiJson<ThresholdRequest>,
) -> ApiResult<axum::Json<StockView>> {
    let sku = sku(&raw)?;
    let threshold = req.low_stock_threshold.map(Threshold::parse).transpose()?;
    Ok(axum::Json(
        stock::set_threshold(&app.shop, &seller, &sku, threshold).await?,
    ))
}
