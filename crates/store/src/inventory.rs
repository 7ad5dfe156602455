//! Stock locations, levels and the movement ledger. The reservation engine builds on these.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{StoreError, Tx, on_tx};

/// Finds a location by code, creating it when missing; returns its id.
pub async fn ensure_location(
    tx: &mut Tx,
    code: &str,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Uuid, StoreError> {
    Ok(on_tx!(tx, c => {
        sqlx::query(
            "INSERT INTO stock_locations (id, code, name, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (code) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(code)
        .bind(name)
        .bind(now)
        .execute(&mut *c)
        .await?;
        sqlx::query_scalar("SELECT id FROM stock_locations WHERE code = $1")
            .bind(code)
            .fetch_one(&mut *c)
            .await
    })?)
}

/// One change of stock, as written to the ledger.
#[derive(Debug, Clone)]
pub struct Movement<'a> {
    pub variant_id: Uuid,
    pub location_id: Uuid,
    pub delta: i64,
    pub kind: &'a str,
    pub reason: Option<&'a str>,
    pub actor_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// Applies a change of on-hand stock and appends it to the ledger, in the caller's
/// transaction. A change that would make stock negative, or less than what is reserved,
/// fails with [`crate::Constraint::StockNonNegative`] and writes nothing.
pub async fn apply_movement(tx: &mut Tx, m: &Movement<'_>) -> Result<(), StoreError> {
    on_tx!(tx, c => {
        sqlx::query(
            "INSERT INTO stock_levels (variant_id, location_id, on_hand, reserved) VALUES ($1, $2, $3, 0) \
             ON CONFLICT (variant_id, location_id) DO UPDATE SET on_hand = stock_levels.on_hand + excluded.on_hand",
        )
        .bind(m.variant_id)
        .bind(m.location_id)
        .bind(m.delta)
        .execute(&mut *c)
        .await?;
        sqlx::query(
            "INSERT INTO stock_movements (id, variant_id, location_id, delta, kind, reason, actor_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::now_v7())
        .bind(m.variant_id)
        .bind(m.location_id)
        .bind(m.delta)
        .bind(m.kind)
        .bind(m.reason)
        .bind(m.actor_id)
        .bind(m.at)
        .execute(&mut *c)
        .await.map(|r| r.rows_affected())
    })?;
    Ok(())
}
