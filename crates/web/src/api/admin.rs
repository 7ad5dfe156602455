//! Admin: accounts, seller approval.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use emporium_domain::identity::Role;
use emporium_domain::ids::UserId;
use emporium_domain::paging::Limit;
use emporium_shop::identity::{self, AccessChange, UserView};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiResult, Problem};
use crate::extract::{AdminUser, ApiPath, ApiQuery};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list_users))
        .route("/admin/users/{id}/approve", post(approve))
        .route("/admin/users/{id}/disable", post(disable))
        .route("/admin/users/{id}/enable", post(enable))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// customer, seller or admin.
    pub role: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    pub next_cursor: Option<String>,
}

/// Accounts, newest first.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])), params(UserQuery),
    responses((status = 200, body = UserPage), (status = 403, body = Problem)))]
async fn list_users(
    State(app): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<axum::Json<UserPage>> {
    let role = q.role.as_deref().map(Role::parse).transpose()?;
    let limit = Limit::parse(q.limit)?;
    let before = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<UserId>().map_err(|_| {
                emporium_domain::Invalid::new("cursor", "is not a cursor this server issued")
            })
        })
        .transpose()?;
    let items = identity::list_users(&app.shop, role, before, limit.get()).await?;
    let next_cursor = (items.len() == limit.get() as usize)
        .then(|| items.last().map(|u| u.id.to_string()))
        .flatten();
    Ok(axum::Json(UserPage { items, next_cursor }))
}

/// Approve a pending seller.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/approve", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = UserView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn approve(
    State(app): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<axum::Json<UserView>> {
    Ok(axum::Json(
        identity::change_access(&app.shop, &admin, id, AccessChange::ApproveSeller).await?,
    ))
}

/// Disable an account: it can no longer log in and its sessions end.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/disable", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = UserView), (status = 404, body = Problem)))]
async fn disable(
    State(app): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<axum::Json<UserView>> {
    Ok(axum::Json(
        identity::change_access(&app.shop, &admin, id, AccessChange::Disable).await?,
    ))
}

/// Enable a disabled account.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/enable", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = UserView), (status = 404, body = Problem)))]
async fn enable(
    State(app): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<axum::Json<UserView>> {
    Ok(axum::Json(
        identity::change_access(&app.shop, &admin, id, AccessChange::Enable).await?,
    ))
}
