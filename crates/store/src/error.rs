//! Store errors. The store never knows HTTP: it says which named constraint a write broke,
//! and the layers above decide what that means for a client.

/// A constraint of the schema that a write can break, named the same on both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    EmailTaken,
    CategorySlugTaken,
    CategoryPathTaken,
    ProductSlugTaken,
    SkuTaken,
    OneDefaultAddress,
    StockNonNegative,
    CouponCodeTaken,
    CouponUsedUp,
    OrderForCart,
    OnePaymentPerOrder,
    ForeignKey,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a write broke the constraint {0:?}")]
    Constraint(Constraint, #[source] sqlx::Error),
    #[error("database configuration: {0}")]
    Config(String),
    #[error("database error")]
    Sqlx(#[source] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The SQLite write batch this transaction joined did not commit (see `writer`).
    #[error("the write batch failed: {0}")]
    Batch(String),
    #[error("stored data could not be decoded: {0}")]
    Corrupt(String),
    /// A queued write touched other rows than the rows its caller had locked promised.
    #[error("a write went against what its transaction had read: {0}")]
    Unexpected(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match classify(&err) {
            Some(c) => StoreError::Constraint(c, err),
            None => StoreError::Sqlx(err),
        }
    }
}

impl StoreError {
    pub fn constraint(&self) -> Option<Constraint> {
        match self {
            StoreError::Constraint(c, _) => Some(*c),
            _ => None,
        }
    }
}

/// Maps a database error to a named constraint. PostgreSQL reports the constraint's name;
/// SQLite reports "UNIQUE constraint failed: table.column" or "CHECK constraint failed: name".
fn classify(err: &sqlx::Error) -> Option<Constraint> {
    let db = err.as_database_error()?;
    use sqlx::error::ErrorKind;
    let kind = db.kind();
    if !matches!(
        kind,
        ErrorKind::UniqueViolation | ErrorKind::ForeignKeyViolation | ErrorKind::CheckViolation
    ) {
        return None;
    }
    if kind == ErrorKind::ForeignKeyViolation {
        return Some(Constraint::ForeignKey);
    }
    let name = db.constraint().unwrap_or_default();
    let message = db.message();
    let is = |pg: &str, sqlite: &str| name == pg || message.contains(sqlite);
    Some(if is("user_emails_pkey", "user_emails.email") {
        Constraint::EmailTaken
    } else if is("categories_slug_key", "categories.slug") {
        Constraint::CategorySlugTaken
    } else if is("categories_path_key", "categories.path") {
        Constraint::CategoryPathTaken
    } else if is("products_slug_key", "products.slug") {
        Constraint::ProductSlugTaken
    } else if is("variants_sku_key", "variants.sku") {
        Constraint::SkuTaken
    } else if is("addresses_one_default", "addresses.user_id") {
        Constraint::OneDefaultAddress
    } else if is("coupons_code_key", "coupons.code") {
        Constraint::CouponCodeTaken
    } else if is("coupons_usage_check", "coupons_usage_check") {
        Constraint::CouponUsedUp
    } else if is("orders_one_live_per_cart", "orders.user_id, orders.cart_id") {
        Constraint::OrderForCart
    } else if is(
        "payments_one_success",
        "payments.user_id, payments.order_id",
    ) {
        Constraint::OnePaymentPerOrder
    } else if name.starts_with("stock_levels_")
        || message.contains("stock_levels")
        || message.contains("on_hand")
    {
        Constraint::StockNonNegative
    } else {
        Constraint::Other
    })
}
