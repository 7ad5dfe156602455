//! Reservations after they are made: read, extend, release, commit, expire.
//!
//! Units of a released or expired reservation go back where they came from: to the sale's
//! earmark while its flash sale is open, otherwise to available stock.

use chrono::{DateTime, Duration, Utc};
use emporium_domain::ids::UserId;
use emporium_store::catalog as catalog_store;
use emporium_store::inventory::Movement;
use emporium_store::reservations::{self as store, LineRow, ReservationRow};
use emporium_store::{Tx, Writes};
use serde::Serialize;
use uuid::Uuid;

use crate::{Shop, ShopError, events};

/// Longest a reservation may be held (and extended to).
pub const MAX_TTL: Duration = Duration::hours(2);
pub const DEFAULT_TTL: Duration = Duration::minutes(15);

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReservationView {
    pub id: Uuid,
    /// active, committed, released or expired.
    pub status: String,
    pub lines: Vec<ReservedLine>,
    pub flash_sale_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReservedLine {
    pub sku: String,
    pub quantity: i64,
    /// Where the units are held: one entry per stock location.
    pub allocations: Vec<Allocation>,
    /// The unit price the reservation holds (flash sales), in minor units.
    pub unit_price_minor: Option<i64>,
    pub currency: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Allocation {
    pub location_id: Uuid,
    pub quantity: i64,
}

/// Builds the view of a reservation; `skus` maps variant ids to SKU codes.
pub(crate) fn view(
    row: &ReservationRow,
    lines: &[LineRow],
    sku_of: impl Fn(Uuid) -> String,
) -> ReservationView {
    let mut out: Vec<ReservedLine> = Vec::new();
    for line in lines {
        let sku = sku_of(line.variant_id);
        let allocation = Allocation {
            location_id: line.location_id,
            quantity: line.quantity,
        };
        match out.iter_mut().find(|l| l.sku == sku) {
            Some(l) => {
                l.quantity += line.quantity;
                l.allocations.push(allocation);
            }
            None => out.push(ReservedLine {
                sku,
                quantity: line.quantity,
                allocations: vec![allocation],
                unit_price_minor: line.unit_price_minor,
                currency: line.currency.clone(),
            }),
        }
    }
    ReservationView {
        id: row.id,
        status: row.status.clone(),
        lines: out,
        flash_sale_id: row.flash_sale_id,
        expires_at: row.expires_at,
        created_at: row.created_at,
    }
}

async fn view_with_skus(
    shop: &Shop,
    row: &ReservationRow,
    lines: &[LineRow],
) -> Result<ReservationView, ShopError> {
    let ids: Vec<Uuid> = lines.iter().map(|l| l.variant_id).collect();
    let skus = catalog_store::skus_of(&shop.db, &ids).await?;
    Ok(view(row, lines, |v| {
        skus.get(&v).cloned().unwrap_or_default()
    }))
}

pub async fn get(shop: &Shop, user: UserId, id: Uuid) -> Result<ReservationView, ShopError> {
    let (row, lines) = store::find_reservation(&shop.db, user.0, id)
        .await?
        .ok_or(ShopError::NotFound("reservation"))?;
    view_with_skus(shop, &row, &lines).await
}

/// A reservation that is still active, locked for a change.
async fn active(
    tx: &mut Tx,
    user: UserId,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(ReservationRow, Vec<LineRow>), ShopError> {
    still_active(store::lock_reservation(tx, user.0, id).await?, now)
}

/// The locked reservation, if it is still active at `now`.
fn still_active(
    locked: Option<(ReservationRow, Vec<LineRow>)>,
    now: DateTime<Utc>,
) -> Result<(ReservationRow, Vec<LineRow>), ShopError> {
    let (row, lines) = locked.ok_or(ShopError::NotFound("reservation"))?;
    if row.status != "active" || row.expires_at <= now {
        return Err(ShopError::conflict_with(
            "reservation_not_active",
            format!(
                "the reservation is {}",
                if row.status == "active" {
                    "expired"
                } else {
                    &row.status
                }
            ),
            serde_json::json!({ "reservation_status": row.status }),
        ));
    }
    Ok((row, lines))
}

/// Moves the deadline to `now + ttl` (bounded by [`MAX_TTL`]).
pub async fn extend(
    shop: &Shop,
    user: UserId,
    id: Uuid,
    ttl: Duration,
) -> Result<ReservationView, ShopError> {
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let (mut row, lines) = active(&mut tx, user, id, now).await?;
    row.expires_at = now + ttl.min(MAX_TTL);
    store::set_expiry(&mut tx, user.0, id, row.expires_at, now).await?;
    tx.commit().await?;
    view_with_skus(shop, &row, &lines).await
}

/// Gives the units back and ends the reservation as `released`.
pub async fn release(shop: &Shop, user: UserId, id: Uuid) -> Result<ReservationView, ShopError> {
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let (mut row, lines) = active(&mut tx, user, id, now).await?;
    give_back(&mut tx, &row, &lines, "released", now).await?;
    tx.commit().await?;
    after_give_back(shop, &row);
    row.status = "released".to_owned();
    view_with_skus(shop, &row, &lines).await
}

/// Turns a reservation into sold stock, exactly once: `on_hand -= q, reserved -= q` per
/// line, with a `sale` entry in the ledger. Used by checkout.
pub async fn commit(shop: &Shop, user: UserId, id: Uuid) -> Result<ReservationView, ShopError> {
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let (mut row, lines) = commit_in(&mut tx, user, id, now).await?;
    tx.commit().await?;
    shop.catalog_version.bump();
    row.status = "committed".to_owned();
    view_with_skus(shop, &row, &lines).await
}

/// [`commit`] in the caller's transaction (checkout commits stock and marks the order paid
/// atomically). The caller bumps the catalog version after its commit.
pub async fn commit_in(
    tx: &mut Tx,
    user: UserId,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(ReservationRow, Vec<LineRow>), ShopError> {
    let mut w = Writes::new();
    let locked = store::lock_reservation(tx, user.0, id).await?;
    let committed = queue_commit(&mut w, user, locked, now)?;
    w.run(tx).await?;
    Ok(committed)
}

/// Checks that the reservation the caller locked is active (else 409
/// `reservation_not_active`), then queues its commit in `w`: the reservation ends, reserved
/// units become sold ones, and each line is appended to the ledger as a sale.
pub fn queue_commit(
    w: &mut Writes,
    user: UserId,
    locked: Option<(ReservationRow, Vec<LineRow>)>,
    now: DateTime<Utc>,
) -> Result<(ReservationRow, Vec<LineRow>), ShopError> {
    let (row, lines) = still_active(locked, now)?;
    store::queue_end_reservation(w, user.0, row.id, "committed", now);
    for line in &lines {
        store::queue_commit_reserved(w, line.variant_id, line.location_id, line.quantity);
        emporium_store::inventory::queue_movement(
            w,
            &Movement {
                variant_id: line.variant_id,
                location_id: line.location_id,
                delta: -line.quantity,
                kind: "sale",
                reason: None,
                actor_id: Some(user.0),
                at: now,
            },
        );
    }
    Ok((row, lines))
}

/// Releases a reservation if it is still active, in the caller's transaction (a cancelled
/// checkout). Returns whether it was active.
pub async fn release_in(
    tx: &mut Tx,
    user: UserId,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, ShopError> {
    let Some((row, lines)) = store::lock_reservation(tx, user.0, id).await? else {
        return Ok(false);
    };
    if row.status != "active" {
        return Ok(false);
    }
    give_back(tx, &row, &lines, "released", now).await?;
    Ok(true)
}

/// Ends the reservation with `status` and returns its units, in the caller's transaction.
async fn give_back(
    tx: &mut Tx,
    row: &ReservationRow,
    lines: &[LineRow],
    status: &str,
    now: DateTime<Utc>,
) -> Result<(), ShopError> {
    if !store::end_reservation(tx, row.user_id, row.id, status, now).await? {
        return Ok(());
    }
    let open_sale = match row.flash_sale_id {
        Some(sale) => store::lock_flash_sale(tx, sale)
            .await?
            .filter(|s| s.closed_at.is_none()),
        None => None,
    };
    for line in lines {
        match &open_sale {
            Some(sale) => {
                store::add_sale_remaining(tx, sale.id, line.quantity).await?;
                store::add_sale_purchases(tx, sale.id, &[(row.user_id, -line.quantity)]).await?;
            }
            None => {
                store::add_reserved(tx, line.variant_id, line.location_id, -line.quantity).await?;
            }
        }
    }
    if open_sale.is_none() {
        // Units are available again: search and the catalog may show the product in stock.
        let mut variants: Vec<Uuid> = lines.iter().map(|l| l.variant_id).collect();
        variants.sort_unstable();
        variants.dedup();
        for variant in variants {
            let payload = serde_json::json!({ "variant_id": variant, "released": true });
            events::emit(tx, row.user_id, events::STOCK_CHANGED, payload, now).await?;
        }
    }
    Ok(())
}

fn after_give_back(shop: &Shop, row: &ReservationRow) {
    if let Some(sale) = row.flash_sale_id {
        shop.engine.forget_sold_out(sale);
    }
    shop.catalog_version.bump();
}

/// Expires up to `limit` overdue reservations in one transaction; returns how many.
pub async fn expire_overdue(shop: &Shop, limit: u32) -> Result<usize, ShopError> {
    let now = shop.now();
    // A read first: the write lock is taken only when something is due.
    if store::next_deadline(&shop.db)
        .await?
        .is_none_or(|at| at > now)
    {
        return Ok(0);
    }
    let mut tx = shop.db.begin().await?;
    let due = store::overdue(&mut tx, now, limit).await?;
    let mut expired = Vec::new();
    for (user, id) in &due {
        let Some((row, lines)) = store::lock_reservation(&mut tx, *user, *id).await? else {
            continue;
        };
        give_back(&mut tx, &row, &lines, "expired", now).await?;
        events::emit(
            &mut tx,
            row.user_id,
            events::RESERVATION_EXPIRED,
            serde_json::json!({ "reservation_id": row.id, "user_id": row.user_id, "expires_at": row.expires_at }),
            now,
        )
        .await?;
        expired.push(row);
    }
    tx.commit().await?;
    for row in &expired {
        after_give_back(shop, row);
    }
    Ok(expired.len())
}

/// Reserves stock of several SKUs for a customer, all or nothing, through the engine.
pub async fn reserve(
    shop: &Shop,
    user: UserId,
    lines: Vec<(emporium_domain::catalog::Sku, i64)>,
    ttl: Option<Duration>,
) -> Result<ReservationView, ShopError> {
    if lines.is_empty() || lines.len() > 100 {
        return Err(emporium_domain::Invalid::new("lines", "must have 1 to 100 lines").into());
    }
    let ttl = ttl.unwrap_or(DEFAULT_TTL);
    if ttl < Duration::seconds(1) || ttl > MAX_TTL {
        return Err(emporium_domain::Invalid::new(
            "ttl_seconds",
            format!("must be between 1 and {}", MAX_TTL.num_seconds()),
        )
        .into());
    }
    let mut resolved: Vec<(Uuid, String, i64)> = Vec::with_capacity(lines.len());
    for (sku, quantity) in lines {
        if !(1..=1_000_000).contains(&quantity) {
            return Err(
                emporium_domain::Invalid::new("quantity", "must be between 1 and 1000000").into(),
            );
        }
        if resolved.iter().any(|l| l.1 == sku.as_str()) {
            return Err(emporium_domain::Invalid::new(
                "lines",
                format!("{} is listed twice", sku.as_str()),
            )
            .into());
        }
        let (variant, _) = catalog_store::find_variant_by_sku(&shop.db, sku.as_str())
            .await?
            .ok_or(ShopError::NotFound("sku"))?;
        resolved.push((variant, sku.as_str().to_owned(), quantity));
    }
    shop.engine
        .reserve(super::engine::Attempt::Stock {
            user,
            lines: resolved,
            ttl,
            then: None,
        })
        .await
}

/// Closes sales whose window has passed: their unreserved units return to available stock.
pub async fn close_ended_sales(shop: &Shop) -> Result<usize, ShopError> {
    let now = shop.now();
    if store::next_sale_end(&shop.db)
        .await?
        .is_none_or(|at| at > now)
    {
        return Ok(0);
    }
    let mut tx = shop.db.begin().await?;
    let ended = store::ended_sales(&mut tx, now).await?;
    for sale in &ended {
        if sale.remaining > 0 {
            store::add_reserved(&mut tx, sale.variant_id, sale.location_id, -sale.remaining)
                .await?;
        }
        store::close_sale(&mut tx, sale.id, now).await?;
    }
    tx.commit().await?;
    if !ended.is_empty() {
        shop.catalog_version.bump();
    }
    Ok(ended.len())
}

/// When the reaper has something to do next: the earliest reservation deadline or sale end.
pub async fn next_deadline(shop: &Shop) -> Result<Option<DateTime<Utc>>, ShopError> {
    let reservation = store::next_deadline(&shop.db).await?;
    let sale = store::next_sale_end(&shop.db).await?;
    Ok(match (reservation, sale) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}
