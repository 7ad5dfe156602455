//! Stock: levels per location, receive, adjust, transfer.

use axum::Router;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
