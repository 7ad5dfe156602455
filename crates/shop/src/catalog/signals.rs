//! Product signals search ranks by: rating and review count (owned by reviews) and units
//! sold (owned by orders). Those components call these operations in their own flows; each
//! writes the number and its outbox event, which moves the product in every node's index.

use emporium_domain::Invalid;
use emporium_domain::ids::ProductId;
use emporium_store::search as store;

use crate::{Shop, ShopError, events};

/// Sets a product's mean rating (0 to 5) and review count.
pub async fn record_rating(
    shop: &Shop,
    product: ProductId,
    rating: f64,
    review_count: i64,
) -> Result<(), ShopError> {
    if !(0.0..=5.0).contains(&rating) {
        return Err(Invalid::new("rating", "must be between 0 and 5").into());
    }
    if review_count < 0 {
        return Err(Invalid::new("review_count", "must not be negative").into());
    }
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    store::set_rating(&mut tx, product.0, rating, review_count, now).await?;
    events::emit(
        &mut tx,
        uuid::Uuid::nil(),
        events::PRODUCT_RATING_CHANGED,
        serde_json::json!({ "product_id": product.0, "rating": rating, "review_count": review_count }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Adds units sold to a product's sales count.
pub async fn record_sales(shop: &Shop, product: ProductId, units: i64) -> Result<(), ShopError> {
    if units <= 0 {
        return Err(Invalid::new("units", "must be positive").into());
    }
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    store::add_sales(&mut tx, product.0, units, now).await?;
    events::emit(
        &mut tx,
        uuid::Uuid::nil(),
        events::SALES_CHANGED,
        serde_json::json!({ "product_id": product.0, "units": units }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
