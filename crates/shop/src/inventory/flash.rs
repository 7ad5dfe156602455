//! Flash sales: an admin earmarks units of a SKU at a price for a time window; shoppers
//! reserve them through the engine. Before the start, after the end and after sell-out the
//! answers come from this node's memory, without touching the database.

use std::collections::HashMap;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use emporium_domain::ids::UserId;
use emporium_domain::money::{Currency, Money};
use emporium_store::catalog as catalog_store;
use emporium_store::reservations::{self as store, FlashSaleRow};
use parking_lot::Mutex;
use serde::Serialize;
use uuid::Uuid;

use super::engine::Attempt;
use super::reservations::{DEFAULT_TTL, ReservationView};
use crate::identity::Actor;
use crate::{Shop, ShopError, events};

/// How stale a sale's figures may be when shown or used for a memory answer.
const STATUS_LAG: StdDuration = StdDuration::from_millis(100);

/// Sales this node has read recently, with their SKU code.
#[derive(Default)]
pub struct SaleCache(Mutex<HashMap<Uuid, (FlashSaleRow, String, Instant)>>);

impl SaleCache {
    async fn get(
        &self,
        shop: &Shop,
        id: Uuid,
        max_age: StdDuration,
    ) -> Result<(FlashSaleRow, String), ShopError> {
        if let Some(hit) = self.peek(id, max_age, |row, sku| (row.clone(), sku.to_owned())) {
            return Ok(hit);
        }
        let row = store::find_flash_sale(&shop.db, id)
            .await?
            .ok_or(ShopError::NotFound("flash_sale"))?;
        let sku = catalog_store::skus_of(&shop.db, &[row.variant_id])
            .await?
            .remove(&row.variant_id)
            .unwrap_or_default();
        let mut cache = self.0.lock();
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(id, (row.clone(), sku.clone(), Instant::now()));
        Ok((row, sku))
    }

    /// `f` of the cached row and SKU, when younger than `max_age`; never reads the database.
    fn peek<T>(
        &self,
        id: Uuid,
        max_age: StdDuration,
        f: impl FnOnce(&FlashSaleRow, &str) -> T,
    ) -> Option<T> {
        let cache = self.0.lock();
        let (row, sku, at) = cache.get(&id)?;
        (at.elapsed() < max_age).then(|| f(row, sku))
    }
}

/// The most units one attempt may ask for.
pub const MAX_QUANTITY: i64 = 1_000_000;

/// How old a cached sale may be when its window and limit answer for it: they never change.
const TERMS_MAX_AGE: StdDuration = StdDuration::from_secs(60);

#[derive(Debug, Clone)]
pub struct NewFlashSale {
    pub variant: Uuid,
    pub price: Money,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub quantity: i64,
    pub per_customer_limit: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FlashSaleView {
    pub id: Uuid,
    pub sku: String,
    pub price_minor: i64,
    pub currency: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub quantity: i64,
    /// Units not yet reserved (may lag by up to 100 ms).
    pub remaining: i64,
    pub per_customer_limit: i64,
    /// scheduled, live, sold_out or ended.
    pub status: String,
}

fn status_of(row: &FlashSaleRow, now: DateTime<Utc>) -> &'static str {
    if now < row.starts_at {
        "scheduled"
    } else if now >= row.ends_at || row.closed_at.is_some() {
        "ended"
    } else if row.remaining == 0 {
        "sold_out"
    } else {
        "live"
    }
}

fn sale_view(row: &FlashSaleRow, sku: String, now: DateTime<Utc>) -> FlashSaleView {
    FlashSaleView {
        id: row.id,
        sku,
        price_minor: row.price_minor,
        currency: row.currency.clone(),
        starts_at: row.starts_at,
        ends_at: row.ends_at,
        quantity: row.quantity,
        remaining: row.remaining,
        per_customer_limit: row.per_customer_limit,
        status: status_of(row, now).to_owned(),
    }
}

/// Creates a sale, earmarking its units from one location's available stock.
pub async fn create(
    shop: &Shop,
    admin: &Actor,
    sku: &str,
    new: NewFlashSale,
) -> Result<FlashSaleView, ShopError> {
    if !admin.is_admin() {
        return Err(ShopError::Forbidden(
            "forbidden",
            "only admins create flash sales",
        ));
    }
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let levels = store::lock_levels(&mut tx, &[new.variant]).await?;
    let best = levels.iter().max_by_key(|l| l.on_hand - l.reserved);
    let available: i64 = levels.iter().map(|l| l.on_hand - l.reserved).sum();
    let Some(level) = best.filter(|l| l.on_hand - l.reserved >= new.quantity) else {
        return Err(ShopError::conflict_with(
            "insufficient_stock",
            format!(
                "{sku}: {available} available, {} asked for the sale",
                new.quantity
            ),
            serde_json::json!({ "sku": sku, "available": available }),
        ));
    };
    // The earmark is reserved stock: nobody else can sell it while the sale is open.
    store::add_reserved(&mut tx, level.variant_id, level.location_id, new.quantity).await?;
    let row = FlashSaleRow {
        id: Uuid::now_v7(),
        variant_id: new.variant,
        price_minor: new.price.amount_minor,
        currency: new.price.currency.code().to_owned(),
        starts_at: new.starts_at,
        ends_at: new.ends_at,
        quantity: new.quantity,
        remaining: new.quantity,
        per_customer_limit: new.per_customer_limit,
        location_id: level.location_id,
        closed_at: None,
        created_at: now,
    };
    store::insert_flash_sale(&mut tx, &row).await?;
    events::emit(
        &mut tx,
        admin.user_id.0,
        events::FLASH_SALE_CREATED,
        serde_json::json!({ "flash_sale_id": row.id, "sku": sku }),
        now,
    )
    .await?;
    tx.commit().await?;
    shop.catalog_version.bump();
    Ok(sale_view(&row, sku.to_owned(), now))
}

/// The sale's status and remaining units, at most 100 ms old.
pub async fn status(shop: &Shop, id: Uuid) -> Result<FlashSaleView, ShopError> {
    let (row, sku) = shop.sales.get(shop, id, STATUS_LAG).await?;
    Ok(sale_view(&row, sku, shop.now()))
}

/// Reserves units of a sale for a shopper.
pub async fn reserve(
    shop: &Shop,
    user: UserId,
    id: Uuid,
    quantity: i64,
) -> Result<ReservationView, ShopError> {
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        return Err(
            emporium_domain::Invalid::new("quantity", "must be between 1 and 1000000").into(),
        );
    }
    // The window and the limit never change: a cached copy answers for them.
    let (sale, sku) = Box::pin(shop.sales.get(shop, id, TERMS_MAX_AGE)).await?;
    let now = shop.now();
    if now < sale.starts_at {
        return Err(ShopError::conflict_with(
            "sale_not_started",
            "the sale has not started",
            serde_json::json!({ "starts_at": sale.starts_at }),
        ));
    }
    if now >= sale.ends_at {
        return Err(ShopError::conflict_with(
            "sale_ended",
            "the sale has ended",
            serde_json::json!({ "ended_at": sale.ends_at }),
        ));
    }
    if quantity > sale.per_customer_limit {
        return Err(ShopError::conflict_with(
            "purchase_limit_exceeded",
            format!("at most {} per customer", sale.per_customer_limit),
            serde_json::json!({ "limit": sale.per_customer_limit }),
        ));
    }
    if shop.engine.memory.is_sold_out(id) {
        return Err(sold_out());
    }
    let ttl = DEFAULT_TTL.min(sale.ends_at - now + chrono::Duration::minutes(10));
    // Boxed: the engine's future is large, and the answers above (sold out, not started)
    // should not carry and move it.
    Box::pin(shop.engine.reserve(Attempt::Flash {
        user,
        sale,
        sku,
        quantity,
        ttl,
    }))
    .await
}

/// The answer to an attempt on a sale that has no units left.
pub fn sold_out() -> ShopError {
    ShopError::conflict_with(
        "sold_out",
        "the sale is sold out",
        serde_json::json!({ "remaining": 0 }),
    )
}

/// For the request path's early exit: when this node knows, from memory alone, that an
/// attempt on sale `id` would be answered [`sold_out`] (the sale is open and remembered as
/// sold out), the per-customer limit, so the caller can check that the asked quantity is one
/// [`reserve`] would have taken that far. `None`: only [`reserve`] can tell.
pub fn sold_out_in_memory(shop: &Shop, id: Uuid) -> Option<i64> {
    if !shop.engine.memory.is_sold_out(id) {
        return None;
    }
    let now = shop.now();
    shop.sales
        .peek(id, TERMS_MAX_AGE, |s, _| {
            (s.starts_at <= now && now < s.ends_at).then_some(s.per_customer_limit)
        })
        .flatten()
}

/// Parses a price for a sale.
pub fn price(amount_minor: i64, currency: &str) -> Result<Money, emporium_domain::Invalid> {
    Money::price(amount_minor, Currency::parse(currency)?)
}
