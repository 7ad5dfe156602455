//! Orders, their line snapshots, per-seller fulfilment groups and returns.

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use crate::outbox::Json;
use crate::reads::Reads;
use crate::{Backend, Db, StoreError, Tx, Writes, on_pool, on_tx, values};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub user_id: Uuid,
    pub id: Uuid,
    pub cart_id: Uuid,
    pub email: String,
    pub status: String,
    pub currency: String,
    pub fx_rate_e9: i64,
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub shipping_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
    pub refunded_minor: i64,
    pub tax_mode: String,
    pub coupon_codes: String,
    pub shipping_method: String,
    pub shipping_address: Json<serde_json::Value>,
    pub reservation_id: Uuid,
    pub cancel_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

const ORDER_COLUMNS: &str = "user_id, id, cart_id, email, status, currency, fx_rate_e9, subtotal_minor, \
    discount_minor, shipping_minor, tax_minor, total_minor, refunded_minor, tax_mode, coupon_codes, \
    shipping_method, shipping_address, reservation_id, cancel_reason, created_at, updated_at, paid_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderLineRow {
    pub user_id: Uuid,
    pub order_id: Uuid,
    pub line_no: i32,
    pub variant_id: Uuid,
    pub product_id: Uuid,
    pub seller_id: Uuid,
    pub sku: String,
    pub title: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
    pub discount_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FulfilmentRow {
    pub user_id: Uuid,
    pub order_id: Uuid,
    pub seller_id: Uuid,
    pub status: String,
    pub carrier: Option<String>,
    pub tracking: Option<String>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Queues the order, its line snapshots and one fulfilment group per seller.
pub fn queue_insert_order(w: &mut Writes, o: &OrderRow, lines: &[OrderLineRow]) {
    w.push(
        format!(
            "INSERT INTO orders ({ORDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
        ),
        values![
            o.user_id,
            o.id,
            o.cart_id,
            &o.email,
            &o.status,
            &o.currency,
            o.fx_rate_e9,
            o.subtotal_minor,
            o.discount_minor,
            o.shipping_minor,
            o.tax_minor,
            o.total_minor,
            o.refunded_minor,
            &o.tax_mode,
            &o.coupon_codes,
            &o.shipping_method,
            &o.shipping_address,
            o.reservation_id,
            &o.cancel_reason,
            o.created_at,
            o.updated_at,
            o.paid_at,
        ],
    );
    const LINE: usize = 13;
    let mut sql = String::from(
        "INSERT INTO order_lines (user_id, order_id, line_no, variant_id, product_id, seller_id, \
         sku, title, quantity, unit_price_minor, discount_minor, tax_minor, total_minor) VALUES ",
    );
    let mut values = Vec::with_capacity(lines.len() * LINE);
    for (i, l) in lines.iter().enumerate() {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        let params: Vec<String> = (1..=LINE).map(|k| format!("${}", i * LINE + k)).collect();
        sql.push_str(&params.join(", "));
        sql.push(')');
        values.extend(values![
            l.user_id,
            l.order_id,
            l.line_no,
            l.variant_id,
            l.product_id,
            l.seller_id,
            &l.sku,
            &l.title,
            l.quantity,
            l.unit_price_minor,
            l.discount_minor,
            l.tax_minor,
            l.total_minor,
        ]);
    }
    if !lines.is_empty() {
        w.push(sql, values);
    }
    let mut sellers: Vec<Uuid> = lines.iter().map(|l| l.seller_id).collect();
    sellers.sort();
    sellers.dedup();
    let mut sql =
        String::from("INSERT INTO fulfilments (user_id, order_id, seller_id, status) VALUES ");
    let mut values = values![o.user_id, o.id];
    for (i, seller) in sellers.iter().enumerate() {
        sql.push_str(if i == 0 { "" } else { ", " });
        sql.push_str(&format!("($1, $2, ${}, 'pending')", i + 3));
        values.push((*seller).into());
    }
    if !sellers.is_empty() {
        w.push(sql, values);
    }
}

/// The order of this customer for this cart: the live one when there is one, else the
/// newest cancelled one (a cart reopens after a failed payment and may be ordered again).
pub async fn order_for_cart(
    db: &Db,
    user: Uuid,
    cart: Uuid,
) -> Result<Option<OrderRow>, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND cart_id = $2 \
         ORDER BY (status = 'cancelled'), id DESC LIMIT 1"
    )))
    .bind(user)
    .bind(cart)
    .fetch_optional(p)
    .await)?,
    )
}

pub async fn find_order(db: &Db, user: Uuid, id: Uuid) -> Result<Option<OrderRow>, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND id = $2"
    )))
    .bind(user)
    .bind(id)
    .fetch_optional(p)
    .await)?,
    )
}

/// An order by id alone (admins and sellers do not know the customer).
pub async fn find_order_by_id(db: &Db, id: Uuid) -> Result<Option<OrderRow>, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(p)
    .await)?,
    )
}

/// The order, locked for a change of state (PostgreSQL `FOR UPDATE`; SQLite's writer
/// already serializes).
pub async fn lock_order(tx: &mut Tx, user: Uuid, id: Uuid) -> Result<Option<OrderRow>, StoreError> {
    let mut reads = Reads::new();
    let order = reads.push(lock_order_sql(tx.backend(), "$2"), values![user, id]);
    reads.run(tx).await?.one(order)
}

/// [`lock_order`]'s statement for the order of user `$1` whose id `id_sql` gives.
pub(crate) fn lock_order_sql(backend: Backend, id_sql: &str) -> String {
    let lock = if backend == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    format!("SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND id = {id_sql}{lock}")
}

/// Moves an order from `from` to `to`; false when it was no longer in `from`.
pub async fn set_status(
    tx: &mut Tx,
    user: Uuid,
    id: Uuid,
    from: &str,
    to: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut w = Writes::new();
    w.push(SET_STATUS, values![user, id, from, to, at]);
    Ok(w.run(tx).await? == [1])
}

/// Queues the move of an order locked in `from` to `to`.
pub fn queue_set_status(
    w: &mut Writes,
    user: Uuid,
    id: Uuid,
    from: &str,
    to: &str,
    at: DateTime<Utc>,
) {
    w.push_expect(
        1,
        "order status",
        SET_STATUS,
        values![user, id, from, to, at],
    );
}

const SET_STATUS: &str = "UPDATE orders SET status = $4, updated_at = $5, \
     paid_at = CASE WHEN $4 = 'paid' THEN $5 ELSE paid_at END \
     WHERE user_id = $1 AND id = $2 AND status = $3";

pub async fn set_cancel_reason(
    tx: &mut Tx,
    user: Uuid,
    id: Uuid,
    reason: &str,
) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query("UPDATE orders SET cancel_reason = $3 WHERE user_id = $1 AND id = $2")
        .bind(user).bind(id).bind(reason)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn add_refunded(
    tx: &mut Tx,
    user: Uuid,
    id: Uuid,
    amount: i64,
) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query("UPDATE orders SET refunded_minor = refunded_minor + $3 WHERE user_id = $1 AND id = $2")
        .bind(user).bind(id).bind(amount)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

const LINES_OF_ORDER: &str = "SELECT user_id, order_id, line_no, variant_id, product_id, seller_id, sku, \
    title, quantity, unit_price_minor, discount_minor, tax_minor, total_minor FROM order_lines \
    WHERE user_id = $1 AND order_id = $2 ORDER BY line_no";

const FULFILMENTS_OF_ORDER: &str = "SELECT user_id, order_id, seller_id, status, carrier, tracking, \
    shipped_at, delivered_at FROM fulfilments WHERE user_id = $1 AND order_id = $2 ORDER BY seller_id";

pub async fn lines(db: &Db, user: Uuid, order: Uuid) -> Result<Vec<OrderLineRow>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        LINES_OF_ORDER,
    )
    .bind(user).bind(order)
    .fetch_all(p)
    .await)?)
}

pub async fn lines_in_tx(
    tx: &mut Tx,
    user: Uuid,
    order: Uuid,
) -> Result<Vec<OrderLineRow>, StoreError> {
    Ok(on_tx!(tx, c => sqlx::query_as(
        LINES_OF_ORDER,
    )
    .bind(user).bind(order)
    .fetch_all(c)
    .await)?)
}

pub async fn fulfilments_in_tx(
    tx: &mut Tx,
    user: Uuid,
    order: Uuid,
) -> Result<Vec<FulfilmentRow>, StoreError> {
    Ok(on_tx!(tx, c => sqlx::query_as(
        FULFILMENTS_OF_ORDER,
    )
    .bind(user).bind(order)
    .fetch_all(c)
    .await)?)
}

/// Marks a seller's group shipped (from pending) or delivered (from shipped).
pub async fn update_fulfilment(
    tx: &mut Tx,
    f: &FulfilmentRow,
    from: &str,
) -> Result<bool, StoreError> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE fulfilments SET status = $4, carrier = $5, tracking = $6, shipped_at = $7, delivered_at = $8 \
         WHERE user_id = $1 AND order_id = $2 AND seller_id = $3 AND status = $9",
    )
    .bind(f.user_id).bind(f.order_id).bind(f.seller_id).bind(&f.status).bind(&f.carrier)
    .bind(&f.tracking).bind(f.shipped_at).bind(f.delivered_at).bind(from)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Filters of the order lists; every one optional.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub user_id: Option<Uuid>,
    pub seller_id: Option<Uuid>,
    pub email: Option<String>,
    pub status: Option<String>,
    pub id: Option<Uuid>,
    /// Orders older than this id (UUIDv7 order = time order): keyset paging.
    pub before: Option<Uuid>,
    pub limit: i64,
}

pub async fn list_orders(db: &Db, f: &OrderFilter) -> Result<Vec<OrderRow>, StoreError> {
    Ok(on_pool!(db, p => {
        let mut qb = sqlx::QueryBuilder::new(format!("SELECT {ORDER_COLUMNS} FROM orders o WHERE 1 = 1"));
        if let Some(u) = f.user_id {
            qb.push(" AND o.user_id = ").push_bind(u);
        }
        if let Some(s) = f.seller_id {
            qb.push(" AND o.id IN (SELECT order_id FROM order_lines WHERE seller_id = ").push_bind(s).push(")");
        }
        if let Some(e) = &f.email {
            qb.push(" AND o.email = ").push_bind(e.clone());
        }
        if let Some(s) = &f.status {
            qb.push(" AND o.status = ").push_bind(s.clone());
        }
        if let Some(id) = f.id {
            qb.push(" AND o.id = ").push_bind(id);
        }
        if let Some(b) = f.before {
            qb.push(" AND o.id < ").push_bind(b);
        }
        qb.push(" ORDER BY o.id DESC LIMIT ").push_bind(f.limit);
        qb.build_query_as().fetch_all(p).await
    })?)
}

/// Orders still waiting for payment that were created before `before`.
pub async fn stale_pending(
    db: &Db,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT user_id, id FROM orders WHERE status = 'pending_payment' AND created_at < $1 ORDER BY created_at LIMIT $2",
    )
    .bind(before).bind(limit)
    .fetch_all(p)
    .await)?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReturnRow {
    pub user_id: Uuid,
    pub id: Uuid,
    pub order_id: Uuid,
    pub status: String,
    pub lines: Json<serde_json::Value>,
    pub reason: String,
    pub amount_minor: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn insert_return(tx: &mut Tx, r: &ReturnRow) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO returns (user_id, id, order_id, status, lines, reason, amount_minor, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(r.user_id).bind(r.id).bind(r.order_id).bind(&r.status).bind(&r.lines).bind(&r.reason)
    .bind(r.amount_minor).bind(r.created_at).bind(r.updated_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn find_return(tx: &mut Tx, id: Uuid) -> Result<Option<ReturnRow>, StoreError> {
    Ok(on_tx!(tx, c => sqlx::query_as(
        "SELECT user_id, id, order_id, status, lines, reason, amount_minor, created_at, updated_at FROM returns WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(c)
    .await)?)
}

/// An order with everything its detail shows, read as of one snapshot.
#[derive(Debug, Clone)]
pub struct OrderDetail {
    pub order: OrderRow,
    pub lines: Vec<OrderLineRow>,
    pub fulfilments: Vec<FulfilmentRow>,
    pub payments: Vec<crate::payments::PaymentRow>,
    pub returns: Vec<ReturnRow>,
}

/// The order `id` of `user` with its lines, fulfilments, payments and returns, in one round
/// trip on SQLite.
pub async fn order_detail(
    db: &Db,
    user: Uuid,
    id: Uuid,
) -> Result<Option<OrderDetail>, StoreError> {
    let mut reads = Reads::new();
    let order = reads.push(
        format!("SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND id = $2"),
        values![user, id],
    );
    let lines = reads.push(LINES_OF_ORDER, values![user, id]);
    let fulfilments = reads.push(FULFILMENTS_OF_ORDER, values![user, id]);
    let payments = reads.push(crate::payments::payments_of_order_sql(), values![user, id]);
    let returns = reads.push(RETURNS_OF_ORDER, values![user, id]);
    let rows = reads.run_on(db).await?;
    let Some(order) = rows.one::<OrderRow>(order)? else {
        return Ok(None);
    };
    Ok(Some(OrderDetail {
        order,
        lines: rows.decode(lines)?,
        fulfilments: rows.decode(fulfilments)?,
        payments: rows.decode(payments)?,
        returns: rows.decode(returns)?,
    }))
}

const RETURNS_OF_ORDER: &str = "SELECT user_id, id, order_id, status, lines, reason, amount_minor, \
    created_at, updated_at FROM returns WHERE user_id = $1 AND order_id = $2 ORDER BY id";

pub async fn set_return_status(
    tx: &mut Tx,
    r: &ReturnRow,
    from: &str,
    to: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE returns SET status = $4, updated_at = $5 WHERE user_id = $1 AND id = $2 AND status = $3",
    )
    .bind(r.user_id).bind(r.id).bind(from).bind(to).bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}
