//! The three steps of an engine batch, as few statements as each backend allows.
//!
//! A batch holds its locks from the first step to its commit, so every round trip in between
//! is time other batches of the same SKU wait. On PostgreSQL each step is one statement:
//! [`lock`] takes the stock rows and the sales, [`read`] reads the buyers' holds and
//! purchases under those locks (a separate statement, so that it sees what the batch before
//! committed while this one waited for the locks), and [`write`] applies every conditional
//! update and inserts every row in data-modifying CTEs fed by arrays, whose text never changes
//! and so stays prepared. SQLite has a single writer and no data-modifying CTEs: there the
//! steps run one statement per table, on a connection that nothing else waits on (sending
//! each step's statements in one round trip was tried: see docs/benchmarks.md).
//!
//! [`Statements::PerTable`] runs one statement per table on PostgreSQL too: the naive
//! baseline's one-attempt transactions use it, because they are faster that way (see
//! docs/benchmarks.md).

use std::collections::HashMap;

use uuid::Uuid;

use super::{
    FlashSaleRow, HoldRow, LevelRow, LineRow, ReservationRow, SALE_COLUMNS, add_reserved,
    add_sale_purchases, add_sale_remaining, find_holds, insert_reservations, lock_flash_sale,
    lock_levels, sale_purchases,
};
use crate::db::TxInner;
use crate::{StoreError, Tx, on_tx};

/// How a batch's steps reach PostgreSQL (SQLite always runs one statement per table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statements {
    /// One statement per step: for batches, whose locks wait on every round trip.
    Folded,
    /// One statement per table and step: for transactions of one attempt.
    PerTable,
}

/// The transaction's PostgreSQL connection, when the steps are to be folded on it.
fn folded(tx: &mut Tx, statements: Statements) -> Option<&mut sqlx::PgConnection> {
    match (tx.inner(), statements) {
        (TxInner::Postgres(c), Statements::Folded) => Some(&mut **c),
        _ => None,
    }
}

/// What a batch locked: the stock rows of its SKUs (ordered by SKU and location) and its
/// open or closed sales (those that do not exist are missing).
#[derive(Debug, Default)]
pub struct Locked {
    pub levels: Vec<LevelRow>,
    pub sales: Vec<FlashSaleRow>,
}

/// Locks the stock rows of `variants`, then the sales `sales`, in id order (the order every
/// writer of both takes them in, so concurrent nodes never deadlock).
pub async fn lock(
    tx: &mut Tx,
    statements: Statements,
    variants: &[Uuid],
    sales: &[Uuid],
) -> Result<Locked, StoreError> {
    let Some(c) = folded(tx, statements) else {
        let levels = lock_levels(tx, variants).await?;
        let mut found = Vec::with_capacity(sales.len());
        for id in sales {
            found.extend(lock_flash_sale(tx, *id).await?);
        }
        return Ok(Locked {
            levels,
            sales: found,
        });
    };
    // The outer UNION ALL reads its branches in order: levels are locked before sales.
    let sql = format!(
        "WITH l AS (SELECT variant_id, location_id, on_hand, reserved FROM stock_levels \
                    WHERE variant_id = ANY($1) ORDER BY variant_id, location_id FOR UPDATE), \
              s AS (SELECT {SALE_COLUMNS} FROM flash_sales WHERE id = ANY($2) ORDER BY id FOR UPDATE) \
         SELECT variant_id, location_id, on_hand, reserved, NULL::uuid AS sale_id, NULL::bigint AS price_minor, \
                NULL::text AS currency, NULL::timestamptz AS starts_at, NULL::timestamptz AS ends_at, \
                NULL::bigint AS quantity, NULL::bigint AS remaining, NULL::bigint AS per_customer_limit, \
                NULL::timestamptz AS closed_at, NULL::timestamptz AS created_at FROM l \
         UNION ALL \
         SELECT variant_id, location_id, NULL, NULL, id, price_minor, currency, starts_at, ends_at, \
                quantity, remaining, per_customer_limit, closed_at, created_at FROM s"
    );
    let rows: Vec<LockedRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(variants)
        .bind(sales)
        .fetch_all(&mut *c)
        .await?;
    let mut locked = Locked::default();
    for row in rows {
        match row.into_item() {
            LockedItem::Sale(sale) => locked.sales.push(sale),
            LockedItem::Level(level) => locked.levels.push(level),
        }
    }
    Ok(locked)
}

/// One row of [`lock`]'s statement: a stock level (no `sale_id`) or a sale.
#[derive(sqlx::FromRow)]
struct LockedRow {
    variant_id: Uuid,
    location_id: Uuid,
    on_hand: Option<i64>,
    reserved: Option<i64>,
    sale_id: Option<Uuid>,
    price_minor: Option<i64>,
    currency: Option<String>,
    starts_at: Option<chrono::DateTime<chrono::Utc>>,
    ends_at: Option<chrono::DateTime<chrono::Utc>>,
    quantity: Option<i64>,
    remaining: Option<i64>,
    per_customer_limit: Option<i64>,
    closed_at: Option<chrono::DateTime<chrono::Utc>>,
    created_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl LockedRow {
    fn into_item(self) -> LockedItem {
        match self {
            Self {
                variant_id,
                location_id,
                sale_id: Some(id),
                price_minor: Some(price_minor),
                currency: Some(currency),
                starts_at: Some(starts_at),
                ends_at: Some(ends_at),
                quantity: Some(quantity),
                remaining: Some(remaining),
                per_customer_limit: Some(per_customer_limit),
                closed_at,
                created_at: Some(created_at),
                ..
            } => LockedItem::Sale(FlashSaleRow {
                id,
                variant_id,
                price_minor,
                currency,
                starts_at,
                ends_at,
                quantity,
                remaining,
                per_customer_limit,
                location_id,
                closed_at,
                created_at,
            }),
            row => LockedItem::Level(LevelRow {
                variant_id: row.variant_id,
                location_id: row.location_id,
                on_hand: row.on_hand.unwrap_or_default(),
                reserved: row.reserved.unwrap_or_default(),
            }),
        }
    }
}

enum LockedItem {
    Level(LevelRow),
    Sale(FlashSaleRow),
}

/// What a batch read under its locks.
#[derive(Debug, Default)]
pub struct Read {
    /// Active holds of the asked (user, SKU) pairs.
    pub holds: Vec<HoldRow>,
    /// Units already taken, per (sale, user), for the asked pairs that took any.
    pub purchases: Vec<(Uuid, Uuid, i64)>,
    /// The asked carts that exist.
    pub carts: Vec<CartStatus>,
}

/// Reads the holds of `holds` ((user, SKU) pairs) and the purchases of `purchases`
/// ((sale, user) pairs). Run it after [`lock`], as its own statement.
pub async fn read(
    tx: &mut Tx,
    statements: Statements,
    holds: &[(Uuid, Uuid)],
    purchases: &[(Uuid, Uuid)],
) -> Result<Read, StoreError> {
    let Some(c) = folded(tx, statements) else {
        let mut read = Read {
            holds: find_holds(tx, holds).await?,
            purchases: Vec::new(),
            carts: Vec::new(),
        };
        let mut by_sale: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (sale, user) in purchases {
            by_sale.entry(*sale).or_default().push(*user);
        }
        for (sale, users) in by_sale {
            for (user, quantity) in sale_purchases(tx, sale, &users).await? {
                read.purchases.push((sale, user, quantity));
            }
        }
        return Ok(read);
    };
    let (hold_users, hold_variants): (Vec<Uuid>, Vec<Uuid>) = holds.iter().copied().unzip();
    let (sales, buyers): (Vec<Uuid>, Vec<Uuid>) = purchases.iter().copied().unzip();
    let rows: Vec<(bool, Uuid, Uuid, Option<Uuid>, i64)> = sqlx::query_as(
        "SELECT TRUE, h.user_id, h.variant_id, h.reservation_id, 0::bigint \
           FROM UNNEST($1::uuid[], $2::uuid[]) AS p (user_id, variant_id) \
           JOIN reservation_holds h ON h.user_id = p.user_id AND h.variant_id = p.variant_id \
         UNION ALL \
         SELECT FALSE, f.user_id, f.flash_sale_id, NULL, f.quantity \
           FROM UNNEST($3::uuid[], $4::uuid[]) AS p (flash_sale_id, user_id) \
           JOIN flash_sale_purchases f ON f.user_id = p.user_id AND f.flash_sale_id = p.flash_sale_id",
    )
    .bind(hold_users)
    .bind(hold_variants)
    .bind(sales)
    .bind(buyers)
    .fetch_all(&mut *c)
    .await?;
    let mut read = Read::default();
    for (is_hold, user, key, reservation, quantity) in rows {
        match (is_hold, reservation) {
            (true, Some(reservation_id)) => read.holds.push(HoldRow {
                user_id: user,
                variant_id: key,
                reservation_id,
            }),
            _ => read.purchases.push((key, user, quantity)),
        }
    }
    Ok(read)
}

/// Everything a batch writes.
#[derive(Debug, Default)]
pub struct Writes<'a> {
    /// Units moved into `reserved`, per (SKU, location), at most once per pair.
    pub reserved: Vec<(Uuid, Uuid, i64)>,
    /// Units taken from each sale's remaining units, at most once per sale.
    pub taken: Vec<(Uuid, i64)>,
    /// Units each buyer took from each sale: (sale, user, units), at most once per pair.
    pub purchases: Vec<(Uuid, Uuid, i64)>,
    pub reservations: &'a [ReservationRow],
    pub lines: &'a [LineRow],
    /// Rows that belong with the grants (the orders placed with them), written after the
    /// batch's own, a round trip each: each keeps a text of its own that stays prepared,
    /// where one text for all of them would be new in nearly every batch.
    pub then: Vec<crate::Writes>,
}

/// Applies a batch's writes. Returns false when a conditional update found a stock level or
/// a sale without the units the batch counted on (it was changed under the batch's locks,
/// which must not happen); the caller then rolls back.
pub async fn write(
    tx: &mut Tx,
    statements: Statements,
    mut w: Writes<'_>,
) -> Result<bool, StoreError> {
    let applied = write_own(tx, statements, &w).await?;
    if applied {
        for rows in std::mem::take(&mut w.then) {
            rows.run(tx).await?;
        }
    }
    Ok(applied)
}

async fn write_own(
    tx: &mut Tx,
    statements: Statements,
    w: &Writes<'_>,
) -> Result<bool, StoreError> {
    let Some(c) = folded(tx, statements) else {
        for &(variant, location, quantity) in &w.reserved {
            if !add_reserved(tx, variant, location, quantity).await? {
                return Ok(false);
            }
        }
        for &(sale, quantity) in &w.taken {
            if !add_sale_remaining(tx, sale, -quantity).await? {
                return Ok(false);
            }
        }
        let mut by_sale: HashMap<Uuid, Vec<(Uuid, i64)>> = HashMap::new();
        for &(sale, user, quantity) in &w.purchases {
            by_sale.entry(sale).or_default().push((user, quantity));
        }
        for (sale, deltas) in by_sale {
            add_sale_purchases(tx, sale, &deltas).await?;
        }
        insert_reservations(tx, w.reservations, w.lines).await?;
        return Ok(true);
    };
    let mut holds: Vec<(Uuid, Uuid, Uuid)> = w
        .lines
        .iter()
        .map(|l| (l.user_id, l.variant_id, l.reservation_id))
        .collect();
    holds.sort_unstable();
    holds.dedup();
    let (updated, taken): (i64, i64) = sqlx::query_as(
        "WITH lv AS ( \
           UPDATE stock_levels s SET reserved = s.reserved + d.quantity \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[]) AS d (variant_id, location_id, quantity) \
            WHERE s.variant_id = d.variant_id AND s.location_id = d.location_id \
              AND s.on_hand - s.reserved >= d.quantity AND s.reserved + d.quantity >= 0 \
           RETURNING 1), \
         fs AS ( \
           UPDATE flash_sales f SET remaining = f.remaining - d.quantity \
             FROM UNNEST($4::uuid[], $5::bigint[]) AS d (id, quantity) \
            WHERE f.id = d.id AND f.remaining - d.quantity >= 0 AND f.remaining - d.quantity <= f.quantity \
           RETURNING 1), \
         fp AS ( \
           INSERT INTO flash_sale_purchases (flash_sale_id, user_id, quantity) \
           SELECT * FROM UNNEST($6::uuid[], $7::uuid[], $8::bigint[]) \
           ON CONFLICT (user_id, flash_sale_id) \
           DO UPDATE SET quantity = flash_sale_purchases.quantity + excluded.quantity), \
         r AS ( \
           INSERT INTO reservations (user_id, id, status, flash_sale_id, expires_at, created_at, updated_at) \
           SELECT * FROM UNNEST($9::uuid[], $10::uuid[], $11::text[], $12::uuid[], \
                                $13::timestamptz[], $14::timestamptz[], $15::timestamptz[])), \
         l AS ( \
           INSERT INTO reservation_lines (user_id, reservation_id, variant_id, location_id, quantity, unit_price_minor, currency) \
           SELECT * FROM UNNEST($16::uuid[], $17::uuid[], $18::uuid[], $19::uuid[], $20::bigint[], $21::bigint[], $22::text[])), \
         h AS ( \
           INSERT INTO reservation_holds (user_id, variant_id, reservation_id) \
           SELECT * FROM UNNEST($23::uuid[], $24::uuid[], $25::uuid[])) \
         SELECT (SELECT count(*) FROM lv), (SELECT count(*) FROM fs)",
    )
    .bind(column(&w.reserved, |r| r.0))
    .bind(column(&w.reserved, |r| r.1))
    .bind(column(&w.reserved, |r| r.2))
    .bind(column(&w.taken, |t| t.0))
    .bind(column(&w.taken, |t| t.1))
    .bind(column(&w.purchases, |p| p.0))
    .bind(column(&w.purchases, |p| p.1))
    .bind(column(&w.purchases, |p| p.2.max(0)))
    .bind(column(w.reservations, |r| r.user_id))
    .bind(column(w.reservations, |r| r.id))
    .bind(column(w.reservations, |r| r.status.clone()))
    .bind(column(w.reservations, |r| r.flash_sale_id))
    .bind(column(w.reservations, |r| r.expires_at))
    .bind(column(w.reservations, |r| r.created_at))
    .bind(column(w.reservations, |r| r.updated_at))
    .bind(column(w.lines, |l| l.user_id))
    .bind(column(w.lines, |l| l.reservation_id))
    .bind(column(w.lines, |l| l.variant_id))
    .bind(column(w.lines, |l| l.location_id))
    .bind(column(w.lines, |l| l.quantity))
    .bind(column(w.lines, |l| l.unit_price_minor))
    .bind(column(w.lines, |l| l.currency.clone()))
    .bind(column(&holds, |h| h.0))
    .bind(column(&holds, |h| h.1))
    .bind(column(&holds, |h| h.2))
    .fetch_one(&mut *c)
    .await?;
    Ok(usize::try_from(updated).ok() == Some(w.reserved.len())
        && usize::try_from(taken).ok() == Some(w.taken.len()))
}

/// One column of rows, as an array parameter.
fn column<R, T>(rows: &[R], field: impl Fn(&R) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
}

/// [`lock`], then [`read`] and the carts of the orders placed with the batch's grants.
pub async fn lock_and_read(
    tx: &mut Tx,
    statements: Statements,
    keys: &Keys<'_>,
) -> Result<(Locked, Read), StoreError> {
    let locked = lock(tx, statements, keys.variants, keys.sales).await?;
    let mut read = read(tx, statements, keys.holds, keys.purchases).await?;
    read.carts = lock_carts(tx, keys.carts).await?;
    Ok((locked, read))
}

/// The status of carts `(user, id)`, locked (PostgreSQL `FOR UPDATE`, in key order).
async fn lock_carts(tx: &mut Tx, carts: &[(Uuid, Uuid)]) -> Result<Vec<CartStatus>, StoreError> {
    if carts.is_empty() {
        return Ok(Vec::new());
    }
    let mut sorted = carts.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::with_capacity(sorted.len());
    match tx.inner() {
        TxInner::Postgres(c) => {
            let (users, ids): (Vec<Uuid>, Vec<Uuid>) = sorted.into_iter().unzip();
            out = sqlx::query_as(
                "SELECT c.user_id, c.id, c.status, c.version FROM carts c \
                  WHERE (c.user_id, c.id) IN (SELECT * FROM UNNEST($1::uuid[], $2::uuid[])) \
                  ORDER BY c.user_id, c.id FOR UPDATE",
            )
            .bind(users)
            .bind(ids)
            .fetch_all(&mut **c)
            .await?;
        }
        TxInner::Sqlite(_) => {
            // One statement by id (`carts_by_id`); the user is checked here.
            for chunk in sorted.chunks(256) {
                let ids: Vec<Uuid> = chunk.iter().map(|c| c.1).collect();
                let rows: Vec<CartStatus> = on_tx!(tx, c => {
                    let mut qb = sqlx::QueryBuilder::new(
                        "SELECT user_id, id, status, version FROM carts WHERE id IN (",
                    );
                    let mut list = qb.separated(", ");
                    for id in crate::shapes::padded(&ids) {
                        list.push_bind(*id);
                    }
                    qb.push(")");
                    qb.build_query_as().fetch_all(c).await
                })?;
                out.extend(
                    rows.into_iter()
                        .filter(|r| chunk.binary_search(&(r.user_id, r.id)).is_ok()),
                );
            }
        }
    }
    Ok(out)
}

/// A cart's status and version, read under the batch's lock.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CartStatus {
    pub user_id: Uuid,
    pub id: Uuid,
    pub status: String,
    pub version: i64,
}

/// What a batch locks and reads: its SKUs and sales, and the (user, SKU) holds and (sale,
/// user) purchases of its buyers.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a> {
    pub variants: &'a [Uuid],
    pub sales: &'a [Uuid],
    pub holds: &'a [(Uuid, Uuid)],
    pub purchases: &'a [(Uuid, Uuid)],
    /// (user, cart) of the orders placed with the batch's grants, locked after the rest.
    pub carts: &'a [(Uuid, Uuid)],
}
