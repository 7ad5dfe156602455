//! Stock locations, levels, the movement ledger and low-stock events.
//!
//! Layout: views and inputs here; locations and reads (`list_locations`, `create_location`,
//! `stock_of`, `movements`) in this file; writes (`receive`, `adjust`, `transfer`,
//! `set_threshold`) in `write`.
//!
//! Sellers see and change the stock of their own SKUs, admins of any; another seller's SKU
//! is reported as not found, so its existence does not leak. Every write is one transaction
//! that changes levels, appends the ledger and writes its outbox events; the catalog version
//! moves after the commit because product pages show stock status.

mod write;

use chrono::{DateTime, Utc};
use emporium_domain::catalog::Sku;
use emporium_domain::ids::UserId;
use emporium_domain::paging::{Cursor, CursorKey, Limit};
use emporium_domain::stock::{Adjustment, LocationCode, Quantity, Reason, Threshold};
use emporium_store::inventory::{self as store, LevelRow, StockVariantRow};
use serde::Serialize;
use uuid::Uuid;

use crate::identity::Actor;
use crate::{Shop, ShopError};

pub use write::{adjust, receive, set_threshold, transfer};

/// A stock location (warehouse).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LocationView {
    pub code: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<store::LocationRow> for LocationView {
    fn from(row: store::LocationRow) -> Self {
        Self {
            code: row.code,
            name: row.name,
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewLocation {
    pub code: LocationCode,
    pub name: String,
}

/// The stock of a SKU at one location.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LocationStock {
    pub code: String,
    pub name: String,
    pub on_hand: i64,
    pub reserved: i64,
    /// `on_hand - reserved`: what can still be sold.
    pub available: i64,
}

/// The stock of a SKU over all locations, and per location.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StockView {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    /// At or below this many available units the SKU is low on stock; null: never.
    pub low_stock_threshold: Option<i64>,
    /// By location code.
    pub locations: Vec<LocationStock>,
}

impl StockView {
    fn of(variant: &StockVariantRow, levels: Vec<LevelRow>) -> Self {
        let mut locations: Vec<LocationStock> = levels
            .into_iter()
            .map(|l| LocationStock {
                code: l.code,
                name: l.name,
                on_hand: l.on_hand,
                reserved: l.reserved,
                available: l.on_hand - l.reserved,
            })
            .collect();
        locations.sort_by(|a, b| a.code.cmp(&b.code));
        Self {
            sku: variant.sku.clone(),
            on_hand: locations.iter().map(|l| l.on_hand).sum(),
            reserved: locations.iter().map(|l| l.reserved).sum(),
            available: locations.iter().map(|l| l.available).sum(),
            low_stock_threshold: variant.low_stock_threshold,
            locations,
        }
    }
}

/// An entry of the ledger: who changed what, where, when and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MovementView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    /// receive, adjust, transfer_out, transfer_in, or sale (a committed reservation).
    pub kind: String,
    /// Units added to (positive) or taken from (negative) on-hand stock.
    pub delta: i64,
    /// The location's code.
    pub location: String,
    pub reason: Option<String>,
    /// Who made the change; null for the system.
    pub actor_id: Option<UserId>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MovementPage {
    /// Newest first.
    pub items: Vec<MovementView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Goods arriving at a location (the main one when none is named).
#[derive(Debug, Clone)]
pub struct Receipt {
    pub quantity: Quantity,
    pub location: Option<LocationCode>,
    pub reason: Option<Reason>,
}

/// A correction of on-hand units after a count, damage or loss; the reason is required.
#[derive(Debug, Clone)]
pub struct Correction {
    pub delta: Adjustment,
    pub location: Option<LocationCode>,
    pub reason: Reason,
}

/// Units moved from one location to another. Reserved units cannot move.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub quantity: Quantity,
    pub from: LocationCode,
    pub to: LocationCode,
    pub reason: Option<Reason>,
}

/// All locations by code. The main location is created on first sight, so every shop has
/// somewhere to put stock.
pub async fn list_locations(shop: &Shop) -> Result<Vec<LocationView>, ShopError> {
    let rows = store::list_locations(&shop.db).await?;
    if rows.iter().any(|r| r.code == LocationCode::MAIN) {
        return Ok(rows.into_iter().map(LocationView::from).collect());
    }
    let mut tx = shop.db.begin().await?;
    store::ensure_location(
        &mut tx,
        LocationCode::MAIN,
        LocationCode::MAIN_NAME,
        shop.now(),
    )
    .await?;
    tx.commit().await?;
    let rows = store::list_locations(&shop.db).await?;
    Ok(rows.into_iter().map(LocationView::from).collect())
}

/// Adds a location (admins only); 409 `location_code_taken` when the code is in use.
pub async fn create_location(
    shop: &Shop,
    actor: &Actor,
    new: NewLocation,
) -> Result<LocationView, ShopError> {
    if !actor.is_admin() {
        return Err(ShopError::Forbidden(
            "forbidden",
            "only admins may add stock locations",
        ));
    }
    let row = store::LocationRow {
        id: Uuid::now_v7(),
        code: new.code.as_str().to_owned(),
        name: new.name,
        created_at: shop.now(),
    };
    let mut tx = shop.db.begin().await?;
    if !store::insert_location(&mut tx, &row).await? {
        return Err(ShopError::conflict(
            "location_code_taken",
            format!("a location with the code {} already exists", row.code),
        ));
    }
    tx.commit().await?;
    Ok(row.into())
}

/// The stock of a SKU the actor sells (or any, for an admin).
pub async fn stock_of(shop: &Shop, actor: &Actor, sku: &Sku) -> Result<StockView, ShopError> {
    let variant = readable_variant(shop, actor, sku).await?;
    let levels = store::levels(&shop.db, variant.id).await?;
    Ok(StockView::of(&variant, levels))
}

/// The ledger of a SKU, newest first, paginated by cursor.
pub async fn movements(
    shop: &Shop,
    actor: &Actor,
    sku: &Sku,
    cursor: Option<Cursor>,
    limit: Limit,
) -> Result<MovementPage, ShopError> {
    let variant = readable_variant(shop, actor, sku).await?;
    // One more than asked tells whether there is a next page.
    let mut rows =
        store::list_movements(&shop.db, variant.id, cursor.map(|c| c.id), limit.get() + 1).await?;
    let has_more = rows.len() > limit.get() as usize;
    rows.truncate(limit.get() as usize);
    let next_cursor = has_more.then(|| rows.last()).flatten().map(|last| {
        Cursor {
            key: CursorKey::Int(0),
            id: last.id,
        }
        .encode()
    });
    let items = rows
        .into_iter()
        .map(|m| MovementView {
            id: m.id,
            kind: m.kind,
            delta: m.delta,
            location: m.location,
            reason: m.reason,
            actor_id: m.actor_id.map(UserId),
            created_at: m.created_at,
        })
        .collect();
    Ok(MovementPage { items, next_cursor })
}

async fn readable_variant(
    shop: &Shop,
    actor: &Actor,
    sku: &Sku,
) -> Result<StockVariantRow, ShopError> {
    let variant = store::find_variant_by_sku(&shop.db, sku.as_str()).await?;
    check_owner(actor, variant)
}

/// The variant, when the actor may manage its stock: an approved seller of its product, or
/// an admin. Another seller's SKU is reported as not found.
fn check_owner(
    actor: &Actor,
    variant: Option<StockVariantRow>,
) -> Result<StockVariantRow, ShopError> {
    if !actor.can_sell() {
        return Err(ShopError::Forbidden(
            "forbidden",
            "only approved sellers and admins may manage stock",
        ));
    }
    variant
        .filter(|v| actor.is_admin() || v.seller_id == actor.user_id.0)
        .ok_or(ShopError::NotFound("sku"))
}

fn threshold_of(variant: &StockVariantRow) -> Result<Option<Threshold>, ShopError> {
    variant
        .low_stock_threshold
        .map(Threshold::parse)
        .transpose()
        .map_err(ShopError::internal)
}
