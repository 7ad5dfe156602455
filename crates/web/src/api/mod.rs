//! The JSON API, one module per business component. Each exports `router()`.

pub mod admin;
pub mod carts;
pub mod catalog;
pub mod identity;
pub mod orders;
pub mod pricing;
pub mod reservations;
pub mod search;
pub mod stock;

use axum::Router;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(identity::router())
        .merge(catalog::router())
        .merge(admin::router())
        .merge(stock::router())
        .merge(reservations::router())
        .merge(carts::router())
        .merge(orders::router())
        .merge(pricing::router())
        .merge(search::router())
}

/// A list of items.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}
