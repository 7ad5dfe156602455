//! Reference tables that price a cart: FX rates, tax rates, shipping methods and coupons.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Db, StoreError, Tx, on_pool, on_tx};

// ---- FX rates -------------------------------------------------------------------------

pub async fn upsert_fx_rate(
    tx: &mut Tx,
    currency: &str,
    rate_e9: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO fx_rates (currency, rate_e9, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (currency) DO UPDATE SET rate_e9 = excluded.rate_e9, updated_at = excluded.updated_at",
    )
    .bind(currency)
    .bind(rate_e9)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn delete_fx_rate(tx: &mut Tx, currency: &str) -> Result<bool, StoreError> {
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM fx_rates WHERE currency = $1")
        .bind(currency)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FxRateRow {
    pub currency: String,
    pub rate_e9: i64,
    pub updated_at: DateTime<Utc>,
}

pub async fn list_fx_rates(db: &Db) -> Result<Vec<FxRateRow>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT currency, rate_e9, updated_at FROM fx_rates ORDER BY currency",
    )
    .fetch_all(p)
    .await)?)
}

pub async fn find_fx_rate(db: &Db, currency: &str) -> Result<Option<i64>, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_scalar("SELECT rate_e9 FROM fx_rates WHERE currency = $1")
        .bind(currency)
        .fetch_optional(p)
        .await)?,
    )
}

// ---- Tax rates ------------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaxRateRow {
    pub id: Uuid,
    pub country: String,
    pub region: String,
    pub name: String,
    pub basis_points: i64,
    pub created_at: DateTime<Utc>,
}

pub async fn upsert_tax_rate(tx: &mut Tx, t: &TaxRateRow) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO tax_rates (id, country, region, name, basis_points, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (country, region) DO UPDATE SET name = excluded.name, basis_points = excluded.basis_points",
    )
    .bind(t.id)
    .bind(&t.country)
    .bind(&t.region)
    .bind(&t.name)
    .bind(t.basis_points)
    .bind(t.created_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn list_tax_rates(db: &Db) -> Result<Vec<TaxRateRow>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT id, country, region, name, basis_points, created_at FROM tax_rates ORDER BY country, region",
    )
    .fetch_all(p)
    .await)?)
}

/// The rate for a place: the region's when one is set, else the country's.
pub async fn tax_rate_for(db: &Db, country: &str, region: &str) -> Result<Option<i64>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_scalar(
        "SELECT basis_points FROM tax_rates WHERE country = $1 AND (region = $2 OR region = '') \
         ORDER BY length(region) DESC LIMIT 1",
    )
    .bind(country)
    .bind(region)
    .fetch_optional(p)
    .await)?)
}

// ---- Shipping methods -----------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ShippingMethodRow {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub countries: String,
    pub rate_minor: i64,
    pub currency: String,
    pub free_over_minor: Option<i64>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

pub async fn upsert_shipping_method(tx: &mut Tx, m: &ShippingMethodRow) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO shipping_methods (id, code, name, countries, rate_minor, currency, free_over_minor, active, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (code) DO UPDATE SET name = excluded.name, countries = excluded.countries, \
         rate_minor = excluded.rate_minor, currency = excluded.currency, \
         free_over_minor = excluded.free_over_minor, active = excluded.active",
    )
    .bind(m.id)
    .bind(&m.code)
    .bind(&m.name)
    .bind(&m.countries)
    .bind(m.rate_minor)
    .bind(&m.currency)
    .bind(m.free_over_minor)
    .bind(m.active)
    .bind(m.created_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn list_shipping_methods(db: &Db) -> Result<Vec<ShippingMethodRow>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT id, code, name, countries, rate_minor, currency, free_over_minor, active, created_at \
         FROM shipping_methods ORDER BY code",
    )
    .fetch_all(p)
    .await)?)
}

// ---- Coupons --------------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CouponRow {
    pub id: Uuid,
    pub code: String,
    pub kind: String,
    pub amount: i64,
    pub currency: Option<String>,
    pub min_subtotal_minor: i64,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub usage_limit: Option<i64>,
    pub per_customer_limit: Option<i64>,
    pub stackable: bool,
    pub times_used: i64,
    pub batch: Option<String>,
    pub created_at: DateTime<Utc>,
}

const COUPON_COLUMNS: &str = "id, code, kind, amount, currency, min_subtotal_minor, starts_at, ends_at, \
    usage_limit, per_customer_limit, stackable, times_used, batch, created_at";

pub async fn insert_coupons(tx: &mut Tx, coupons: &[CouponRow]) -> Result<(), StoreError> {
    // Bulk batches insert in chunks that stay below both backends' bind limits.
    for chunk in coupons.chunks(500) {
        on_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new(format!("INSERT INTO coupons ({COUPON_COLUMNS}) "));
            qb.push_values(chunk, |mut b, k| {
                b.push_bind(k.id).push_bind(&k.code).push_bind(&k.kind).push_bind(k.amount)
                    .push_bind(&k.currency).push_bind(k.min_subtotal_minor).push_bind(k.starts_at)
                    .push_bind(k.ends_at).push_bind(k.usage_limit).push_bind(k.per_customer_limit)
                    .push_bind(k.stackable).push_bind(k.times_used).push_bind(&k.batch)
                    .push_bind(k.created_at);
            });
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

pub async fn find_coupon(db: &Db, code: &str) -> Result<Option<CouponRow>, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COUPON_COLUMNS} FROM coupons WHERE code = $1"
    )))
    .bind(code)
    .fetch_optional(p)
    .await)?,
    )
}

pub async fn list_coupons(db: &Db, limit: i64) -> Result<Vec<CouponRow>, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COUPON_COLUMNS} FROM coupons ORDER BY created_at DESC, code LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(p)
    .await)?,
    )
}

/// Counts one use of a coupon, only while under its total limit. False: used up.
pub async fn use_coupon(tx: &mut Tx, id: Uuid) -> Result<bool, StoreError> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE coupons SET times_used = times_used + 1 \
         WHERE id = $1 AND (usage_limit IS NULL OR times_used < usage_limit)",
    )
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Counts one use by a customer, only while under `limit`. False: the customer used it up.
pub async fn use_coupon_by(
    tx: &mut Tx,
    user: Uuid,
    coupon: Uuid,
    limit: Option<i64>,
) -> Result<bool, StoreError> {
    let n = on_tx!(tx, c => sqlx::query(
        "INSERT INTO coupon_customer_uses (user_id, coupon_id, uses) VALUES ($1, $2, 1) \
         ON CONFLICT (user_id, coupon_id) DO UPDATE SET uses = coupon_customer_uses.uses + 1 \
         WHERE $3 IS NULL OR coupon_customer_uses.uses < $3",
    )
    .bind(user)
    .bind(coupon)
    .bind(limit)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Gives a use back (the order that used it was cancelled).
pub async fn return_coupon_use(tx: &mut Tx, user: Uuid, coupon: Uuid) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query("UPDATE coupons SET times_used = times_used - 1 WHERE id = $1 AND times_used > 0")
        .bind(coupon)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    on_tx!(tx, c => sqlx::query(
        "UPDATE coupon_customer_uses SET uses = uses - 1 WHERE user_id = $1 AND coupon_id = $2 AND uses > 0",
    )
    .bind(user)
    .bind(coupon)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn coupon_id_in_tx(tx: &mut Tx, code: &str) -> Result<Option<Uuid>, StoreError> {
    Ok(
        on_tx!(tx, c => sqlx::query_scalar("SELECT id FROM coupons WHERE code = $1")
        .bind(code)
        .fetch_optional(c)
        .await)?,
    )
}
