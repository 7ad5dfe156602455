//! Reference data that prices carts, managed by admins: FX rates, tax rates, shipping
//! methods and coupons (single codes and bulk-generated one-time codes).

use chrono::{DateTime, Utc};
use emporium_domain::Invalid;
use emporium_domain::identity::CountryCode;
use emporium_domain::money::Currency;
use emporium_domain::pricing::{CouponRule, CouponValue, FxRate};
use emporium_store::pricing::{self as store, CouponRow, ShippingMethodRow, TaxRateRow};
use rand::Rng;
use serde::Serialize;
use uuid::Uuid;

use crate::{Shop, ShopError};

mod tables;

pub use tables::{PricingCache, PricingTables};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FxRateView {
    pub currency: String,
    /// Units of `currency` per unit of the base currency, as a decimal string.
    pub rate: String,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CurrenciesView {
    pub base: String,
    /// Currencies a cart may choose: the base and every currency with a rate.
    pub enabled: Vec<FxRateView>,
}

pub async fn currencies(shop: &Shop) -> Result<CurrenciesView, ShopError> {
    let base = shop.config.checkout.base_currency;
    let mut enabled = vec![FxRateView {
        currency: base.code().to_owned(),
        rate: "1".to_owned(),
        updated_at: None,
    }];
    for r in store::list_fx_rates(&shop.db).await? {
        if r.currency != base.code() {
            enabled.push(FxRateView {
                currency: r.currency,
                rate: FxRate::from_e9(r.rate_e9)?.display(),
                updated_at: Some(r.updated_at),
            });
        }
    }
    Ok(CurrenciesView {
        base: base.code().to_owned(),
        enabled,
    })
}

pub async fn set_fx_rate(
    shop: &Shop,
    currency: Currency,
    rate: FxRate,
) -> Result<FxRateView, ShopError> {
    if currency == shop.config.checkout.base_currency {
        return Err(Invalid::new("currency", "the base currency's rate is always 1").into());
    }
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    store::upsert_fx_rate(&mut tx, currency.code(), rate.e9(), now).await?;
    tx.commit().await?;
    shop.pricing.clear();
    Ok(FxRateView {
        currency: currency.code().to_owned(),
        rate: rate.display(),
        updated_at: Some(now),
    })
}

pub async fn remove_fx_rate(shop: &Shop, currency: Currency) -> Result<(), ShopError> {
    let mut tx = shop.db.begin().await?;
    if !store::delete_fx_rate(&mut tx, currency.code()).await? {
        return Err(ShopError::NotFound("fx_rate"));
    }
    tx.commit().await?;
    shop.pricing.clear();
    Ok(())
}

/// The rate a new or re-priced cart in `currency` locks: 1 for the base currency.
pub(crate) async fn rate_for(shop: &Shop, currency: Currency) -> Result<FxRate, ShopError> {
    if currency == shop.config.checkout.base_currency {
        return Ok(FxRate::ONE);
    }
    rate_in(shop, &*shop.pricing.get(&shop.db).await?, currency)
}

/// [`rate_for`], from pricing tables the caller read.
pub(crate) fn rate_in(
    shop: &Shop,
    tables: &PricingTables,
    currency: Currency,
) -> Result<FxRate, ShopError> {
    if currency == shop.config.checkout.base_currency {
        return Ok(FxRate::ONE);
    }
    let e9 = tables
        .fx_rates
        .get(currency.code())
        .copied()
        .ok_or_else(|| {
            ShopError::conflict(
                "currency_not_enabled",
                format!("the shop does not sell in {}", currency.code()),
            )
        })?;
    Ok(FxRate::from_e9(e9)?)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaxRateView {
    pub id: Uuid,
    pub country: String,
    pub region: Option<String>,
    pub name: String,
    pub rate_basis_points: i64,
}

impl From<TaxRateRow> for TaxRateView {
    fn from(t: TaxRateRow) -> Self {
        Self {
            id: t.id,
            country: t.country,
            region: Some(t.region).filter(|r| !r.is_empty()),
            name: t.name,
            rate_basis_points: t.basis_points,
        }
    }
}

pub async fn set_tax_rate(
    shop: &Shop,
    country: CountryCode,
    region: Option<String>,
    name: String,
    basis_points: i64,
) -> Result<TaxRateView, ShopError> {
    if !(0..=10_000).contains(&basis_points) {
        return Err(Invalid::new("rate_basis_points", "must be between 0 and 10000").into());
    }
    let name = name.trim().to_owned();
    if name.is_empty() || name.len() > 100 {
        return Err(Invalid::new("name", "must be 1 to 100 characters").into());
    }
    let row = TaxRateRow {
        id: Uuid::now_v7(),
        country: country.as_str().to_owned(),
        region: region.map(|r| r.trim().to_uppercase()).unwrap_or_default(),
        name,
        basis_points,
        created_at: shop.now(),
    };
    let mut tx = shop.db.begin().await?;
    store::upsert_tax_rate(&mut tx, &row).await?;
    tx.commit().await?;
    shop.pricing.clear();
    Ok(row.into())
}

pub async fn tax_rates(shop: &Shop) -> Result<Vec<TaxRateView>, ShopError> {
    Ok(store::list_tax_rates(&shop.db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShippingMethodView {
    pub code: String,
    pub name: String,
    /// ISO country codes served; `["*"]` serves everywhere.
    pub countries: Vec<String>,
    pub rate_minor: i64,
    pub currency: String,
    /// Orders at or above this subtotal (in `currency`) ship free.
    pub free_over_minor: Option<i64>,
}

impl From<ShippingMethodRow> for ShippingMethodView {
    fn from(m: ShippingMethodRow) -> Self {
        Self {
            countries: m.countries.split(',').map(str::to_owned).collect(),
            code: m.code,
            name: m.name,
            rate_minor: m.rate_minor,
            currency: m.currency,
            free_over_minor: m.free_over_minor,
        }
    }
}

/// A shipping method as given by an admin.
#[derive(Debug, Clone)]
pub struct NewShippingMethod {
    pub code: String,
    pub name: String,
    pub countries: Vec<String>,
    pub rate_minor: i64,
    pub currency: Currency,
    pub free_over_minor: Option<i64>,
}

pub async fn set_shipping_method(
    shop: &Shop,
    m: NewShippingMethod,
) -> Result<ShippingMethodView, ShopError> {
    let code = m.code.trim().to_lowercase();
    if code.is_empty()
        || code.len() > 40
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Invalid::new("code", "1 to 40 letters, digits, - or _").into());
    }
    let mut countries = Vec::new();
    for c in &m.countries {
        countries.push(if c == "*" {
            "*".to_owned()
        } else {
            CountryCode::parse(c)?.as_str().to_owned()
        });
    }
    if countries.is_empty() {
        return Err(Invalid::new("countries", "name at least one country, or \"*\"").into());
    }
    if m.rate_minor < 0 || m.free_over_minor.is_some_and(|f| f < 0) {
        return Err(Invalid::new("rate_minor", "amounts must not be negative").into());
    }
    let row = ShippingMethodRow {
        id: Uuid::now_v7(),
        code,
        name: m.name.trim().to_owned(),
        countries: countries.join(","),
        rate_minor: m.rate_minor,
        currency: m.currency.code().to_owned(),
        free_over_minor: m.free_over_minor,
        active: true,
        created_at: shop.now(),
    };
    let mut tx = shop.db.begin().await?;
    store::upsert_shipping_method(&mut tx, &row).await?;
    tx.commit().await?;
    shop.pricing.clear();
    Ok(row.into())
}

pub async fn shipping_methods(shop: &Shop) -> Result<Vec<ShippingMethodView>, ShopError> {
    Ok(store::list_shipping_methods(&shop.db)
        .await?
        .into_iter()
        .filter(|m| m.active)
        .map(Into::into)
        .collect())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CouponView {
    pub code: String,
    /// `percent` (amount in basis points) or `fixed` (amount in minor units of `currency`).
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
}

impl From<CouponRow> for CouponView {
    fn from(c: CouponRow) -> Self {
        Self {
            code: c.code,
            kind: c.kind,
            amount: c.amount,
            currency: c.currency,
            min_subtotal_minor: c.min_subtotal_minor,
            starts_at: c.starts_at,
            ends_at: c.ends_at,
            usage_limit: c.usage_limit,
            per_customer_limit: c.per_customer_limit,
            stackable: c.stackable,
            times_used: c.times_used,
            batch: c.batch,
        }
    }
}

/// A coupon as given by an admin (the code is absent for bulk batches).
#[derive(Debug, Clone)]
pub struct NewCoupon {
    pub code: String,
    pub value: CouponValue,
    pub currency: Option<Currency>,
    pub min_subtotal_minor: i64,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub usage_limit: Option<i64>,
    pub per_customer_limit: Option<i64>,
    pub stackable: bool,
}

/// Codes are upper-case letters, digits and dashes, compared case-insensitively.
pub fn normalize_code(raw: &str) -> Result<String, Invalid> {
    let code = raw.trim().to_uppercase();
    if code.is_empty()
        || code.len() > 40
        || !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Invalid::new("code", "1 to 40 letters, digits or dashes"));
    }
    Ok(code)
}

fn coupon_row(
    shop: &Shop,
    c: &NewCoupon,
    code: String,
    batch: Option<String>,
) -> Result<CouponRow, Invalid> {
    let (kind, amount) = match c.value {
        CouponValue::Percent(bp) if (1..=10_000).contains(&bp) => ("percent", bp),
        CouponValue::Fixed(minor) if minor > 0 && c.currency.is_some() => ("fixed", minor),
        CouponValue::Percent(_) => {
            return Err(Invalid::new(
                "amount",
                "a percentage is 1 to 10000 basis points",
            ));
        }
        CouponValue::Fixed(_) => {
            return Err(Invalid::new(
                "amount",
                "a fixed amount is positive and names its currency",
            ));
        }
    };
    if let (Some(s), Some(e)) = (c.starts_at, c.ends_at)
        && e <= s
    {
        return Err(Invalid::new("ends_at", "must be after starts_at"));
    }
    if c.usage_limit.is_some_and(|l| l < 1) || c.per_customer_limit.is_some_and(|l| l < 1) {
        return Err(Invalid::new("usage_limit", "limits are at least 1"));
    }
    if c.min_subtotal_minor < 0 {
        return Err(Invalid::new("min_subtotal_minor", "must not be negative"));
    }
    Ok(CouponRow {
        id: Uuid::now_v7(),
        code,
        kind: kind.to_owned(),
        amount,
        currency: c.currency.map(|c| c.code().to_owned()),
        min_subtotal_minor: c.min_subtotal_minor,
        starts_at: c.starts_at,
        ends_at: c.ends_at,
        usage_limit: c.usage_limit,
        per_customer_limit: c.per_customer_limit,
        stackable: c.stackable,
        times_used: 0,
        batch,
        created_at: shop.now(),
    })
}

pub async fn create_coupon(shop: &Shop, c: NewCoupon) -> Result<CouponView, ShopError> {
    let row = coupon_row(shop, &c, normalize_code(&c.code)?, None)?;
    let mut tx = shop.db.begin().await?;
    store::insert_coupons(&mut tx, std::slice::from_ref(&row)).await?;
    tx.commit().await?;
    Ok(row.into())
}

/// Generates `count` one-time codes `PREFIX-XXXXXXXX` (each usable once in total).
pub async fn create_batch(
    shop: &Shop,
    template: NewCoupon,
    count: usize,
) -> Result<Vec<String>, ShopError> {
    if !(1..=10_000).contains(&count) {
        return Err(Invalid::new("count", "must be 1 to 10000").into());
    }
    let prefix = normalize_code(&template.code)?;
    let batch = format!("{prefix}-{}", Uuid::now_v7().simple());
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let one_time = NewCoupon {
        usage_limit: Some(1),
        per_customer_limit: Some(1),
        ..template
    };
    // The thread-local generator is not `Send`: draw every code before the first await.
    let suffixes: Vec<String> = {
        let mut rng = rand::rng();
        (0..count)
            .map(|_| {
                (0..10)
                    .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                    .collect()
            })
            .collect()
    };
    let rows = suffixes
        .into_iter()
        .map(|suffix| {
            coupon_row(
                shop,
                &one_time,
                format!("{prefix}-{suffix}"),
                Some(batch.clone()),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut tx = shop.db.begin().await?;
    store::insert_coupons(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(|r| r.code).collect())
}

pub async fn coupons(shop: &Shop) -> Result<Vec<CouponView>, ShopError> {
    Ok(store::list_coupons(&shop.db, 500)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// A coupon that may apply now to a cart in `currency`, as a pricing rule.
pub(crate) fn rule_of(
    row: &CouponRow,
    currency: Currency,
    base: Currency,
    rate: FxRate,
    now: DateTime<Utc>,
) -> Result<CouponRule, ShopError> {
    let refuse = |code: &'static str, message: &str| {
        ShopError::conflict_with(code, message, serde_json::json!({ "coupon": row.code }))
    };
    if row.starts_at.is_some_and(|s| now < s) || row.ends_at.is_some_and(|e| now >= e) {
        return Err(refuse(
            "coupon_not_valid_now",
            "the coupon is not valid at this time",
        ));
    }
    if row.usage_limit.is_some_and(|l| row.times_used >= l) {
        return Err(refuse("coupon_used_up", "the coupon has been used up"));
    }
    // Fixed amounts and minimums are stated in the coupon's currency (default: the base)
    // and converted into the cart's at the cart's locked rate.
    let from = match row.currency.as_deref() {
        Some(c) => Currency::parse(c)?,
        None => base,
    };
    let in_cart = |amount: i64| -> Result<i64, ShopError> {
        if from == currency {
            Ok(amount)
        } else if from == base {
            Ok(emporium_domain::pricing::convert(
                amount, base, currency, rate,
            ))
        } else {
            Err(refuse(
                "coupon_currency_mismatch",
                "the coupon is for another currency",
            ))
        }
    };
    let value = match row.kind.as_str() {
        "percent" => CouponValue::Percent(row.amount),
        _ => CouponValue::Fixed(in_cart(row.amount)?),
    };
    Ok(CouponRule {
        code: row.code.clone(),
        value,
        min_subtotal_minor: in_cart(row.min_subtotal_minor)?,
        stackable: row.stackable,
    })
}
