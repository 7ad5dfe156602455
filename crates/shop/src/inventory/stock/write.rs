//! Stock writes: receive, adjust, transfer, thresholds. Each is one transaction that locks
//! the SKU (its variant row, then its levels), checks every leg against what is available,
//! applies the legs to levels and ledger, and writes `inventory.stock_changed` plus, when
//! the SKU runs low, `inventory.low_stock`. The catalog version moves after the commit.

use chrono::{DateTime, Utc};
use emporium_domain::Invalid;
use emporium_domain::catalog::Sku;
use emporium_domain::stock::{LocationCode, MovementKind, Reason, Threshold, runs_low};
use emporium_store::Tx;
use emporium_store::inventory::{self as store, LevelRow, Movement, StockVariantRow};
use uuid::Uuid;

use super::{Correction, Receipt, StockView, Transfer, check_owner, threshold_of};
use crate::identity::Actor;
use crate::{Shop, ShopError, events};

/// One change of one location's on-hand units.
struct Leg {
    /// None: the main location.
    location: Option<LocationCode>,
    /// The input field that named the location, for error messages.
    field: &'static str,
    delta: i64,
    kind: MovementKind,
}

pub async fn receive(
    shop: &Shop,
    actor: &Actor,
    sku: &Sku,
    r: Receipt,
) -> Result<StockView, ShopError> {
    let leg = Leg {
        location: r.location,
        field: "location",
        delta: r.quantity.get(),
        kind: MovementKind::Receive,
    };
    apply(shop, actor, sku, &[leg], r.reason.as_ref()).await
}

pub async fn adjust(
    shop: &Shop,
    actor: &Actor,
    sku: &Sku,
    c: Correction,
) -> Result<StockView, ShopError> {
    let leg = Leg {
        location: c.location,
        field: "location",
        delta: c.delta.get(),
        kind: MovementKind::Adjust,
    };
    apply(shop, actor, sku, &[leg], Some(&c.reason)).await
}

/// Moves units between two locations: both legs in one transaction, so the total on hand
/// never changes.
pub async fn transfer(
    shop: &Shop,
    actor: &Actor,
    sku: &Sku,
    t: Transfer,
) -> Result<StockView, ShopError> {
    if t.from == t.to {
        return Err(Invalid::new("to", "must be another location than from").into());
    }
    let legs = [
        Leg {
            location: Some(t.from),
            field: "from",
            delta: -t.quantity.get(),
            kind: MovementKind::TransferOut,
        },
        Leg {
            location: Some(t.to),
            field: "to",
            delta: t.quantity.get(),
            kind: MovementKind::TransferIn,
        },
    ];
    apply(shop, actor, sku, &legs, t.reason.as_ref()).await
}

/// Sets or clears (None) the low-stock threshold of a SKU.
pub async fn set_threshold(
    shop: &Shop,
    actor: &Actor,
    sku: &Sku,
    threshold: Option<Threshold>,
) -> Result<StockView, ShopError> {
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let mut variant = check_owner(
        actor,
        store::lock_variant_by_sku(&mut tx, sku.as_str()).await?,
    )?;
    let levels = store::lock_levels(&mut tx, variant.id).await?;
    let before = (available(&levels), threshold_of(&variant)?);
    store::set_threshold(&mut tx, variant.id, threshold.map(Threshold::get)).await?;
    variant.low_stock_threshold = threshold.map(Threshold::get);
    let view = StockView::of(&variant, levels);
    stock_events(&mut tx, actor, &variant, &view, before, now).await?;
    tx.commit().await?;
    shop.catalog_version.bump();
    Ok(view)
}

async fn apply(
    shop: &Shop,
    actor: &Actor,
    sku: &Sku,
    legs: &[Leg],
    reason: Option<&Reason>,
) -> Result<StockView, ShopError> {
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let variant = check_owner(
        actor,
        store::lock_variant_by_sku(&mut tx, sku.as_str()).await?,
    )?;
    let levels = store::lock_levels(&mut tx, variant.id).await?;
    // Every location first: naming an unknown one is a bad request whatever the stock.
    let mut resolved = Vec::with_capacity(legs.len());
    for leg in legs {
        resolved.push(resolve(&mut tx, leg, now).await?);
    }
    for (leg, (location_id, code)) in legs.iter().zip(resolved) {
        check_leg(&variant, &levels, location_id, &code, leg)?;
        store::apply_movement(
            &mut tx,
            &Movement {
                variant_id: variant.id,
                location_id,
                delta: leg.delta,
                kind: leg.kind.as_str(),
                reason: reason.map(Reason::as_str),
                actor_id: Some(actor.user_id.0),
                at: now,
            },
        )
        .await?;
    }
    let before = (available(&levels), threshold_of(&variant)?);
    let view = StockView::of(&variant, store::lock_levels(&mut tx, variant.id).await?);
    stock_events(&mut tx, actor, &variant, &view, before, now).await?;
    tx.commit().await?;
    shop.catalog_version.bump();
    Ok(view)
}

/// The id and code of a leg's location. The main location is created on demand; any other
/// must exist.
async fn resolve(tx: &mut Tx, leg: &Leg, now: DateTime<Utc>) -> Result<(Uuid, String), ShopError> {
    match &leg.location {
        Some(code) if !code.is_main() => store::find_location(tx, code.as_str())
            .await?
            .map(|l| (l.id, l.code))
            .ok_or_else(|| Invalid::new(leg.field, "no stock location has this code").into()),
        _ => {
            let id = store::ensure_location(tx, LocationCode::MAIN, LocationCode::MAIN_NAME, now)
                .await?;
            Ok((id, LocationCode::MAIN.to_owned()))
        }
    }
}

/// Refuses a leg that would take more than is available (on hand and not reserved) at its
/// location, before the database's CHECK constraints would, so the answer can say what is
/// available.
fn check_leg(
    variant: &StockVariantRow,
    levels: &[LevelRow],
    location_id: Uuid,
    code: &str,
    leg: &Leg,
) -> Result<(), ShopError> {
    let (on_hand, reserved) = levels
        .iter()
        .find(|l| l.location_id == location_id)
        .map_or((0, 0), |l| (l.on_hand, l.reserved));
    let available = on_hand - reserved;
    if leg.delta < 0 && available < -leg.delta {
        return Err(ShopError::conflict_with(
            "insufficient_stock",
            format!(
                "{} has {available} units available at {code}; {} were asked for",
                variant.sku, -leg.delta
            ),
            serde_json::json!({ "sku": variant.sku, "location": code, "available": available }),
        ));
    }
    if on_hand.checked_add(leg.delta).is_none() {
        return Err(Invalid::new("quantity", "would exceed the largest stock level").into());
    }
    Ok(())
}

fn available(levels: &[LevelRow]) -> i64 {
    levels.iter().map(|l| l.on_hand - l.reserved).sum()
}

/// Writes `inventory.stock_changed`, and `inventory.low_stock` when the change ran the SKU
/// low. `before` is (available units, threshold) before the change.
async fn stock_events(
    tx: &mut Tx,
    actor: &Actor,
    variant: &StockVariantRow,
    view: &StockView,
    before: (i64, Option<Threshold>),
    now: DateTime<Utc>,
) -> Result<(), ShopError> {
    let after = (view.available, threshold_of(variant)?);
    if let (true, Some(threshold)) = (runs_low(before, after), after.1) {
        let payload = serde_json::json!({
            "sku": variant.sku,
            "variant_id": variant.id,
            "available": view.available,
            "threshold": threshold.get(),
        });
        events::emit(tx, actor.user_id.0, events::LOW_STOCK, payload, now).await?;
    }
    let payload = serde_json::json!({
        "sku": variant.sku,
        "variant_id": variant.id,
        "on_hand": view.on_hand,
        "available": view.available,
    });
    events::emit(tx, actor.user_id.0, events::STOCK_CHANGED, payload, now).await?;
    Ok(())
}
