//! Reservations and flash sales: the queries of the reservation engine and the reaper.
//!
//! The engine runs one transaction per batch ([`batch`]): it locks the stock rows of the
//! batch's SKUs and its sales (PostgreSQL `FOR UPDATE`, in id order so concurrent nodes never
//! deadlock; SQLite's single writer already serializes), reads holds and purchases, then
//! applies one conditional update per SKU and location and per sale and inserts every row.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::reads::{Reads, Rows};
use crate::{Backend, Db, StoreError, Tx, Writes, on_pool, on_tx, shapes, values};

pub mod batch;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LevelRow {
    pub variant_id: Uuid,
    pub location_id: Uuid,
    pub on_hand: i64,
    pub reserved: i64,
}

/// Stock rows of these variants, locked for the rest of the transaction, in a stable order.
pub async fn lock_levels(tx: &mut Tx, variants: &[Uuid]) -> Result<Vec<LevelRow>, StoreError> {
    if variants.is_empty() {
        return Ok(Vec::new());
    }
    let lock = if tx.backend() == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    Ok(on_tx!(tx, c => {
        let mut qb = sqlx::QueryBuilder::new(
            "SELECT variant_id, location_id, on_hand, reserved FROM stock_levels WHERE variant_id IN (",
        );
        let mut list = qb.separated(", ");
        for v in shapes::padded(variants) {
            list.push_bind(*v);
        }
        qb.push(") ORDER BY variant_id, location_id");
        qb.push(lock);
        qb.build_query_as().fetch_all(c).await
    })?)
}

/// Moves `delta` units into (positive) or out of (negative) `reserved`, only while the
/// level allows it. Returns false, changing nothing, when it would oversell.
pub async fn add_reserved(
    tx: &mut Tx,
    variant: Uuid,
    location: Uuid,
    delta: i64,
) -> Result<bool, StoreError> {
    let done = on_tx!(tx, c => sqlx::query(
        "UPDATE stock_levels SET reserved = reserved + $3 \
         WHERE variant_id = $1 AND location_id = $2 AND on_hand - reserved >= $3 AND reserved + $3 >= 0",
    )
    .bind(variant)
    .bind(location)
    .bind(delta)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Queues turning reserved units into sold ones (`on_hand -= q, reserved -= q`); they must
/// be reserved.
pub fn queue_commit_reserved(w: &mut Writes, variant: Uuid, location: Uuid, quantity: i64) {
    w.push_expect(
        1,
        "reserved stock",
        "UPDATE stock_levels SET on_hand = on_hand - $3, reserved = reserved - $3 \
         WHERE variant_id = $1 AND location_id = $2 AND reserved >= $3",
        values![variant, location, quantity],
    );
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HoldRow {
    pub user_id: Uuid,
    pub variant_id: Uuid,
    pub reservation_id: Uuid,
}

/// Existing holds of these users on these variants (`(user, variant)` pairs).
pub async fn find_holds(tx: &mut Tx, pairs: &[(Uuid, Uuid)]) -> Result<Vec<HoldRow>, StoreError> {
    let mut by_variant: std::collections::BTreeMap<Uuid, Vec<Uuid>> =
        std::collections::BTreeMap::new();
    for (user, variant) in pairs {
        by_variant.entry(*variant).or_default().push(*user);
    }
    let mut found = Vec::new();
    for (variant, users) in by_variant {
        // Chunks keep the statement under SQLite's bound-parameter limit.
        for chunk in users.chunks(512) {
            let rows: Vec<HoldRow> = on_tx!(tx, c => {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT user_id, variant_id, reservation_id FROM reservation_holds WHERE variant_id = ",
                );
                qb.push_bind(variant).push(" AND user_id IN (");
                let mut list = qb.separated(", ");
                for user in shapes::padded(chunk) {
                    list.push_bind(*user);
                }
                qb.push(")");
                qb.build_query_as().fetch_all(c).await
            })?;
            found.extend(rows);
        }
    }
    Ok(found)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReservationRow {
    pub user_id: Uuid,
    pub id: Uuid,
    pub status: String,
    pub flash_sale_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LineRow {
    pub user_id: Uuid,
    pub reservation_id: Uuid,
    pub variant_id: Uuid,
    pub location_id: Uuid,
    pub quantity: i64,
    pub unit_price_minor: Option<i64>,
    pub currency: Option<String>,
}

/// Most rows one statement inserts (a power of two: see [`shapes`]).
const ROWS_PER_INSERT: usize = 128;

/// Inserts reservations with their lines and holds, [`ROWS_PER_INSERT`] rows per statement
/// (on PostgreSQL the engine writes them with [`batch::write`] instead).
pub async fn insert_reservations(
    tx: &mut Tx,
    reservations: &[ReservationRow],
    lines: &[LineRow],
) -> Result<(), StoreError> {
    let mut holds: Vec<(Uuid, Uuid, Uuid)> = lines
        .iter()
        .map(|l| (l.user_id, l.variant_id, l.reservation_id))
        .collect();
    holds.sort();
    holds.dedup();
    for chunk in reservations.chunks(ROWS_PER_INSERT) {
        on_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new(shapes::insert_from_values("reservations", RESERVATION_COLUMNS));
            qb.push_values(shapes::padded_rows(chunk), |mut b, r| {
                b.push_bind(r.map(|r| r.user_id)).push_bind(r.map(|r| r.id)).push_bind(r.map(|r| r.status.clone()))
                    .push_bind(r.and_then(|r| r.flash_sale_id)).push_bind(r.map(|r| r.expires_at))
                    .push_bind(r.map(|r| r.created_at)).push_bind(r.map(|r| r.updated_at));
            });
            qb.push(shapes::VALUES_KEPT);
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    for chunk in lines.chunks(ROWS_PER_INSERT) {
        on_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new(shapes::insert_from_values(
                "reservation_lines",
                "user_id, reservation_id, variant_id, location_id, quantity, unit_price_minor, currency",
            ));
            qb.push_values(shapes::padded_rows(chunk), |mut b, l| {
                b.push_bind(l.map(|l| l.user_id)).push_bind(l.map(|l| l.reservation_id)).push_bind(l.map(|l| l.variant_id))
                    .push_bind(l.map(|l| l.location_id)).push_bind(l.map(|l| l.quantity))
                    .push_bind(l.and_then(|l| l.unit_price_minor)).push_bind(l.and_then(|l| l.currency.clone()));
            });
            qb.push(shapes::VALUES_KEPT);
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    for chunk in holds.chunks(ROWS_PER_INSERT) {
        on_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new(shapes::insert_from_values(
                "reservation_holds",
                "user_id, variant_id, reservation_id",
            ));
            qb.push_values(shapes::padded_rows(chunk), |mut b, h| {
                b.push_bind(h.map(|h| h.0)).push_bind(h.map(|h| h.1)).push_bind(h.map(|h| h.2));
            });
            qb.push(shapes::VALUES_KEPT);
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

const RESERVATION_COLUMNS: &str =
    "user_id, id, status, flash_sale_id, expires_at, created_at, updated_at";

pub async fn find_reservation(
    db: &Db,
    user: Uuid,
    id: Uuid,
) -> Result<Option<(ReservationRow, Vec<LineRow>)>, StoreError> {
    let sql =
        format!("SELECT {RESERVATION_COLUMNS} FROM reservations WHERE user_id = $1 AND id = $2");
    let row: Option<ReservationRow> = on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(user).bind(id).fetch_optional(p).await)?;
    let Some(row) = row else { return Ok(None) };
    let lines = on_pool!(db, p => sqlx::query_as(
        "SELECT user_id, reservation_id, variant_id, location_id, quantity, unit_price_minor, currency \
         FROM reservation_lines WHERE user_id = $1 AND reservation_id = $2 ORDER BY variant_id, location_id",
    )
    .bind(user)
    .bind(id)
    .fetch_all(p)
    .await)?;
    Ok(Some((row, lines)))
}

/// The reservation and its lines, locked for a change of state.
pub async fn lock_reservation(
    tx: &mut Tx,
    user: Uuid,
    id: Uuid,
) -> Result<Option<(ReservationRow, Vec<LineRow>)>, StoreError> {
    let mut reads = Reads::new();
    let locked = reads.push(lock_reservation_sql(tx.backend(), "$2"), values![user, id]);
    read_locked(&reads.run(tx).await?, locked)
}

/// [`lock_reservation`]'s statement for the reservation of user `$1` whose id `id_sql`
/// gives: one round trip, the reservation's columns come with each of its lines.
pub(crate) fn lock_reservation_sql(backend: Backend, id_sql: &str) -> String {
    let lock = if backend == Backend::Postgres {
        " FOR UPDATE OF r"
    } else {
        ""
    };
    format!(
        "SELECT r.user_id, r.id, r.status, r.flash_sale_id, r.expires_at, r.created_at, r.updated_at, \
         l.reservation_id, l.variant_id, l.location_id, l.quantity, l.unit_price_minor, l.currency \
         FROM reservations r JOIN reservation_lines l ON l.user_id = r.user_id AND l.reservation_id = r.id \
         WHERE r.user_id = $1 AND r.id = {id_sql} ORDER BY l.variant_id, l.location_id{lock}"
    )
}

/// The reservation and its lines from the rows of [`lock_reservation_sql`], statement `i`.
pub(crate) fn read_locked(
    rows: &Rows,
    i: usize,
) -> Result<Option<(ReservationRow, Vec<LineRow>)>, StoreError> {
    let rows: Vec<ReservationWithLine> = rows.decode(i)?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let row = first.reservation.clone();
    Ok(Some((row, rows.into_iter().map(|r| r.line).collect())))
}

/// A row of [`lock_reservation`]'s join.
#[derive(sqlx::FromRow)]
struct ReservationWithLine {
    #[sqlx(flatten)]
    reservation: ReservationRow,
    #[sqlx(flatten)]
    line: LineRow,
}

/// Ends an active reservation (committed, released or expired): its holds go, its lines
/// become inactive. Returns false when it was not active any more.
pub async fn end_reservation(
    tx: &mut Tx,
    user: Uuid,
    id: Uuid,
    status: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut w = Writes::new();
    w.push(END_RESERVATION, values![user, id, status, now]);
    if w.run(tx).await? != [1] {
        return Ok(false);
    }
    let mut w = Writes::new();
    queue_end_lines(&mut w, user, id);
    w.run(tx).await?;
    Ok(true)
}

/// Queues ending a reservation the transaction has locked while active.
pub fn queue_end_reservation(
    w: &mut Writes,
    user: Uuid,
    id: Uuid,
    status: &str,
    now: DateTime<Utc>,
) {
    w.push_expect(
        1,
        "active reservation",
        END_RESERVATION,
        values![user, id, status, now],
    );
    queue_end_lines(w, user, id);
}

const END_RESERVATION: &str = "UPDATE reservations SET status = $3, updated_at = $4 \
     WHERE user_id = $1 AND id = $2 AND status = 'active'";

fn queue_end_lines(w: &mut Writes, user: Uuid, id: Uuid) {
    w.push(
        "UPDATE reservation_lines SET active = FALSE WHERE user_id = $1 AND reservation_id = $2",
        values![user, id],
    );
    w.push(
        "DELETE FROM reservation_holds WHERE user_id = $1 AND reservation_id = $2",
        values![user, id],
    );
}

pub async fn set_expiry(
    tx: &mut Tx,
    user: Uuid,
    id: Uuid,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = on_tx!(tx, c => sqlx::query(
        "UPDATE reservations SET expires_at = $3, updated_at = $4 WHERE user_id = $1 AND id = $2 AND status = 'active'",
    )
    .bind(user)
    .bind(id)
    .bind(expires_at)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Active reservations whose time is up, oldest deadline first.
pub async fn overdue(
    tx: &mut Tx,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
    // SKIP LOCKED: two nodes reaping at once split the work instead of queueing on it.
    let lock = if tx.backend() == Backend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!(
        "SELECT user_id, id FROM reservations WHERE status = 'active' AND expires_at <= $1 ORDER BY expires_at LIMIT $2{lock}"
    );
    Ok(
        on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(now).bind(i64::from(limit)).fetch_all(c).await)?,
    )
}

/// The earliest deadline of any active reservation.
pub async fn next_deadline(db: &Db) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_scalar("SELECT MIN(expires_at) FROM reservations WHERE status = 'active'")
        .fetch_one(p)
        .await)?,
    )
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FlashSaleRow {
    pub id: Uuid,
    pub variant_id: Uuid,
    pub price_minor: i64,
    pub currency: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub quantity: i64,
    pub remaining: i64,
    pub per_customer_limit: i64,
    pub location_id: Uuid,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const SALE_COLUMNS: &str = "id, variant_id, price_minor, currency, starts_at, ends_at, quantity, remaining, \
    per_customer_limit, location_id, closed_at, created_at";

pub async fn insert_flash_sale(tx: &mut Tx, s: &FlashSaleRow) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO flash_sales (id, variant_id, price_minor, currency, starts_at, ends_at, quantity, remaining, \
         per_customer_limit, location_id, closed_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(s.id)
    .bind(s.variant_id)
    .bind(s.price_minor)
    .bind(&s.currency)
    .bind(s.starts_at)
    .bind(s.ends_at)
    .bind(s.quantity)
    .bind(s.remaining)
    .bind(s.per_customer_limit)
    .bind(s.location_id)
    .bind(s.closed_at)
    .bind(s.created_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn find_flash_sale(db: &Db, id: Uuid) -> Result<Option<FlashSaleRow>, StoreError> {
    let sql = format!("SELECT {SALE_COLUMNS} FROM flash_sales WHERE id = $1");
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(p).await)?,
    )
}

pub async fn lock_flash_sale(tx: &mut Tx, id: Uuid) -> Result<Option<FlashSaleRow>, StoreError> {
    let lock = if tx.backend() == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let sql = format!("SELECT {SALE_COLUMNS} FROM flash_sales WHERE id = $1{lock}");
    Ok(
        on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(c).await)?,
    )
}

/// Takes `delta` units from (negative) or gives them back to (positive) a sale's remaining
/// units, within `0..=quantity`.
pub async fn add_sale_remaining(tx: &mut Tx, id: Uuid, delta: i64) -> Result<bool, StoreError> {
    let done = on_tx!(tx, c => sqlx::query(
        "UPDATE flash_sales SET remaining = remaining + $2 WHERE id = $1 AND remaining + $2 >= 0 AND remaining + $2 <= quantity",
    )
    .bind(id)
    .bind(delta)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Units each of these users has taken from the sale.
pub async fn sale_purchases(
    tx: &mut Tx,
    sale: Uuid,
    users: &[Uuid],
) -> Result<Vec<(Uuid, i64)>, StoreError> {
    let mut out = Vec::new();
    for chunk in users.chunks(512) {
        let rows: Vec<(Uuid, i64)> = on_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new("SELECT user_id, quantity FROM flash_sale_purchases WHERE flash_sale_id = ");
            qb.push_bind(sale).push(" AND user_id IN (");
            let mut list = qb.separated(", ");
            for u in shapes::padded(chunk) {
                list.push_bind(*u);
            }
            qb.push(")");
            qb.build_query_as().fetch_all(c).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// Adds units to users' purchase counts for a sale (negative gives them back).
pub async fn add_sale_purchases(
    tx: &mut Tx,
    sale: Uuid,
    deltas: &[(Uuid, i64)],
) -> Result<(), StoreError> {
    for chunk in deltas.chunks(256) {
        on_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new(shapes::insert_from_values(
                "flash_sale_purchases",
                "user_id, flash_sale_id, quantity",
            ));
            qb.push_values(shapes::padded_rows(chunk), |mut b, d| {
                b.push_bind(d.map(|(user, _)| *user)).push_bind(d.map(|_| sale)).push_bind(d.map(|(_, q)| (*q).max(0)));
            });
            qb.push(shapes::VALUES_KEPT);
            qb.push(" ON CONFLICT (user_id, flash_sale_id) DO UPDATE SET quantity = flash_sale_purchases.quantity + excluded.quantity");
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Sums for the stock equation: (on_hand, reserved) over all levels, units held by active
/// reservation lines, and units still earmarked by open sales.
pub async fn stock_totals(db: &Db) -> Result<(i64, i64, i64, i64), StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT \
           CAST(COALESCE((SELECT SUM(on_hand) FROM stock_levels), 0) AS BIGINT), \
           CAST(COALESCE((SELECT SUM(reserved) FROM stock_levels), 0) AS BIGINT), \
           CAST(COALESCE((SELECT SUM(quantity) FROM reservation_lines WHERE active), 0) AS BIGINT), \
           CAST(COALESCE((SELECT SUM(remaining) FROM flash_sales WHERE closed_at IS NULL), 0) AS BIGINT)",
    )
    .fetch_one(p)
    .await)?)
}

/// Open sales whose window has passed, locked.
pub async fn ended_sales(tx: &mut Tx, now: DateTime<Utc>) -> Result<Vec<FlashSaleRow>, StoreError> {
    let lock = if tx.backend() == Backend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {SALE_COLUMNS} FROM flash_sales WHERE closed_at IS NULL AND ends_at <= $1 ORDER BY ends_at LIMIT 100{lock}"
    );
    Ok(
        on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(now).fetch_all(c).await)?,
    )
}

/// Marks a sale closed: its remaining units are no longer earmarked.
pub async fn close_sale(tx: &mut Tx, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let done = on_tx!(tx, c => sqlx::query("UPDATE flash_sales SET closed_at = $2 WHERE id = $1 AND closed_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// The earliest end of an open sale.
pub async fn next_sale_end(db: &Db) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_scalar("SELECT MIN(ends_at) FROM flash_sales WHERE closed_at IS NULL")
        .fetch_one(p)
        .await)?,
    )
}

/// The sum of every ledger entry (equals the sum of on-hand stock).
pub async fn ledger_total(db: &Db) -> Result<i64, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_scalar("SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM stock_movements")
        .fetch_one(p)
        .await)?,
    )
}
