//! The three steps of an engine batch, as few statements as each backend allows.
//!
//! A batch holds its locks from the first step to its commit, so every round trip in between
//! is time other batches of the same SKU wait. On PostgreSQL each step is one statement:
//! [`lock`] takes the stock rows and the sales, [`read`] reads the buyers' holds and
//! purchases under those locks (a separate statement, so that it sees what the batch before
//! committed while this one waited for the locks), and [`write`] applies every conditional
//! update and inserts every row in data-modifying CTEs fed by arrays, whose text never changes
//! and so stays prepared. SQLite has a single writer, which already excludes every other
//! batch, and no data-modifying CTEs: there the locks and reads go in one round trip
//! ([`lock_and_read`]) and the writes in another, each a multi-statement query of padded
//! `VALUES` lists, so that a batch holds the writer for two round trips whatever its size.
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
use crate::{StoreError, Tx};

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
    let applied = if matches!(tx.inner(), TxInner::Sqlite(_)) && statements == Statements::Folded {
        sqlite::write(tx, &w).await?
    } else {
        write_own(tx, statements, &w).await?
    };
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

/// [`lock`] then [`read`]; on SQLite with [`Statements::Folded`], both in one round trip.
///
/// SQLite's single writer already excludes every other batch, so there the reads need not
/// wait for locks and go together: the batch holds the writer for two round trips (this
/// and [`write`]) whatever its size, where one statement per table and SKU held it for
/// about twenty in a checkout's batch.
pub async fn lock_and_read(
    tx: &mut Tx,
    statements: Statements,
    keys: &Keys<'_>,
) -> Result<(Locked, Read), StoreError> {
    if matches!(tx.inner(), TxInner::Sqlite(_)) && statements == Statements::Folded {
        return sqlite::lock_and_read(tx, keys).await;
    }
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
                "SELECT c.user_id, c.id, c.status FROM carts c \
                  WHERE (c.user_id, c.id) IN (SELECT * FROM UNNEST($1::uuid[], $2::uuid[])) \
                  ORDER BY c.user_id, c.id FOR UPDATE",
            )
            .bind(users)
            .bind(ids)
            .fetch_all(&mut **c)
            .await?;
        }
        TxInner::Sqlite(_) => {
            for (user, id) in sorted {
                let mut reads = crate::reads::Reads::new();
                let i = reads.push(
                    "SELECT user_id, id, status FROM carts WHERE user_id = $1 AND id = $2",
                    crate::values![user, id],
                );
                out.extend(reads.run(tx).await?.one::<CartStatus>(i)?);
            }
        }
    }
    Ok(out)
}

/// A cart's status, read under the batch's lock.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CartStatus {
    pub user_id: Uuid,
    pub id: Uuid,
    pub status: String,
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

/// The SQLite batch in two round trips: every statement of a step sent at once.
mod sqlite {
    use super::{CartStatus, Keys, Locked, Read, Writes};
    use crate::reads::Reads;
    use crate::reservations::{FlashSaleRow, HoldRow, LevelRow, SALE_COLUMNS};
    use crate::writes::Value;
    use crate::{StoreError, Tx, shapes};
    use uuid::Uuid;

    /// Most rows in one `VALUES` list or values in one `IN` list (a power of two).
    const ROWS: usize = 128;

    /// `$1, $2, …, $n`.
    fn list(n: usize) -> String {
        (1..=n)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `VALUES ($1, $2), ($3, $4), …`: `rows` rows of `columns` parameters.
    fn values_list(rows: usize, columns: usize) -> String {
        let rows: Vec<String> = (0..rows)
            .map(|r| {
                let row: Vec<String> = (1..=columns)
                    .map(|c| format!("${}", r * columns + c))
                    .collect();
                format!("({})", row.join(", "))
            })
            .collect();
        format!("VALUES {}", rows.join(", "))
    }

    /// Padded rows of `chunk` as parameters, `columns` values each (NULL for padding).
    fn padded_values<T>(
        chunk: &[T],
        columns: impl Fn(Option<&T>) -> Vec<Value>,
    ) -> (usize, Vec<Value>) {
        let rows: Vec<Option<&T>> = shapes::padded_rows(chunk).collect();
        let n = rows.len();
        (n, rows.into_iter().flat_map(columns).collect())
    }

    pub(super) async fn lock_and_read(
        tx: &mut Tx,
        keys: &Keys<'_>,
    ) -> Result<(Locked, Read), StoreError> {
        let mut reads = Reads::new();
        let mut levels = Vec::new();
        for chunk in keys.variants.chunks(ROWS) {
            let ids: Vec<Value> = shapes::padded(chunk).map(|v| Value::from(*v)).collect();
            levels.push(reads.push(
                format!(
                    "SELECT variant_id, location_id, on_hand, reserved FROM stock_levels \
                     WHERE variant_id IN ({}) ORDER BY variant_id, location_id",
                    list(ids.len())
                ),
                ids,
            ));
        }
        let mut sales = Vec::new();
        for chunk in keys.sales.chunks(ROWS) {
            let ids: Vec<Value> = shapes::padded(chunk).map(|v| Value::from(*v)).collect();
            sales.push(reads.push(
                format!(
                    "SELECT {SALE_COLUMNS} FROM flash_sales WHERE id IN ({}) ORDER BY id",
                    list(ids.len())
                ),
                ids,
            ));
        }
        let mut holds = Vec::new();
        for chunk in keys.holds.chunks(ROWS) {
            let (n, values) = padded_values(chunk, |p| {
                vec![p.map(|p| p.0).into(), p.map(|p| p.1).into()]
            });
            holds.push(reads.push(
                format!(
                    "SELECT h.user_id, h.variant_id, h.reservation_id FROM ({}) AS p \
                     JOIN reservation_holds h ON h.user_id = p.column1 AND h.variant_id = p.column2",
                    values_list(n, 2)
                ),
                values,
            ));
        }
        let mut purchases = Vec::new();
        for chunk in keys.purchases.chunks(ROWS) {
            let (n, values) = padded_values(chunk, |p| {
                vec![p.map(|p| p.0).into(), p.map(|p| p.1).into()]
            });
            purchases.push(reads.push(
                format!(
                    "SELECT f.flash_sale_id, f.user_id, f.quantity FROM ({}) AS p \
                     JOIN flash_sale_purchases f ON f.flash_sale_id = p.column1 AND f.user_id = p.column2",
                    values_list(n, 2)
                ),
                values,
            ));
        }
        let mut carts = Vec::new();
        for chunk in keys.carts.chunks(ROWS) {
            let (n, values) = padded_values(chunk, |p| {
                vec![p.map(|p| p.0).into(), p.map(|p| p.1).into()]
            });
            carts.push(reads.push(
                format!(
                    "SELECT c.user_id, c.id, c.status FROM ({}) AS p \
                     JOIN carts c ON c.user_id = p.column1 AND c.id = p.column2",
                    values_list(n, 2)
                ),
                values,
            ));
        }
        if reads.is_empty() {
            return Ok((Locked::default(), Read::default()));
        }
        let rows = reads.run(tx).await?;
        let mut locked = Locked::default();
        for i in levels {
            locked.levels.extend(rows.decode::<LevelRow>(i)?);
        }
        for i in sales {
            locked.sales.extend(rows.decode::<FlashSaleRow>(i)?);
        }
        let mut read = Read::default();
        for i in holds {
            read.holds.extend(rows.decode::<HoldRow>(i)?);
        }
        for i in purchases {
            read.purchases.extend(rows.decode::<(Uuid, Uuid, i64)>(i)?);
        }
        for i in carts {
            read.carts.extend(rows.decode::<CartStatus>(i)?);
        }
        Ok((locked, read))
    }

    /// Every write of the batch in one round trip. False when a conditional update found
    /// its row changed under the batch's lock (nothing of the batch may then be kept).
    pub(super) async fn write(tx: &mut Tx, w: &Writes<'_>) -> Result<bool, StoreError> {
        let mut writes = crate::Writes::new();
        let mut conditional = Vec::new();
        for chunk in w.reserved.chunks(ROWS) {
            let (n, values) = padded_values(chunk, |r| {
                vec![
                    r.map(|r| r.0).into(),
                    r.map(|r| r.1).into(),
                    r.map(|r| r.2).into(),
                ]
            });
            // Each level comes once in `reserved`, so each row joins one `d` row at most.
            let at = writes.push(
                format!(
                    "UPDATE stock_levels SET reserved = reserved + d.column3 FROM ({}) AS d \
                     WHERE stock_levels.variant_id = d.column1 AND stock_levels.location_id = d.column2 \
                       AND stock_levels.on_hand - stock_levels.reserved >= d.column3 \
                       AND stock_levels.reserved + d.column3 >= 0",
                    values_list(n, 3)
                ),
                values,
            );
            conditional.push((at, chunk.len()));
        }
        for &(sale, quantity) in &w.taken {
            let at = writes.push(
                "UPDATE flash_sales SET remaining = remaining - $2 \
                 WHERE id = $1 AND remaining - $2 >= 0 AND remaining - $2 <= quantity",
                crate::values![sale, quantity],
            );
            conditional.push((at, 1));
        }
        for chunk in w.purchases.chunks(ROWS) {
            let (n, values) = padded_values(chunk, |p| {
                vec![
                    p.map(|p| p.1).into(),
                    p.map(|p| p.0).into(),
                    p.map(|p| p.2.max(0)).into(),
                ]
            });
            writes.push(
                format!(
                    "{}{}{} ON CONFLICT (user_id, flash_sale_id) \
                     DO UPDATE SET quantity = flash_sale_purchases.quantity + excluded.quantity",
                    shapes::insert_from_values(
                        "flash_sale_purchases",
                        "user_id, flash_sale_id, quantity"
                    ),
                    values_list(n, 3),
                    shapes::VALUES_KEPT
                ),
                values,
            );
        }
        for chunk in w.reservations.chunks(ROWS) {
            let (n, values) = padded_values(chunk, |r| {
                vec![
                    r.map(|r| r.user_id).into(),
                    r.map(|r| r.id).into(),
                    r.map(|r| r.status.clone()).into(),
                    r.and_then(|r| r.flash_sale_id).into(),
                    r.map(|r| r.expires_at).into(),
                    r.map(|r| r.created_at).into(),
                    r.map(|r| r.updated_at).into(),
                ]
            });
            writes.push(
                format!(
                    "{}{}{}",
                    shapes::insert_from_values(
                        "reservations",
                        crate::reservations::RESERVATION_COLUMNS
                    ),
                    values_list(n, 7),
                    shapes::VALUES_KEPT
                ),
                values,
            );
        }
        for chunk in w.lines.chunks(ROWS) {
            let (n, values) = padded_values(chunk, |l| {
                vec![
                    l.map(|l| l.user_id).into(),
                    l.map(|l| l.reservation_id).into(),
                    l.map(|l| l.variant_id).into(),
                    l.map(|l| l.location_id).into(),
                    l.map(|l| l.quantity).into(),
                    l.and_then(|l| l.unit_price_minor).into(),
                    l.and_then(|l| l.currency.clone()).into(),
                ]
            });
            writes.push(
                format!(
                    "{}{}{}",
                    shapes::insert_from_values(
                        "reservation_lines",
                        "user_id, reservation_id, variant_id, location_id, quantity, unit_price_minor, currency"
                    ),
                    values_list(n, 7),
                    shapes::VALUES_KEPT
                ),
                values,
            );
        }
        let mut holds: Vec<(Uuid, Uuid, Uuid)> = w
            .lines
            .iter()
            .map(|l| (l.user_id, l.variant_id, l.reservation_id))
            .collect();
        holds.sort_unstable();
        holds.dedup();
        for chunk in holds.chunks(ROWS) {
            let (n, values) = padded_values(chunk, |h| {
                vec![
                    h.map(|h| h.0).into(),
                    h.map(|h| h.1).into(),
                    h.map(|h| h.2).into(),
                ]
            });
            writes.push(
                format!(
                    "{}{}{}",
                    shapes::insert_from_values(
                        "reservation_holds",
                        "user_id, variant_id, reservation_id"
                    ),
                    values_list(n, 3),
                    shapes::VALUES_KEPT
                ),
                values,
            );
        }
        let counts = writes.run(tx).await?;
        Ok(conditional
            .iter()
            .all(|&(at, rows)| counts.get(at).copied() == u64::try_from(rows).ok()))
    }
}
