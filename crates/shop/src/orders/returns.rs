//! Returns of delivered (or shipped) items: the customer requests, an admin approves or
//! rejects, receives the parcel (the units go back into stock, with a ledger entry), and
//! refunds the returned lines' share of the order.

use chrono::{DateTime, Utc};
use emporium_domain::Invalid;
use emporium_domain::ids::UserId;
use emporium_domain::order::{OrderStatus, ReturnEvent, ReturnStatus};
use emporium_store::orders::{self as store, Json, ReturnRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::Actor;
use crate::{Shop, ShopError};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReturnView {
    pub id: Uuid,
    pub order_id: Uuid,
    pub status: ReturnStatus,
    pub lines: Vec<ReturnLine>,
    pub reason: String,
    pub amount_minor: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReturnLine {
    pub line_no: i32,
    pub quantity: i64,
}

pub(crate) fn view(r: &ReturnRow) -> Result<ReturnView, ShopError> {
    Ok(ReturnView {
        id: r.id,
        order_id: r.order_id,
        status: ReturnStatus::parse(&r.status)?,
        lines: serde_json::from_value(r.lines.0.clone()).map_err(ShopError::internal)?,
        reason: r.reason.clone(),
        amount_minor: r.amount_minor,
        created_at: r.created_at,
    })
}

pub async fn request_return(
    shop: &Shop,
    actor: &Actor,
    order_id: Uuid,
    lines: Vec<ReturnLine>,
    reason: String,
) -> Result<ReturnView, ShopError> {
    let order = store::find_order(&shop.db, actor.user_id.0, order_id)
        .await?
        .ok_or(ShopError::NotFound("order"))?;
    let status = OrderStatus::parse(&order.status)?;
    if !matches!(
        status,
        OrderStatus::Fulfilled | OrderStatus::Delivered | OrderStatus::PartiallyRefunded
    ) {
        return Err(ShopError::conflict(
            "not_returnable",
            "only shipped or delivered orders can be returned",
        ));
    }
    let reason = reason.trim().to_owned();
    if reason.is_empty() || reason.len() > 500 {
        return Err(Invalid::new("reason", "must be 1 to 500 characters").into());
    }
    let order_lines = store::lines(&shop.db, order.user_id, order.id).await?;
    if lines.is_empty() {
        return Err(Invalid::new("lines", "name at least one line").into());
    }
    let mut amount = 0;
    for l in &lines {
        let ol = order_lines
            .iter()
            .find(|o| o.line_no == l.line_no)
            .ok_or_else(|| Invalid::new("lines", format!("the order has no line {}", l.line_no)))?;
        if l.quantity < 1 || l.quantity > ol.quantity {
            return Err(Invalid::new(
                "quantity",
                format!("line {} has {} units", l.line_no, ol.quantity),
            )
            .into());
        }
        amount += emporium_domain::pricing::div_round(
            i128::from(ol.total_minor) * i128::from(l.quantity),
            i128::from(ol.quantity),
        )
        .try_into()
        .unwrap_or(0i64);
    }
    let now = shop.now();
    let row = ReturnRow {
        user_id: order.user_id,
        id: Uuid::now_v7(),
        order_id,
        status: ReturnStatus::Requested.as_str().to_owned(),
        lines: Json(serde_json::to_value(&lines).map_err(ShopError::internal)?),
        reason,
        amount_minor: amount.min(order.total_minor - order.refunded_minor),
        created_at: now,
        updated_at: now,
    };
    let mut tx = shop.db.begin().await?;
    store::insert_return(&mut tx, &row).await?;
    tx.commit().await?;
    view(&row)
}

/// An admin moves a return on: approve, reject, receive (restock) or refund.
pub async fn decide_return(
    shop: &Shop,
    id: Uuid,
    event: ReturnEvent,
) -> Result<ReturnView, ShopError> {
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let mut row = store::find_return(&mut tx, id)
        .await?
        .ok_or(ShopError::NotFound("return"))?;
    let from = ReturnStatus::parse(&row.status)?;
    let to = from.apply(event).ok_or_else(|| {
        ShopError::conflict(
            "illegal_transition",
            format!("a return that is {} cannot do that", from.as_str()),
        )
    })?;
    if !store::set_return_status(&mut tx, &row, from.as_str(), to.as_str(), now).await? {
        return Err(ShopError::conflict(
            "return_changed",
            "the return changed at the same time",
        ));
    }
    if event == ReturnEvent::Receive {
        restock(&mut tx, &row, now).await?;
    }
    tx.commit().await?;
    row.status = to.as_str().to_owned();
    if event == ReturnEvent::Refund && row.amount_minor > 0 {
        crate::payments::refund(
            shop,
            UserId(row.user_id),
            row.order_id,
            Some(row.amount_minor),
            &format!("return: {}", row.reason),
        )
        .await?;
    }
    shop.catalog_version.bump();
    view(&row)
}

/// Puts returned units back on hand at the first stock location, with a `return` entry in
/// the ledger.
async fn restock(
    tx: &mut emporium_store::Tx,
    r: &ReturnRow,
    now: DateTime<Utc>,
) -> Result<(), ShopError> {
    let lines: Vec<ReturnLine> =
        serde_json::from_value(r.lines.0.clone()).map_err(ShopError::internal)?;
    let order_lines = store::lines_in_tx(tx, r.user_id, r.order_id).await?;
    let location = emporium_store::inventory::ensure_location(tx, "main", "main", now).await?;
    for l in lines {
        let Some(ol) = order_lines.iter().find(|o| o.line_no == l.line_no) else {
            continue;
        };
        emporium_store::inventory::apply_movement(
            tx,
            &emporium_store::inventory::Movement {
                variant_id: ol.variant_id,
                location_id: location,
                delta: l.quantity,
                kind: "return",
                reason: Some(r.reason.as_str()),
                actor_id: None,
                at: now,
            },
        )
        .await?;
    }
    Ok(())
}
