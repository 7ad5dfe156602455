//! Accounts: register, login, logout, me, and the caller's addresses.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Extension, Router};
use emporium_domain::identity::{Email, Password, PersonName, PostalAddress, RawAddress};
use emporium_domain::ids::AddressId;
use emporium_shop::identity::{self, AddressView, LoginResult, Registration, UserView};
use serde::Deserialize;

use super::Items;
use crate::AppState;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ClientAddr, CurrentUser};
use crate::idempotency::DoNotStore;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/me", get(me))
        .route("/me/addresses", get(list_addresses).post(create_address))
        .route(
            "/me/addresses/{id}",
            put(replace_address).delete(delete_address),
        )
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    /// At least 10 characters.
    pub password: String,
    pub name: String,
    /// `customer` (default) or `seller`; a seller account waits for an admin's approval.
    pub account_type: Option<String>,
}

/// Create an account.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "identity", request_body = RegisterRequest,
    responses((status = 201, body = UserView), (status = 409, description = "email_taken", body = Problem),
              (status = 422, description = "validation_failed", body = Problem)))]
async fn register(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, axum::Json<UserView>)> {
    let registration = Registration {
        email: Email::parse(&req.email)?,
        password: Password::parse(req.password)?,
        name: PersonName::parse(&req.name)?,
        role: identity::registration_role(req.account_type.as_deref())?,
    };
    let user = identity::register(&app.shop, registration).await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// A guest cart to merge into the customer's cart.
    pub guest_cart_id: Option<uuid::Uuid>,
    /// The guest cart's token.
    pub guest_cart_token: Option<String>,
}

/// Log in: returns a bearer token. The token is never stored for an idempotent replay: a
/// retry with the same `Idempotency-Key` logs in again (a second session is harmless).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "identity", request_body = LoginRequest,
    responses((status = 200, body = LoginResult), (status = 401, description = "invalid_credentials", body = Problem),
              (status = 429, description = "too_many_attempts, with Retry-After", body = Problem)))]
async fn login(
    State(app): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<(Extension<DoNotStore>, axum::Json<LoginResult>)> {
    if req.password.len() > 1024 || req.email.len() > 1024 {
        return Err(emporium_shop::ShopError::Unauthenticated(
            "invalid_credentials",
            "email or password is wrong",
        )
        .into());
    }
    let session = emporium_shop::cart::login_with_guest_cart(
        &app.shop,
        &req.email,
        &req.password,
        addr,
        req.guest_cart_id.zip(req.guest_cart_token),
    )
    .await?;
    Ok((Extension(DoNotStore), axum::Json(session)))
}

/// Log out: revokes the session of the token.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "identity", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem)))]
async fn logout(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
) -> ApiResult<StatusCode> {
    identity::logout(&app.shop, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's account.
#[utoipa::path(get, path = "/api/v1/me", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = Problem)))]
async fn me(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
) -> ApiResult<axum::Json<UserView>> {
    Ok(axum::Json(identity::me(&app.shop, &actor).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressRequest {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. GB.
    pub country: String,
    pub phone: Option<String>,
    /// Make this the default address (the first address always is).
    #[serde(default)]
    pub is_default: bool,
}

impl AddressRequest {
    pub(crate) fn parse(&self) -> Result<PostalAddress, emporium_domain::Invalid> {
        PostalAddress::parse(RawAddress {
            name: &self.name,
            line1: &self.line1,
            line2: self.line2.as_deref(),
            city: &self.city,
            region: self.region.as_deref(),
            postal_code: &self.postal_code,
            country: &self.country,
            phone: self.phone.as_deref(),
        })
    }
}

/// The caller's addresses.
#[utoipa::path(get, path = "/api/v1/me/addresses", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = Items<AddressView>), (status = 401, body = Problem)))]
async fn list_addresses(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
) -> ApiResult<axum::Json<Items<AddressView>>> {
    Ok(axum::Json(Items {
        items: identity::list_addresses(&app.shop, &actor).await?,
    }))
}

/// Add an address.
#[utoipa::path(post, path = "/api/v1/me/addresses", tag = "identity", security(("bearer" = [])), request_body = AddressRequest,
    responses((status = 201, body = AddressView), (status = 422, body = Problem)))]
async fn create_address(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
    ApiJson(req): ApiJson<AddressRequest>,
) -> ApiResult<(StatusCode, axum::Json<AddressView>)> {
    let address =
        identity::save_address(&app.shop, &actor, None, req.parse()?, req.is_default).await?;
    Ok((StatusCode::CREATED, axum::Json(address)))
}

/// Replace an address.
#[utoipa::path(put, path = "/api/v1/me/addresses/{id}", tag = "identity", security(("bearer" = [])), request_body = AddressRequest,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = AddressView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn replace_address(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
    ApiPath(id): ApiPath<AddressId>,
    ApiJson(req): ApiJson<AddressRequest>,
) -> ApiResult<axum::Json<AddressView>> {
    let address =
        identity::save_address(&app.shop, &actor, Some(id), req.parse()?, req.is_default).await?;
    Ok(axum::Json(address))
}

/// Delete an address; another one becomes the default if needed.
#[utoipa::path(delete, path = "/api/v1/me/addresses/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn delete_address(
    State(app): State<AppState>,
    CurrentUser(actor): CurrentUser,
    ApiPath(id): ApiPath<AddressId>,
) -> ApiResult<StatusCode> {
    identity::delete_address(&app.shop, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
