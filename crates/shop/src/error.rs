//! The error policy of the shop layer.
//!
//! - `domain` returns [`emporium_domain::Invalid`] for input that breaks a rule.
//! - `store` returns [`emporium_store::StoreError`]; a broken named constraint is mapped here,
//!   in [`From<StoreError>`], to a conflict with a stable code (409) or to a bad reference
//!   (422). Every other store error is internal.
//! - Operations return [`ShopError`]; `web` maps each variant to one HTTP status and
//!   problem+json body, and logs the cause chain of `Internal` errors (never shown to
//!   clients).

use emporium_domain::Invalid;
use emporium_store::{Constraint, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    /// Input broke a rule (422 `validation_failed`).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The thing does not exist, or the caller may not know it exists (404 `<what>_not_found`).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (409 with this code).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A conflict with machine-readable details, e.g. which SKU is short and what is
    /// available (409 with this code; the details become members of the problem document).
    #[error("{message}")]
    ConflictDetails {
        code: &'static str,
        message: String,
        details: serde_json::Map<String, serde_json::Value>,
    },
    /// The node is at capacity; retry after this many seconds (429 `overloaded`).
    #[error("overloaded")]
    Overloaded { retry_after_secs: u64 },
    /// The request is unacceptable as a whole, e.g. a webhook with a bad signature (400
    /// with this code).
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// No valid credentials (401 with this code).
    #[error("{1}")]
    Unauthenticated(&'static str, &'static str),
    /// Authenticated, but not allowed (403 with this code).
    #[error("{1}")]
    Forbidden(&'static str, &'static str),
    /// Too many attempts; try again after this many seconds (429).
    #[error("too many attempts")]
    RateLimited { retry_after_secs: u64 },
    /// A bug or an outage; details go to the log only (500).
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ShopError {
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn conflict_with(
        code: &'static str,
        message: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        Self::ConflictDetails {
            code,
            message: message.into(),
            details: match details {
                serde_json::Value::Object(map) => map,
                _ => serde_json::Map::new(),
            },
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }
}

impl From<StoreError> for ShopError {
    fn from(err: StoreError) -> Self {
        let (code, message) = match err.constraint() {
            Some(Constraint::EmailTaken) => {
                ("email_taken", "an account with this email already exists")
            }
            Some(Constraint::CategorySlugTaken) => {
                ("slug_taken", "a category with this slug already exists")
            }
            Some(Constraint::CategoryPathTaken) => {
                ("slug_taken", "a category with this path already exists")
            }
            Some(Constraint::ProductSlugTaken) => {
                ("slug_taken", "a product with this slug already exists")
            }
            Some(Constraint::SkuTaken) => ("sku_taken", "a variant with this SKU already exists"),
            Some(Constraint::OneDefaultAddress) => (
                "default_address_conflict",
                "another default address was set at the same time",
            ),
            Some(Constraint::StockNonNegative) => (
                "insufficient_stock",
                "the change would make stock negative or below what is reserved",
            ),
            Some(Constraint::CouponCodeTaken) => (
                "coupon_code_taken",
                "a coupon with this code already exists",
            ),
            Some(Constraint::CouponUsedUp) => ("coupon_used_up", "the coupon has been used up"),
            Some(Constraint::OrderForCart) => (
                "already_checked_out",
                "an order was already placed for this cart",
            ),
            Some(Constraint::OnePaymentPerOrder) => (
                "order_already_paid",
                "the order already has a successful payment",
            ),
            Some(Constraint::ForeignKey) => {
                return Self::Invalid(Invalid::new(
                    "reference",
                    "refers to something that does not exist",
                ));
            }
            Some(Constraint::Other) | None => return Self::Internal(err.into()),
        };
        Self::conflict(code, message)
    }
}

impl From<tokio::task::JoinError> for ShopError {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::internal(err)
    }
}
