//! Checkout, orders (customer, seller and admin views), fulfilment, returns, payments and
//! provider webhooks.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use emporium_domain::Invalid;
use emporium_domain::order::{OrderStatus, ReturnEvent};
use emporium_shop::checkout::{self, CheckoutRequest, CheckoutView};
use emporium_shop::orders::ReturnLine;
use emporium_shop::orders::{self, OrderQuery, OrderSummary, OrderView, ReturnView};
use emporium_shop::payments::{self, PaymentView, WebhookOutcome};
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::api::Items;
use crate::api::identity::AddressRequest;
use crate::error::{ApiResult, Problem};
use crate::extract::{AdminUser, ApiJson, ApiPath, ApiQuery, CurrentUser, SellerUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/checkout", post(checkout_cart))
        .route("/orders", get(my_orders))
        .route("/orders/{id}", get(show))
        .route("/orders/{id}/cancel", post(cancel))
        .route("/orders/{id}/returns", post(request_return))
        .route("/seller/orders", get(seller_orders))
        .route("/seller/orders/{id}/ship", post(ship))
        .route("/seller/orders/{id}/deliver", post(deliver))
        .route("/admin/orders", get(admin_orders))
        .route("/admin/orders/{id}/refunds", post(refund))
        .route("/admin/returns/{id}/{action}", post(decide_return))
        .route("/payments/{id}/confirm", post(confirm))
        .route("/payments/webhooks/{provider}", post(webhook))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethod {
    /// `card`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A gateway token (test gateway: tok_success, tok_decline, tok_insufficient_funds,
    /// tok_requires_action, tok_async, tok_timeout). Never a card number.
    pub token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    pub cart_id: Uuid,
    /// `is_default` is ignored here.
    pub shipping_address: AddressRequest,
    /// A shipping method code; omitted: the cheapest that serves the address.
    pub shipping_method: Option<String>,
    pub payment_method: PaymentMethod,
}

/// Check out a cart: reserve its lines, create the order pending payment, charge the card
/// token. `tok_success` answers `paid`; `tok_requires_action` answers with a confirm step.
#[utoipa::path(post, path = "/api/v1/checkout", tag = "checkout", security(("bearer" = [])), request_body = CheckoutBody,
    responses((status = 201, body = CheckoutView),
              (status = 404, description = "cart_not_found", body = Problem),
              (status = 409, description = "out_of_stock, cart_repriced, cart_changed, cart_not_open, coupon_used_up, shipping_unavailable", body = Problem),
              (status = 422, body = Problem)))]
async fn checkout_cart(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
    ApiJson(req): ApiJson<CheckoutBody>,
) -> ApiResult<(StatusCode, axum::Json<CheckoutView>)> {
    if req.payment_method.kind != "card" {
        return Err(Invalid::new("payment_method.type", "must be card").into());
    }
    let token = req.payment_method.token.trim();
    if token.is_empty()
        || token.len() > 200
        || token.bytes().all(|b| b.is_ascii_digit() || b == b' ')
    {
        return Err(Invalid::new(
            "payment_method.token",
            "send a gateway token, never a card number",
        )
        .into());
    }
    let request = CheckoutRequest {
        cart_id: req.cart_id,
        address: req.shipping_address.parse()?,
        shipping_method: req.shipping_method,
        card_token: token.to_owned(),
    };
    let view = checkout::checkout(&app.shop, &actor, request).await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OrderListQuery {
    pub email: Option<String>,
    pub status: Option<String>,
    pub id: Option<Uuid>,
    /// Orders older than this order id (the last id of the previous page).
    pub before: Option<Uuid>,
    pub limit: Option<i64>,
}

impl OrderListQuery {
    fn parse(self) -> Result<OrderQuery, Invalid> {
        Ok(OrderQuery {
            email: self.email,
            status: self.status.as_deref().map(OrderStatus::parse).transpose()?,
            id: self.id,
            before: self.before,
            limit: self.limit.unwrap_or(20),
        })
    }
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])), params(OrderListQuery),
    responses((status = 200, body = Items<OrderSummary>)))]
async fn my_orders(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
    ApiQuery(q): ApiQuery<OrderListQuery>,
) -> ApiResult<axum::Json<Items<OrderSummary>>> {
    let items = orders::list_own(&app.shop, &actor, q.parse()?).await?;
    Ok(axum::Json(Items { items }))
}

/// An order with lines, fulfilment groups (tracking), payments and returns. Sellers see
/// their part of orders that contain their items.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)), responses((status = 200, body = OrderView), (status = 404, body = Problem)))]
async fn show(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<axum::Json<OrderView>> {
    Ok(axum::Json(orders::get(&app.shop, &actor, id).await?))
}

/// Cancel an order still waiting for payment (its stock is released).
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = OrderView), (status = 404, body = Problem), (status = 409, description = "illegal_transition", body = Problem)))]
async fn cancel(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<axum::Json<OrderView>> {
    Ok(axum::Json(orders::cancel(&app.shop, &actor, id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnBody {
    pub lines: Vec<ReturnLine>,
    pub reason: String,
}

/// Ask to return items of a shipped or delivered order.
#[utoipa::path(post, path = "/api/v1/orders/{id}/returns", tag = "orders", security(("bearer" = [])), request_body = ReturnBody,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 201, body = ReturnView), (status = 404, body = Problem), (status = 409, description = "not_returnable", body = Problem)))]
async fn request_return(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ReturnBody>,
) -> ApiResult<(StatusCode, axum::Json<ReturnView>)> {
    let view = orders::request_return(&app.shop, &actor, id, req.lines, req.reason).await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// Orders that contain the seller's items.
#[utoipa::path(get, path = "/api/v1/seller/orders", tag = "orders", security(("bearer" = [])), params(OrderListQuery),
    responses((status = 200, body = Items<OrderSummary>), (status = 403, body = Problem)))]
async fn seller_orders(
    State(app): State<AppState>,
    SellerUser(actor): SellerUser,
    ApiQuery(q): ApiQuery<OrderListQuery>,
) -> ApiResult<axum::Json<Items<OrderSummary>>> {
    let items = orders::list_for_seller(&app.shop, &actor, q.parse()?).await?;
    Ok(axum::Json(Items { items }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipBody {
    pub carrier: String,
    pub tracking_number: String,
}

/// Ship the seller's fulfilment group of an order.
#[utoipa::path(post, path = "/api/v1/seller/orders/{id}/ship", tag = "orders", security(("bearer" = [])), request_body = ShipBody,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = OrderView), (status = 404, body = Problem), (status = 409, description = "illegal_transition", body = Problem)))]
async fn ship(
    State(app): State<AppState>,
    SellerUser(actor): SellerUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ShipBody>,
) -> ApiResult<axum::Json<OrderView>> {
    Ok(axum::Json(
        orders::update_shipment(
            &app.shop,
            &actor,
            id,
            Some(req.carrier),
            Some(req.tracking_number),
            false,
        )
        .await?,
    ))
}

/// Mark the seller's shipped group delivered.
#[utoipa::path(post, path = "/api/v1/seller/orders/{id}/deliver", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = OrderView), (status = 404, body = Problem), (status = 409, description = "illegal_transition", body = Problem)))]
async fn deliver(
    State(app): State<AppState>,
    SellerUser(actor): SellerUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<axum::Json<OrderView>> {
    Ok(axum::Json(
        orders::update_shipment(&app.shop, &actor, id, None, None, true).await?,
    ))
}

/// All orders, found by id, email or status.
#[utoipa::path(get, path = "/api/v1/admin/orders", tag = "orders", security(("bearer" = [])), params(OrderListQuery),
    responses((status = 200, body = Items<OrderSummary>), (status = 403, body = Problem)))]
async fn admin_orders(
    State(app): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiQuery(q): ApiQuery<OrderListQuery>,
) -> ApiResult<axum::Json<Items<OrderSummary>>> {
    let items = orders::list_all(&app.shop, q.parse()?).await?;
    Ok(axum::Json(Items { items }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Default: everything not yet refunded.
    pub amount_minor: Option<i64>,
    pub reason: String,
}

/// Refund an order's payment, fully or in part.
#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/refunds", tag = "orders", security(("bearer" = [])), request_body = RefundBody,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = PaymentView), (status = 404, body = Problem), (status = 409, description = "not_refundable, refund_failed", body = Problem)))]
async fn refund(
    State(app): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<RefundBody>,
) -> ApiResult<axum::Json<PaymentView>> {
    Ok(axum::Json(
        payments::refund_order(&app.shop, id, req.amount_minor, &req.reason).await?,
    ))
}

/// Move a return on: `approve`, `reject`, `receive` (restocks) or `refund`.
#[utoipa::path(post, path = "/api/v1/admin/returns/{id}/{action}", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid), ("action" = String, Path)),
    responses((status = 200, body = ReturnView), (status = 404, body = Problem), (status = 409, description = "illegal_transition", body = Problem)))]
async fn decide_return(
    State(app): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiPath((id, action)): ApiPath<(Uuid, String)>,
) -> ApiResult<axum::Json<ReturnView>> {
    let event = match action.as_str() {
        "approve" => ReturnEvent::Approve,
        "reject" => ReturnEvent::Reject,
        "receive" => ReturnEvent::Receive,
        "refund" => ReturnEvent::Refund,
        _ => return Err(emporium_shop::ShopError::NotFound("action").into()),
    };
    Ok(axum::Json(
        orders::decide_return(&app.shop, id, event).await?,
    ))
}

/// Complete a payment that required the customer's action (3-D Secure style).
#[utoipa::path(post, path = "/api/v1/payments/{id}/confirm", tag = "checkout", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = PaymentView), (status = 404, body = Problem), (status = 409, description = "payment_not_confirmable", body = Problem)))]
async fn confirm(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<axum::Json<PaymentView>> {
    Ok(axum::Json(payments::confirm(&app.shop, &actor, id).await?))
}

/// A payment provider's webhook, signed with HMAC-SHA256 over `timestamp.body` in
/// `Emporium-Signature: t=...,v1=...`. Applied once per provider event id.
#[utoipa::path(post, path = "/api/v1/payments/webhooks/{provider}", tag = "checkout",
    request_body(content = String, content_type = "application/json", description = "the provider's event"),
    params(("provider" = String, Path), ("Emporium-Signature" = String, Header)),
    responses((status = 200, body = WebhookOutcome), (status = 400, description = "invalid_signature", body = Problem), (status = 404, body = Problem)))]
async fn webhook(
    State(app): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<axum::Json<WebhookOutcome>> {
    let signature = headers
        .get("emporium-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Ok(axum::Json(
        payments::webhook(&app.shop, &provider, signature, &body).await?,
    ))
}
