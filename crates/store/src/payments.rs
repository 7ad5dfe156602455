//! Payments at providers, the provider events applied to them, and refunds.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::orders::OrderRow;
use crate::reads::Reads;
use crate::reservations::{LineRow, ReservationRow};
use crate::{Backend, Db, StoreError, Tx, Writes, on_pool, on_tx, values};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRow {
    pub user_id: Uuid,
    pub id: Uuid,
    pub order_id: Uuid,
    pub provider: String,
    pub provider_ref: Option<String>,
    pub status: String,
    pub amount_minor: i64,
    pub refunded_minor: i64,
    pub currency: String,
    pub card_token: Option<String>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub failure_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const PAYMENT_COLUMNS: &str = "user_id, id, order_id, provider, provider_ref, status, amount_minor, \
    refunded_minor, currency, card_token, card_brand, card_last4, failure_code, created_at, updated_at";

pub fn queue_insert_payment(w: &mut Writes, p: &PaymentRow) {
    w.push(
        format!(
            "INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15)"
        ),
        values![
            p.user_id,
            p.id,
            p.order_id,
            &p.provider,
            &p.provider_ref,
            &p.status,
            p.amount_minor,
            p.refunded_minor,
            &p.currency,
            &p.card_token,
            &p.card_brand,
            &p.card_last4,
            &p.failure_code,
            p.created_at,
            p.updated_at,
        ],
    );
}

pub async fn find_payment(db: &Db, user: Uuid, id: Uuid) -> Result<Option<PaymentRow>, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE user_id = $1 AND id = $2"
    )))
    .bind(user).bind(id)
    .fetch_optional(p)
    .await)?,
    )
}

/// A payment by id alone (webhooks carry only Emporium's payment id).
pub async fn find_payment_by_id(db: &Db, id: Uuid) -> Result<Option<PaymentRow>, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(p)
    .await)?,
    )
}

pub async fn lock_payment(
    tx: &mut Tx,
    user: Uuid,
    id: Uuid,
) -> Result<Option<PaymentRow>, StoreError> {
    let mut reads = Reads::new();
    let payment = reads.push(lock_payment_sql(tx.backend()), values![user, id]);
    reads.run(tx).await?.one(payment)
}

fn lock_payment_sql(backend: Backend) -> String {
    let lock = if backend == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE user_id = $1 AND id = $2{lock}")
}

/// A payment with its order and the order's reservation, locked in that order.
#[derive(Debug, Clone)]
pub struct PaymentWithOrder {
    pub payment: PaymentRow,
    pub order: Option<OrderRow>,
    pub reservation: Option<(ReservationRow, Vec<LineRow>)>,
}

/// [`lock_payment`], and with it what applying the provider's answer may change: its order
/// and the order's reservation. One round trip on SQLite, where it is a write
/// transaction's first and often only read.
pub async fn lock_payment_with_order(
    tx: &mut Tx,
    user: Uuid,
    id: Uuid,
) -> Result<Option<PaymentWithOrder>, StoreError> {
    let backend = tx.backend();
    let order_id = "(SELECT order_id FROM payments WHERE user_id = $1 AND id = $2)";
    let mut reads = Reads::new();
    let payment = reads.push(lock_payment_sql(backend), values![user, id]);
    let order = reads.push(
        crate::orders::lock_order_sql(backend, order_id),
        values![user, id],
    );
    let reservation = reads.push(
        crate::reservations::lock_reservation_sql(
            backend,
            &format!("(SELECT reservation_id FROM orders WHERE user_id = $1 AND id = {order_id})"),
        ),
        values![user, id],
    );
    let rows = reads.run(tx).await?;
    let Some(payment) = rows.one::<PaymentRow>(payment)? else {
        return Ok(None);
    };
    Ok(Some(PaymentWithOrder {
        payment,
        order: rows.one(order)?,
        reservation: crate::reservations::read_locked(&rows, reservation)?,
    }))
}

/// The payments of order `$2` of user `$1`, oldest first.
pub(crate) fn payments_of_order_sql() -> String {
    format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE user_id = $1 AND order_id = $2 ORDER BY id"
    )
}

pub async fn payments_of_order(
    db: &Db,
    user: Uuid,
    order: Uuid,
) -> Result<Vec<PaymentRow>, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(payments_of_order_sql()))
    .bind(user).bind(order)
    .fetch_all(p)
    .await)?,
    )
}

/// Writes a payment's new state (the caller decided the transition under the row lock).
pub async fn update_payment(tx: &mut Tx, p: &PaymentRow) -> Result<(), StoreError> {
    let mut w = Writes::new();
    queue_update_payment(&mut w, p);
    w.run(tx).await?;
    Ok(())
}

/// Queues the update of a payment the transaction has locked.
pub fn queue_update_payment(w: &mut Writes, p: &PaymentRow) {
    queue_payment(w, p, UPDATE_PAYMENT);
}

/// Queues `p` as the new state of a payment that must still be `pending` (one not locked
/// and read first): the round trip fails with [`StoreError::Unexpected`] when it is not.
pub fn queue_update_pending_payment(w: &mut Writes, p: &PaymentRow) {
    queue_payment(w, p, UPDATE_PENDING_PAYMENT);
}

macro_rules! update_payment {
    () => {
        "UPDATE payments SET provider_ref = $3, status = $4, refunded_minor = $5, \
         card_brand = $6, card_last4 = $7, failure_code = $8, updated_at = $9 \
         WHERE user_id = $1 AND id = $2"
    };
}
const UPDATE_PAYMENT: &str = update_payment!();
const UPDATE_PENDING_PAYMENT: &str = concat!(update_payment!(), " AND status = 'pending'");

fn queue_payment(w: &mut Writes, p: &PaymentRow, sql: &'static str) {
    w.push_expect(
        1,
        "payment",
        sql,
        values![
            p.user_id,
            p.id,
            &p.provider_ref,
            &p.status,
            p.refunded_minor,
            &p.card_brand,
            &p.card_last4,
            &p.failure_code,
            p.updated_at,
        ],
    );
}

/// Payments still undecided since before `before`: (user, id).
pub async fn open_payments(
    db: &Db,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT user_id, id FROM payments WHERE status IN ('pending', 'requires_action', 'processing') \
         AND updated_at < $1 ORDER BY updated_at LIMIT $2",
    )
    .bind(before).bind(limit)
    .fetch_all(p)
    .await)?)
}

/// Captured payments whose order is not paid (cancelled or still pending): the cases
/// reconciliation must complete or refund.
pub async fn orphaned_captures(db: &Db, limit: i64) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT p.user_id, p.id FROM payments p JOIN orders o ON o.user_id = p.user_id AND o.id = p.order_id \
         WHERE p.status = 'succeeded' AND o.status = 'cancelled' ORDER BY p.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(p)
    .await)?)
}

/// Records that a provider event was applied; false when it already was.
pub async fn record_event(
    tx: &mut Tx,
    user: Uuid,
    provider: &str,
    event_id: &str,
    payment: Uuid,
    kind: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = on_tx!(tx, c => sqlx::query(
        "INSERT INTO payment_events (user_id, provider, event_id, payment_id, kind, applied_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(user).bind(provider).bind(event_id).bind(payment).bind(kind).bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefundRow {
    pub user_id: Uuid,
    pub id: Uuid,
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount_minor: i64,
    pub reason: String,
    pub status: String,
    pub provider_ref: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_refund(tx: &mut Tx, r: &RefundRow) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO refunds (user_id, id, payment_id, order_id, amount_minor, reason, status, provider_ref, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(r.user_id).bind(r.id).bind(r.payment_id).bind(r.order_id).bind(r.amount_minor)
    .bind(&r.reason).bind(&r.status).bind(&r.provider_ref).bind(r.created_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn finish_refund(
    tx: &mut Tx,
    user: Uuid,
    id: Uuid,
    status: &str,
    provider_ref: Option<&str>,
) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query("UPDATE refunds SET status = $3, provider_ref = $4 WHERE user_id = $1 AND id = $2")
        .bind(user).bind(id).bind(status).bind(provider_ref)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn refunds_of_order(
    db: &Db,
    user: Uuid,
    order: Uuid,
) -> Result<Vec<RefundRow>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT user_id, id, payment_id, order_id, amount_minor, reason, status, provider_ref, created_at \
         FROM refunds WHERE user_id = $1 AND order_id = $2 ORDER BY id",
    )
    .bind(user).bind(order)
    .fetch_all(p)
    .await)?)
}

/// Integrity figures for the benchmark and tests: (paid orders, succeeded payments,
/// orders with more than one captured payment, carts with more than one order).
pub async fn integrity(db: &Db) -> Result<(i64, i64, i64), StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM orders WHERE status = 'paid'), \
                (SELECT COUNT(*) FROM payments WHERE status = 'succeeded'), \
                (SELECT COUNT(*) FROM (SELECT order_id FROM payments WHERE status IN ('succeeded', 'partially_refunded', 'refunded') \
                                       GROUP BY order_id HAVING COUNT(*) > 1) d)",
    )
    .fetch_one(p)
    .await)?)
}

/// Checkout integrity for the benchmark: (carts with more than one live order, units of
/// paid orders, units sold in the stock ledger).
pub async fn checkout_integrity(db: &Db) -> Result<(i64, i64, i64), StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM (SELECT cart_id FROM orders WHERE status <> 'cancelled' \
                                       GROUP BY user_id, cart_id HAVING COUNT(*) > 1) d), \
                (SELECT CAST(COALESCE(SUM(l.quantity), 0) AS BIGINT) FROM order_lines l JOIN orders o \
                   ON o.user_id = l.user_id AND o.id = l.order_id WHERE o.status = 'paid'), \
                (SELECT CAST(COALESCE(-SUM(delta), 0) AS BIGINT) FROM stock_movements WHERE kind = 'sale')",
    )
    .fetch_one(p)
    .await)?)
}
