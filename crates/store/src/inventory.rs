//! Stock locations, levels and the movement ledger. The reservation engine builds on these.
//!
//! Layout: locations (`ensure_location`, `insert_location`, `find_location`,
//! `list_locations`), the stock of one SKU (`lock_variant_by_sku`, `find_variant_by_sku`,
//! `lock_levels`, `levels`, `set_threshold`), changes and the ledger (`Movement`,
//! `apply_movement`, `list_movements`, `ledger_mismatches`).
//!
//! A stock write locks the variant row first, then its levels: the variant row serializes
//! writers of one SKU (including ones that create a level at a new location, which no level
//! lock could cover), the level locks keep the reservation engine out until commit.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Backend, Constraint, Db, StoreError, Tx, Writes, on_pool, on_tx, values};

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

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LocationRow {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// Inserts a location; false, writing nothing, when its code is taken.
pub async fn insert_location(tx: &mut Tx, l: &LocationRow) -> Result<bool, StoreError> {
    let inserted = on_tx!(tx, c => sqlx::query(
        "INSERT INTO stock_locations (id, code, name, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (code) DO NOTHING",
    )
    .bind(l.id)
    .bind(&l.code)
    .bind(&l.name)
    .bind(l.created_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}

pub async fn find_location(tx: &mut Tx, code: &str) -> Result<Option<LocationRow>, StoreError> {
    Ok(on_tx!(tx, c => sqlx::query_as(
        "SELECT id, code, name, created_at FROM stock_locations WHERE code = $1",
    )
    .bind(code)
    .fetch_optional(c)
    .await)?)
}

/// All locations, by code.
pub async fn list_locations(db: &Db) -> Result<Vec<LocationRow>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT id, code, name, created_at FROM stock_locations ORDER BY code",
    )
    .fetch_all(p)
    .await)?)
}

/// A variant as stock operations see it: its SKU, its product's seller, its threshold.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StockVariantRow {
    pub id: Uuid,
    pub sku: String,
    pub seller_id: Uuid,
    pub low_stock_threshold: Option<i64>,
}

/// The variant of a SKU, locked against other stock writers until the transaction ends.
pub async fn lock_variant_by_sku(
    tx: &mut Tx,
    sku: &str,
) -> Result<Option<StockVariantRow>, StoreError> {
    const SELECT: &str = "SELECT v.id, v.sku, p.seller_id, v.low_stock_threshold FROM variants v \
                          JOIN products p ON p.id = v.product_id WHERE v.sku = $1";
    // NO KEY UPDATE, not UPDATE: it must not block inserts that only reference the variant
    // (ledger rows, reservation lines), which take KEY SHARE locks on it.
    const POSTGRES: &str = "SELECT v.id, v.sku, p.seller_id, v.low_stock_threshold FROM variants v \
                            JOIN products p ON p.id = v.product_id WHERE v.sku = $1 \
                            FOR NO KEY UPDATE OF v";
    // SQLite: write transactions begin IMMEDIATE and are serialized already.
    let sql = match tx.backend() {
        Backend::Postgres => POSTGRES,
        Backend::Sqlite => SELECT,
    };
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(sku).fetch_optional(c).await)?)
}

/// The variant of a SKU, for reads.
pub async fn find_variant_by_sku(
    db: &Db,
    sku: &str,
) -> Result<Option<StockVariantRow>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT v.id, v.sku, p.seller_id, v.low_stock_threshold FROM variants v \
         JOIN products p ON p.id = v.product_id WHERE v.sku = $1",
    )
    .bind(sku)
    .fetch_optional(p)
    .await)?)
}

/// The stock of a variant at one location, with the location's code and name.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LevelRow {
    pub location_id: Uuid,
    pub code: String,
    pub name: String,
    pub on_hand: i64,
    pub reserved: i64,
}

const LEVELS: &str = "SELECT l.location_id, s.code, s.name, l.on_hand, l.reserved \
    FROM stock_levels l JOIN stock_locations s ON s.id = l.location_id \
    WHERE l.variant_id = $1 ORDER BY l.location_id";

/// The levels of a variant, locked until the transaction ends, in the engine's lock order
/// (variant, then location) so the two never deadlock.
pub async fn lock_levels(tx: &mut Tx, variant: Uuid) -> Result<Vec<LevelRow>, StoreError> {
    // OF l: locking the location rows too would serialize writers of every SKU there.
    const POSTGRES: &str = "SELECT l.location_id, s.code, s.name, l.on_hand, l.reserved \
        FROM stock_levels l JOIN stock_locations s ON s.id = l.location_id \
        WHERE l.variant_id = $1 ORDER BY l.location_id FOR UPDATE OF l";
    let sql = match tx.backend() {
        Backend::Postgres => POSTGRES,
        Backend::Sqlite => LEVELS,
    };
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(variant).fetch_all(c).await)?)
}

/// The levels of a variant, for reads.
pub async fn levels(db: &Db, variant: Uuid) -> Result<Vec<LevelRow>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(LEVELS).bind(variant).fetch_all(p).await)?)
}

pub async fn set_threshold(
    tx: &mut Tx,
    variant: Uuid,
    threshold: Option<i64>,
) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query("UPDATE variants SET low_stock_threshold = $2 WHERE id = $1")
        .bind(variant)
        .bind(threshold)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
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
/// fails with [`Constraint::StockNonNegative`]; the caller's rollback then writes nothing.
pub async fn apply_movement(tx: &mut Tx, m: &Movement<'_>) -> Result<(), StoreError> {
    // Only an increase may create a level: PostgreSQL checks the CHECK constraints of the
    // row an upsert proposes before it finds the conflict, so a negative upsert always fails.
    let sql = if m.delta >= 0 {
        "INSERT INTO stock_levels (variant_id, location_id, on_hand, reserved) VALUES ($1, $2, $3, 0) \
         ON CONFLICT (variant_id, location_id) DO UPDATE SET on_hand = stock_levels.on_hand + excluded.on_hand"
    } else {
        "UPDATE stock_levels SET on_hand = on_hand + $3 WHERE variant_id = $1 AND location_id = $2"
    };
    let changed = on_tx!(tx, c => sqlx::query(sql)
        .bind(m.variant_id)
        .bind(m.location_id)
        .bind(m.delta)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if changed == 0 {
        // A decrease where there is no stock at all.
        return Err(StoreError::Constraint(
            Constraint::StockNonNegative,
            sqlx::Error::RowNotFound,
        ));
    }
    record_movement(tx, m).await
}

/// Appends a ledger entry, in the caller's transaction. On its own it is for changes of
/// on-hand stock made by another query of the same transaction (a committed reservation:
/// `on_hand` went down with `reserved`); [`apply_movement`] does both.
pub async fn record_movement(tx: &mut Tx, m: &Movement<'_>) -> Result<(), StoreError> {
    let mut w = Writes::new();
    queue_movement(&mut w, m);
    w.run(tx).await?;
    Ok(())
}

pub fn queue_movement(w: &mut Writes, m: &Movement<'_>) {
    w.push(
        "INSERT INTO stock_movements (id, variant_id, location_id, delta, kind, reason, actor_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        values![
            Uuid::now_v7(), m.variant_id, m.location_id, m.delta, m.kind,
            m.reason.map(str::to_owned), m.actor_id, m.at,
        ],
    );
}

/// A ledger entry with its location's code.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MovementRow {
    pub id: Uuid,
    pub location: String,
    pub delta: i64,
    pub kind: String,
    pub reason: Option<String>,
    pub actor_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// The ledger of a variant, newest first, from before `before` (an entry id; UUIDv7 ids are
/// time-ordered, so this is keyset pagination by time).
pub async fn list_movements(
    db: &Db,
    variant: Uuid,
    before: Option<Uuid>,
    limit: u32,
) -> Result<Vec<MovementRow>, StoreError> {
    Ok(on_pool!(db, p => {
        let mut qb = sqlx::QueryBuilder::new(
            "SELECT m.id, s.code AS location, m.delta, m.kind, m.reason, m.actor_id, m.created_at \
             FROM stock_movements m JOIN stock_locations s ON s.id = m.location_id WHERE m.variant_id = ",
        );
        qb.push_bind(variant);
        if let Some(before) = before {
            qb.push(" AND m.id < ").push_bind(before);
        }
        qb.push(" ORDER BY m.id DESC LIMIT ").push_bind(i64::from(limit));
        qb.build_query_as().fetch_all(p).await
    })?)
}

/// Every (variant, location) where `on_hand` is not the sum of the ledger's deltas,
/// including ledger entries without a level: `(variant_id, location_id, on_hand,
/// ledger_sum)`. Empty when the ledger explains all stock.
pub async fn ledger_mismatches(db: &Db) -> Result<Vec<(Uuid, Uuid, i64, i64)>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT l.variant_id, l.location_id, l.on_hand, CAST(COALESCE(m.total, 0) AS BIGINT) AS ledger_sum \
         FROM stock_levels l LEFT JOIN ( \
           SELECT variant_id, location_id, SUM(delta) AS total FROM stock_movements \
           GROUP BY variant_id, location_id) m \
         ON m.variant_id = l.variant_id AND m.location_id = l.location_id \
         WHERE l.on_hand <> COALESCE(m.total, 0) \
         UNION ALL \
         SELECT m.variant_id, m.location_id, CAST(0 AS BIGINT), CAST(SUM(m.delta) AS BIGINT) \
         FROM stock_movements m \
         WHERE NOT EXISTS (SELECT 1 FROM stock_levels l \
           WHERE l.variant_id = m.variant_id AND l.location_id = m.location_id) \
         GROUP BY m.variant_id, m.location_id HAVING SUM(m.delta) <> 0",
    )
    .fetch_all(p)
    .await)?)
}
