//! Pricing a cart for a destination: current prices in the cart's currency, coupons,
//! shipping (the cheapest method that serves the country unless one is named) and tax.

use std::collections::HashMap;
use std::sync::Arc;

use emporium_domain::money::Currency;
use emporium_domain::pricing::{CouponRefusal, FxRate, Quote, QuoteInput, TaxMode, convert, quote};
use emporium_store::carts::{CartItemRow, CartRow, SellableRow};
use emporium_store::pricing::{self as pricing_store, ShippingMethodRow};
use uuid::Uuid;

use super::{AppliedCoupon, CartLineView, CartView, Variant, coupon_codes};
use crate::{Shop, ShopError};

/// Where the order goes, and how.
#[derive(Debug, Clone)]
pub struct Destination {
    pub country: String,
    pub region: String,
    /// A shipping method code; `None`: the cheapest that serves the country.
    pub shipping_method: Option<String>,
}

impl Destination {
    /// The shop's home country: what a cart shows before an address is known.
    pub fn home(shop: &Shop) -> Self {
        Self {
            country: shop.config.checkout.home_country.clone(),
            region: String::new(),
            shipping_method: None,
        }
    }
}

/// A cart with everything needed to show it or to turn it into an order.
#[derive(Debug, Clone)]
pub struct PricedCart {
    pub rate: FxRate,
    pub lines: Vec<(CartItemRow, SellableRow)>,
    pub quote: Quote,
    pub shipping: Option<ShippingMethodRow>,
    pub tax_mode: TaxMode,
    pub destination: Destination,
    /// The coupons' ids and per-customer limits, for redemption at checkout.
    pub coupons: Vec<emporium_store::pricing::CouponRow>,
}

pub fn unavailable(variant: Uuid) -> ShopError {
    ShopError::conflict_with(
        "price_unavailable",
        "an item has no price in the cart's currency or is no longer for sale",
        serde_json::json!({ "variant_id": variant }),
    )
}

/// Today's unit prices in `currency` of `variants`: each one's own price in that currency,
/// or its base-currency price converted at `rate`.
pub fn current_prices(
    shop: &Shop,
    variants: &HashMap<Uuid, Arc<Variant>>,
    currency: Currency,
    rate: FxRate,
) -> HashMap<Uuid, i64> {
    let base = shop.config.checkout.base_currency;
    let mut own = HashMap::new();
    let mut in_base = HashMap::new();
    for (id, variant) in variants {
        for (cur, amount) in &variant.prices {
            if cur == currency.code() {
                own.insert(*id, *amount);
            } else if cur == base.code() {
                in_base.insert(*id, *amount);
            }
        }
    }
    for (variant, amount) in in_base {
        own.entry(variant)
            .or_insert_with(|| convert(amount, base, currency, rate));
    }
    own
}

fn refusal(r: CouponRefusal) -> ShopError {
    match r {
        CouponRefusal::BelowMinimum {
            code,
            min_subtotal_minor,
        } => ShopError::conflict_with(
            "coupon_minimum_not_met",
            "the cart's subtotal is below the coupon's minimum",
            serde_json::json!({ "coupon": code, "min_subtotal_minor": min_subtotal_minor }),
        ),
        CouponRefusal::NotStackable { code } => ShopError::conflict_with(
            "coupon_not_stackable",
            "this coupon cannot be combined with others",
            serde_json::json!({ "coupon": code }),
        ),
    }
}

/// The shipping cost of `method` for a discounted subtotal, in the cart's currency; `None`
/// when the method is priced in a currency that cannot be converted.
fn shipping_cost(
    m: &ShippingMethodRow,
    goods: i64,
    currency: Currency,
    base: Currency,
    rate: FxRate,
) -> Option<i64> {
    let to_cart = |amount: i64| {
        if m.currency == currency.code() {
            Some(amount)
        } else if m.currency == base.code() {
            Some(convert(amount, base, currency, rate))
        } else {
            None
        }
    };
    let free = m
        .free_over_minor
        .and_then(to_cart)
        .is_some_and(|threshold| goods >= threshold);
    if free { Some(0) } else { to_cart(m.rate_minor) }
}

fn serves(m: &ShippingMethodRow, country: &str) -> bool {
    m.active && m.countries.split(',').any(|c| c == "*" || c == country)
}

async fn choose_shipping(
    shop: &Shop,
    destination: &Destination,
    goods: i64,
    currency: Currency,
    rate: FxRate,
) -> Result<Option<(ShippingMethodRow, i64)>, ShopError> {
    let base = shop.config.checkout.base_currency;
    let tables = shop.pricing.get(&shop.db).await?;
    let mut options: Vec<(ShippingMethodRow, i64)> = tables
        .shipping_methods
        .iter()
        .filter(|m| serves(m, &destination.country))
        .filter_map(|m| shipping_cost(m, goods, currency, base, rate).map(|c| (m.clone(), c)))
        .collect();
    options.sort_by_key(|(m, cost)| (*cost, m.code.clone()));
    match &destination.shipping_method {
        None => Ok(options.into_iter().next()),
        Some(code) => options
            .into_iter()
            .find(|(m, _)| &m.code == code)
            .map(Some)
            .ok_or_else(|| {
                ShopError::conflict_with(
                    "shipping_unavailable",
                    "this shipping method does not serve the address",
                    serde_json::json!({ "shipping_method": code, "country": destination.country }),
                )
            }),
    }
}

pub async fn price_cart(
    shop: &Shop,
    cart: &CartRow,
    items: &[CartItemRow],
    destination: &Destination,
) -> Result<PricedCart, ShopError> {
    let currency = Currency::parse(&cart.currency)?;
    let rate = FxRate::from_e9(cart.fx_rate_e9)?;
    let now = shop.now();
    let ids: Vec<Uuid> = items.iter().map(|i| i.variant_id).collect();
    let variants = shop.variants.get(&shop.db, &ids).await?;
    let mut lines = Vec::with_capacity(items.len());
    for item in items {
        let f = variants
            .get(&item.variant_id)
            .map(|v| v.facts.clone())
            .ok_or_else(|| unavailable(item.variant_id))?;
        lines.push((item.clone(), f));
    }
    let mut coupons = Vec::new();
    let mut rules = Vec::new();
    for code in coupon_codes(cart) {
        let row = pricing_store::find_coupon(&shop.db, &code)
            .await?
            .ok_or(ShopError::NotFound("coupon"))?;
        rules.push(crate::pricing::rule_of(
            &row,
            currency,
            shop.config.checkout.base_currency,
            rate,
            now,
        )?);
        coupons.push(row);
    }
    let line_totals: Vec<i64> = items
        .iter()
        .map(|i| i.unit_price_minor * i.quantity)
        .collect();
    let tax_mode = shop.config.checkout.tax_mode;
    let tax_bp = shop
        .pricing
        .get(&shop.db)
        .await?
        .tax_rate_for(&destination.country, &destination.region)
        .unwrap_or(0);
    let mut input = QuoteInput {
        line_totals: &line_totals,
        coupons: &rules,
        shipping_minor: 0,
        tax_basis_points: tax_bp,
        tax_mode,
    };
    let goods = quote(&input).map_err(refusal)?;
    let goods_after_discount = goods.subtotal_minor - goods.discount_minor;
    let shipping = choose_shipping(shop, destination, goods_after_discount, currency, rate).await?;
    input.shipping_minor = shipping.as_ref().map_or(0, |(_, cost)| *cost);
    let quote = quote(&input).map_err(refusal)?;
    Ok(PricedCart {
        rate,
        lines,
        quote,
        shipping: shipping.map(|(m, _)| m),
        tax_mode,
        destination: destination.clone(),
        coupons,
    })
}

impl PricedCart {
    pub fn view(&self, cart: &CartRow) -> CartView {
        let q = &self.quote;
        CartView {
            id: cart.id,
            token: None,
            status: cart.status.clone(),
            currency: cart.currency.clone(),
            fx_rate: self.rate.display(),
            prices_locked_until: cart.prices_locked_until,
            repriced: false,
            lines: self
                .lines
                .iter()
                .enumerate()
                .map(|(i, (item, facts))| CartLineView {
                    id: item.id,
                    sku: facts.sku.clone(),
                    title: facts.title.clone(),
                    quantity: item.quantity,
                    unit_price_minor: item.unit_price_minor,
                    line_total_minor: item.unit_price_minor * item.quantity,
                    discount_minor: q.line_discounts.get(i).copied().unwrap_or(0),
                    tax_minor: q.line_taxes.get(i).copied().unwrap_or(0),
                })
                .collect(),
            coupons: q
                .discounts
                .iter()
                .map(|(code, amount)| AppliedCoupon {
                    code: code.clone(),
                    amount_minor: *amount,
                })
                .collect(),
            subtotal_minor: q.subtotal_minor,
            discount_minor: q.discount_minor,
            shipping_minor: q.shipping_minor,
            tax_minor: q.tax_minor,
            total_minor: q.total_minor,
            tax_mode: match self.tax_mode {
                TaxMode::Inclusive => "inclusive",
                TaxMode::Exclusive => "exclusive",
            }
            .to_owned(),
            shipping_method: self.shipping.as_ref().map(|m| m.code.clone()),
            destination_country: self.destination.country.clone(),
        }
    }
}
