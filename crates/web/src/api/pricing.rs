//! Currencies and FX rates, tax rates, shipping methods, coupons, and abandoned carts.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use chrono::{DateTime, Duration, Utc};
use emporium_domain::Invalid;
use emporium_domain::identity::CountryCode;
use emporium_domain::money::Currency;
use emporium_domain::pricing::{CouponValue, FxRate};
use emporium_shop::cart::{self, AbandonedCarts};
use emporium_shop::pricing::{
    self, CouponView, CurrenciesView, FxRateView, NewCoupon, NewShippingMethod, ShippingMethodView,
    TaxRateView,
};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::Items;
use crate::error::{ApiResult, Problem};
use crate::extract::{AdminUser, ApiJson, ApiPath, ApiQuery};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/currencies", get(currencies))
        .route("/shipping-methods", get(shipping_methods))
        .route(
            "/admin/fx-rates/{currency}",
            put(set_fx_rate).delete(remove_fx_rate),
        )
        .route("/admin/tax-rates", get(tax_rates).post(set_tax_rate))
        .route("/admin/shipping-methods", post(set_shipping_method))
        .route("/admin/coupons", get(coupons).post(create_coupon))
        .route("/admin/coupons/batch", post(create_batch))
        .route("/admin/carts/abandoned", get(abandoned))
}

/// The base currency and the currencies a cart may choose, with their rates.
#[utoipa::path(get, path = "/api/v1/currencies", tag = "pricing", responses((status = 200, body = CurrenciesView)))]
async fn currencies(State(app): State<AppState>) -> ApiResult<axum::Json<CurrenciesView>> {
    Ok(axum::Json(pricing::currencies(&app.shop).await?))
}

/// Active shipping methods.
#[utoipa::path(get, path = "/api/v1/shipping-methods", tag = "pricing", responses((status = 200, body = Items<ShippingMethodView>)))]
async fn shipping_methods(
    State(app): State<AppState>,
) -> ApiResult<axum::Json<Items<ShippingMethodView>>> {
    Ok(axum::Json(Items {
        items: pricing::shipping_methods(&app.shop).await?,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FxRateBody {
    /// Units of this currency per unit of the base currency, as a decimal string ("1.1634").
    pub rate: String,
}

/// Set the rate of a currency (enabling it for carts). Carts already holding a lock keep
/// their rate until the lock ends.
#[utoipa::path(put, path = "/api/v1/admin/fx-rates/{currency}", tag = "pricing", security(("bearer" = [])), request_body = FxRateBody,
    params(("currency" = String, Path)), responses((status = 200, body = FxRateView), (status = 422, body = Problem)))]
async fn set_fx_rate(
    State(app): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiPath(currency): ApiPath<String>,
    ApiJson(req): ApiJson<FxRateBody>,
) -> ApiResult<axum::Json<FxRateView>> {
    let currency = Currency::parse(&currency)?;
    let rate = FxRate::parse(&req.rate)?;
    Ok(axum::Json(
        pricing::set_fx_rate(&app.shop, currency, rate).await?,
    ))
}

/// Disable a currency.
#[utoipa::path(delete, path = "/api/v1/admin/fx-rates/{currency}", tag = "pricing", security(("bearer" = [])),
    params(("currency" = String, Path)), responses((status = 204), (status = 404, body = Problem)))]
async fn remove_fx_rate(
    State(app): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiPath(currency): ApiPath<String>,
) -> ApiResult<StatusCode> {
    pricing::remove_fx_rate(&app.shop, Currency::parse(&currency)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tax rates per country and region.
#[utoipa::path(get, path = "/api/v1/admin/tax-rates", tag = "pricing", security(("bearer" = [])),
    responses((status = 200, body = Items<TaxRateView>)))]
async fn tax_rates(
    State(app): State<AppState>,
    AdminUser(_admin): AdminUser,
) -> ApiResult<axum::Json<Items<TaxRateView>>> {
    Ok(axum::Json(Items {
        items: pricing::tax_rates(&app.shop).await?,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxRateBody {
    pub country: String,
    /// A region code within the country; omitted: the whole country.
    pub region: Option<String>,
    pub name: String,
    /// 2000 = 20%.
    pub rate_basis_points: i64,
}

/// Set the tax rate of a country or region.
#[utoipa::path(post, path = "/api/v1/admin/tax-rates", tag = "pricing", security(("bearer" = [])), request_body = TaxRateBody,
    responses((status = 201, body = TaxRateView), (status = 422, body = Problem)))]
async fn set_tax_rate(
    State(app): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiJson(req): ApiJson<TaxRateBody>,
) -> ApiResult<(StatusCode, axum::Json<TaxRateView>)> {
    let country = CountryCode::parse(&req.country)?;
    let view = pricing::set_tax_rate(
        &app.shop,
        country,
        req.region,
        req.name,
        req.rate_basis_points,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingMethodBody {
    pub code: String,
    pub name: String,
    /// ISO country codes, or `["*"]` for everywhere.
    pub countries: Vec<String>,
    pub rate_minor: i64,
    pub currency: String,
    pub free_over_minor: Option<i64>,
}

/// Create or replace a shipping method (by code).
#[utoipa::path(post, path = "/api/v1/admin/shipping-methods", tag = "pricing", security(("bearer" = [])), request_body = ShippingMethodBody,
    responses((status = 201, body = ShippingMethodView), (status = 422, body = Problem)))]
async fn set_shipping_method(
    State(app): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiJson(req): ApiJson<ShippingMethodBody>,
) -> ApiResult<(StatusCode, axum::Json<ShippingMethodView>)> {
    let method = NewShippingMethod {
        code: req.code,
        name: req.name,
        countries: req.countries,
        rate_minor: req.rate_minor,
        currency: Currency::parse(&req.currency)?,
        free_over_minor: req.free_over_minor,
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(pricing::set_shipping_method(&app.shop, method).await?),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponBody {
    /// The code (for a batch: the prefix of the generated codes).
    pub code: String,
    /// `percent` (amount in basis points, 1000 = 10%) or `fixed` (minor units of `currency`).
    pub kind: String,
    pub amount: i64,
    pub currency: Option<String>,
    #[serde(default)]
    pub min_subtotal_minor: i64,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub usage_limit: Option<i64>,
    pub per_customer_limit: Option<i64>,
    #[serde(default)]
    pub stackable: bool,
    /// Batches only: how many one-time codes to generate.
    pub count: Option<usize>,
}

impl CouponBody {
    fn parse(&self) -> Result<NewCoupon, Invalid> {
        let value = match self.kind.as_str() {
            "percent" => CouponValue::Percent(self.amount),
            "fixed" => CouponValue::Fixed(self.amount),
            _ => return Err(Invalid::new("kind", "must be percent or fixed")),
        };
        Ok(NewCoupon {
            code: self.code.clone(),
            value,
            currency: self.currency.as_deref().map(Currency::parse).transpose()?,
            min_subtotal_minor: self.min_subtotal_minor,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            usage_limit: self.usage_limit,
            per_customer_limit: self.per_customer_limit,
            stackable: self.stackable,
        })
    }
}

/// Create a coupon code.
#[utoipa::path(post, path = "/api/v1/admin/coupons", tag = "pricing", security(("bearer" = [])), request_body = CouponBody,
    responses((status = 201, body = CouponView), (status = 409, description = "coupon_code_taken", body = Problem), (status = 422, body = Problem)))]
async fn create_coupon(
    State(app): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiJson(req): ApiJson<CouponBody>,
) -> ApiResult<(StatusCode, axum::Json<CouponView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(pricing::create_coupon(&app.shop, req.parse()?).await?),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchView {
    pub codes: Vec<String>,
}

/// Generate one-time codes (`PREFIX-XXXXXXXXXX`), each redeemable once.
#[utoipa::path(post, path = "/api/v1/admin/coupons/batch", tag = "pricing", security(("bearer" = [])), request_body = CouponBody,
    responses((status = 201, body = BatchView), (status = 422, body = Problem)))]
async fn create_batch(
    State(app): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiJson(req): ApiJson<CouponBody>,
) -> ApiResult<(StatusCode, axum::Json<BatchView>)> {
    let count = req.count.unwrap_or(0);
    let codes = pricing::create_batch(&app.shop, req.parse()?, count).await?;
    Ok((StatusCode::CREATED, axum::Json(BatchView { codes })))
}

/// Coupons, newest first.
#[utoipa::path(get, path = "/api/v1/admin/coupons", tag = "pricing", security(("bearer" = [])),
    responses((status = 200, body = Items<CouponView>)))]
async fn coupons(
    State(app): State<AppState>,
    AdminUser(_admin): AdminUser,
) -> ApiResult<axum::Json<Items<CouponView>>> {
    Ok(axum::Json(Items {
        items: pricing::coupons(&app.shop).await?,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AbandonedQuery {
    /// Carts untouched for at least this long (default 60).
    pub idle_minutes: Option<i64>,
}

/// Abandoned carts: open carts with items, untouched for a while; count and value.
#[utoipa::path(get, path = "/api/v1/admin/carts/abandoned", tag = "pricing", security(("bearer" = [])), params(AbandonedQuery),
    responses((status = 200, body = AbandonedCarts)))]
async fn abandoned(
    State(app): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiQuery(q): ApiQuery<AbandonedQuery>,
) -> ApiResult<axum::Json<AbandonedCarts>> {
    let minutes = q.idle_minutes.unwrap_or(60);
    if !(0..=525_600).contains(&minutes) {
        return Err(Invalid::new("idle_minutes", "must be between 0 and 525600").into());
    }
    Ok(axum::Json(
        cart::abandoned(&app.shop, Duration::minutes(minutes)).await?,
    ))
}
