//! The API's one error type and the error policy of the whole service.
//!
//! - `domain`: [`emporium_domain::Invalid`] — input broke a rule.
//! - `store`: `StoreError` — database failures; named constraint violations are mapped to
//!   conflicts by `shop` (one helper, `impl From<StoreError> for ShopError`).
//! - `shop`: [`ShopError`] — what an operation can answer.
//! - `web`: [`ApiError`] — every failure a client sees, as an RFC 9457
//!   `application/problem+json` body with a stable snake_case `code`. Extractor rejections
//!   (bad JSON, wrong types, oversized bodies, bad paths or queries) become `ApiError`s in
//!   `extract`. Internal errors are logged with their full cause chain and answered with an
//!   opaque 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use emporium_domain::Invalid;
use emporium_shop::ShopError;
use serde::Serialize;

/// The problem document (RFC 9457) with Emporium's extensions.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:emporium:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable, snake_case, for programs.
    pub code: String,
    /// Per-field messages of a validation failure.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Details of some problems, e.g. `sku` and `available` of `out_of_stock`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub details: serde_json::Map<String, serde_json::Value>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            details: serde_json::Map::new(),
            retry_after_secs: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        let code = match what {
            "user" => "user_not_found",
            "address" => "address_not_found",
            "product" => "product_not_found",
            "variant" => "variant_not_found",
            "category" => "category_not_found",
            "sku" => "sku_not_found",
            "reservation" => "reservation_not_found",
            "flash_sale" => "flash_sale_not_found",
            "location" => "location_not_found",
            "cart" => "cart_not_found",
            "cart_item" => "cart_item_not_found",
            "coupon" => "coupon_not_found",
            "order" => "order_not_found",
            "payment" => "payment_not_found",
            "provider" => "provider_not_found",
            "return" => "return_not_found",
            "fx_rate" => "fx_rate_not_found",
            "action" => "action_not_found",
            "synonym" => "synonym_not_found",
            _ => "not_found",
        };
        Self::new(StatusCode::NOT_FOUND, code, format!("{what} not found"))
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; it has been logged",
        )
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            invalid.to_string(),
        );
        err.errors.push(FieldError {
            field: invalid.field,
            message: invalid.message,
        });
        err
    }
}

impl From<ShopError> for ApiError {
    fn from(err: ShopError) -> Self {
        match err {
            ShopError::Invalid(invalid) => invalid.into(),
            ShopError::NotFound(what) => Self::not_found(what),
            ShopError::Conflict { code, message } => Self::new(StatusCode::CONFLICT, code, message),
            ShopError::ConflictDetails {
                code,
                message,
                details,
            } => {
                let mut e = Self::new(StatusCode::CONFLICT, code, message);
                e.details = details;
                e
            }
            ShopError::Overloaded { retry_after_secs } => {
                let mut e = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "overloaded",
                    "the server is at capacity; retry shortly",
                );
                e.retry_after_secs = Some(retry_after_secs);
                e
            }
            ShopError::BadRequest(code, message) => {
                Self::new(StatusCode::BAD_REQUEST, code, message)
            }
            ShopError::Unauthenticated(code, message) => {
                Self::new(StatusCode::UNAUTHORIZED, code, message)
            }
            ShopError::Forbidden(code, message) => Self::new(StatusCode::FORBIDDEN, code, message),
            ShopError::RateLimited { retry_after_secs } => {
                let mut e = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    format!("too many attempts; retry after {retry_after_secs} seconds"),
                );
                e.retry_after_secs = Some(retry_after_secs);
                e
            }
            ShopError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
                Self::internal()
            }
        }
    }
}

impl ApiError {
    /// The problem document, serialized.
    pub fn problem_body(self) -> Vec<u8> {
        let title = self.status.canonical_reason().unwrap_or("Error").to_owned();
        let problem = Problem {
            kind: format!("urn:emporium:problem:{}", self.code),
            title,
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_owned(),
            errors: self.errors,
            details: self.details,
        };
        serde_json::to_vec(&problem).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, retry_after_secs) = (self.status, self.retry_after_secs);
        let mut response = (status, self.problem_body()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overloaded_node_answers_429_with_retry_after() {
        let response = ApiError::from(ShopError::Overloaded {
            retry_after_secs: 2,
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "2");
        assert_eq!(
            response.headers()[axum::http::header::CONTENT_TYPE],
            "application/problem+json"
        );
    }

    #[test]
    fn conflict_details_become_members_of_the_problem() {
        let err = ShopError::conflict_with(
            "out_of_stock",
            "X: only 1",
            serde_json::json!({"sku": "X", "available": 1}),
        );
        let api = ApiError::from(err);
        assert_eq!(api.status, StatusCode::CONFLICT);
        assert_eq!(api.details["sku"], "X");
        assert_eq!(api.details["available"], 1);
    }
}
