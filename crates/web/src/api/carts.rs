//! Carts: guest carts (send `X-Cart-Token`) and customer carts (send the bearer token).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, patch, post};
use emporium_domain::catalog::Sku;
use emporium_domain::identity::CountryCode;
use emporium_domain::money::Currency;
use emporium_shop::cart::{self, CartAccess, CartView};
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, CartToken, CurrentUser, MaybeUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/carts", post(create))
        .route("/carts/{id}", axum::routing::get(show))
        .route("/carts/{id}/items", post(add_item))
        .route(
            "/carts/{id}/items/{line_id}",
            patch(update_item).delete(remove_item),
        )
        .route("/carts/{id}/coupons", post(apply_coupon))
        .route("/carts/{id}/coupons/{code}", delete(remove_coupon))
        .route("/carts/{id}/merge", post(merge))
}

fn access(user: &MaybeUser, token: CartToken) -> CartAccess {
    CartAccess {
        user: user.0.as_ref().map(|a| a.user_id),
        token: token.0,
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCart {
    /// One of the shop's enabled currencies (default: the base currency).
    pub currency: Option<String>,
}

/// Create a cart: a customer's when a bearer token is sent, a guest's otherwise. The answer
/// carries the cart token, shown only here.
#[utoipa::path(post, path = "/api/v1/carts", tag = "cart", request_body = CreateCart,
    responses((status = 201, body = CartView), (status = 409, description = "currency_not_enabled", body = Problem)))]
async fn create(
    State(app): State<AppState>,
    user: MaybeUser,
    ApiJson(req): ApiJson<CreateCart>,
) -> ApiResult<(StatusCode, axum::Json<CartView>)> {
    let currency = req.currency.as_deref().map(Currency::parse).transpose()?;
    let view = cart::create(&app.shop, user.0.map(|a| a.user_id), currency).await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CartQuery {
    /// Estimate tax and shipping for this country (default: the shop's home country).
    pub country: Option<String>,
}

/// A cart with its lines and totals; re-priced first when its price lock has ended.
#[utoipa::path(get, path = "/api/v1/carts/{id}", tag = "cart", params(("id" = String, Path, format = Uuid), CartQuery,
    ("X-Cart-Token" = Option<String>, Header, description = "guest carts")),
    responses((status = 200, body = CartView), (status = 404, body = Problem)))]
async fn show(
    State(app): State<AppState>,
    user: MaybeUser,
    token: CartToken,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<CartQuery>,
) -> ApiResult<axum::Json<CartView>> {
    let country = q.country.as_deref().map(CountryCode::parse).transpose()?;
    Ok(axum::Json(
        cart::get(&app.shop, &access(&user, token), id, country).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    pub sku: String,
    /// 1 to 100 per line.
    pub quantity: i64,
}

/// Add units of a SKU (to its line when the cart has one).
#[utoipa::path(post, path = "/api/v1/carts/{id}/items", tag = "cart", request_body = AddItem,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = CartView), (status = 404, description = "cart_not_found, sku_not_found", body = Problem),
              (status = 409, description = "cart_not_open, price_unavailable", body = Problem), (status = 422, body = Problem)))]
async fn add_item(
    State(app): State<AppState>,
    user: MaybeUser,
    token: CartToken,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<AddItem>,
) -> ApiResult<axum::Json<CartView>> {
    let sku = Sku::parse(&req.sku)?;
    Ok(axum::Json(
        cart::add_item(&app.shop, &access(&user, token), id, sku, req.quantity).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateItem {
    pub quantity: i64,
}

/// Change a line's quantity.
#[utoipa::path(patch, path = "/api/v1/carts/{id}/items/{line_id}", tag = "cart", request_body = UpdateItem,
    params(("id" = String, Path, format = Uuid), ("line_id" = String, Path, format = Uuid)),
    responses((status = 200, body = CartView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_item(
    State(app): State<AppState>,
    user: MaybeUser,
    token: CartToken,
    ApiPath((id, line)): ApiPath<(Uuid, Uuid)>,
    ApiJson(req): ApiJson<UpdateItem>,
) -> ApiResult<axum::Json<CartView>> {
    Ok(axum::Json(
        cart::set_quantity(&app.shop, &access(&user, token), id, line, req.quantity).await?,
    ))
}

/// Remove a line.
#[utoipa::path(delete, path = "/api/v1/carts/{id}/items/{line_id}", tag = "cart",
    params(("id" = String, Path, format = Uuid), ("line_id" = String, Path, format = Uuid)),
    responses((status = 200, body = CartView), (status = 404, body = Problem)))]
async fn remove_item(
    State(app): State<AppState>,
    user: MaybeUser,
    token: CartToken,
    ApiPath((id, line)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<axum::Json<CartView>> {
    Ok(axum::Json(
        cart::remove_item(&app.shop, &access(&user, token), id, line).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyCoupon {
    pub code: String,
}

/// Apply a coupon code.
#[utoipa::path(post, path = "/api/v1/carts/{id}/coupons", tag = "cart", request_body = ApplyCoupon,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = CartView), (status = 404, description = "coupon_not_found", body = Problem),
              (status = 409, description = "coupon_not_stackable, coupon_minimum_not_met, coupon_not_valid_now, coupon_used_up", body = Problem)))]
async fn apply_coupon(
    State(app): State<AppState>,
    user: MaybeUser,
    token: CartToken,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ApplyCoupon>,
) -> ApiResult<axum::Json<CartView>> {
    Ok(axum::Json(
        cart::apply_coupon(&app.shop, &access(&user, token), id, &req.code).await?,
    ))
}

/// Remove a coupon code.
#[utoipa::path(delete, path = "/api/v1/carts/{id}/coupons/{code}", tag = "cart",
    params(("id" = String, Path, format = Uuid), ("code" = String, Path)),
    responses((status = 200, body = CartView), (status = 404, body = Problem)))]
async fn remove_coupon(
    State(app): State<AppState>,
    user: MaybeUser,
    token: CartToken,
    ApiPath((id, code)): ApiPath<(Uuid, String)>,
) -> ApiResult<axum::Json<CartView>> {
    Ok(axum::Json(
        cart::remove_coupon(&app.shop, &access(&user, token), id, &code).await?,
    ))
}

/// Merge a guest cart (this id, with its `X-Cart-Token`) into the caller's cart; done
/// after logging in.
#[utoipa::path(post, path = "/api/v1/carts/{id}/merge", tag = "cart", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid), ("X-Cart-Token" = String, Header)),
    responses((status = 200, body = CartView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn merge(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
    CartToken(token): CartToken,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<axum::Json<CartView>> {
    let token = token.unwrap_or_default();
    Ok(axum::Json(
        cart::merge_guest_cart(&app.shop, actor.user_id, id, &token).await?,
    ))
}
