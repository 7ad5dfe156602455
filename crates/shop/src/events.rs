//! Outbox topics and the helper that writes an event in the caller's transaction.

use emporium_store::{StoreError, Tx, Writes, outbox};
use uuid::Uuid;

pub const USER_REGISTERED: &str = "user.registered";
pub const USER_ACCESS_CHANGED: &str = "user.access_changed";
pub const CATEGORY_CREATED: &str = "catalog.category_created";
pub const PRODUCT_CREATED: &str = "catalog.product_created";
pub const PRODUCT_UPDATED: &str = "catalog.product_updated";
/// Stock of a SKU changed (receive, adjust, transfer, threshold): product pages show it.
pub const STOCK_CHANGED: &str = "inventory.stock_changed";
/// Available units of a SKU fell to or below its low-stock threshold.
pub const LOW_STOCK: &str = "inventory.low_stock";
pub const RESERVATION_EXPIRED: &str = "inventory.reservation_expired";
pub const FLASH_SALE_CREATED: &str = "inventory.flash_sale_created";
pub const ORDER_CREATED: &str = "order.created";
pub const ORDER_PAID: &str = "order.paid";
pub const ORDER_CANCELLED: &str = "order.cancelled";
pub const ORDER_SHIPPED: &str = "order.shipped";
pub const ORDER_DELIVERED: &str = "order.delivered";
pub const PAYMENT_FAILED: &str = "payment.failed";
pub const REFUND_SUCCEEDED: &str = "refund.succeeded";
/// A product's rating or review count changed (reviews write it): `{product_id, rating,
/// review_count}`.
pub const PRODUCT_RATING_CHANGED: &str = "catalog.product_rating_changed";
/// Units of a product were sold (orders write it): `{product_id, units}`.
pub const SALES_CHANGED: &str = "orders.sales_changed";
/// An admin changed the search synonyms.
pub const SYNONYMS_CHANGED: &str = "search.synonyms_changed";

/// Every topic that changes what search finds or how it ranks: each node's search feed
/// applies these to its own index.
pub const SEARCH_TOPICS: &[&str] = &[
    PRODUCT_CREATED,
    PRODUCT_UPDATED,
    STOCK_CHANGED,
    PRODUCT_RATING_CHANGED,
    SALES_CHANGED,
    SYNONYMS_CHANGED,
];

/// Every topic that changes what catalog reads return: a node that delivers one of these
/// drops its read caches.
pub const CATALOG_TOPICS: &[&str] = &[
    CATEGORY_CREATED,
    PRODUCT_CREATED,
    PRODUCT_UPDATED,
    STOCK_CHANGED,
];

/// Writes one event to the outbox in the caller's transaction. `owner` is the user the event
/// belongs to (sharding key); system events use the nil id.
pub async fn emit(
    tx: &mut Tx,
    owner: Uuid,
    topic: &str,
    payload: serde_json::Value,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    let mut w = Writes::new();
    queue(&mut w, owner, topic, payload, at);
    w.run(tx).await?;
    Ok(())
}

/// Queues one event with the transaction's other queued writes.
pub fn queue(
    w: &mut Writes,
    owner: Uuid,
    topic: &str,
    payload: serde_json::Value,
    at: chrono::DateTime<chrono::Utc>,
) {
    outbox::queue_insert(
        w,
        &outbox::EventRow {
            user_id: owner,
            id: Uuid::now_v7(),
            topic: topic.to_owned(),
            payload: outbox::Json(payload),
            created_at: at,
            attempts: 0,
        },
    );
}
