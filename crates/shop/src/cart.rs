//! Carts: guest carts (reached with their token) and customer carts, items, coupons, price
//! and FX locks, merging at login, and the admin's view of abandoned carts.
//!
//! A cart locks its unit prices and FX rate until `prices_locked_until` (30 minutes by
//! default). The first read or change after that re-prices every line at the current prices
//! and rate, sets a new lock, and says so (`repriced: true`).

mod price;
mod variants;

use chrono::{DateTime, Duration, Utc};
use emporium_domain::Invalid;
use emporium_domain::catalog::Sku;
use emporium_domain::identity::CountryCode;
use emporium_domain::ids::UserId;
use emporium_domain::money::Currency;
use emporium_store::carts::{self as store, CartItemRow, CartRow};
use emporium_store::{Tx, Writes};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub(crate) use price::{Destination, PricedCart, price_cart};
pub use variants::{Variant, VariantCache};

use crate::{Shop, ShopError};

/// Who is asking for a cart: a signed-in customer, and/or the holder of a guest token.
#[derive(Debug, Clone, Default)]
pub struct CartAccess {
    pub user: Option<UserId>,
    pub token: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CartView {
    pub id: Uuid,
    /// The guest token; only in the answer that created the cart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// open, merged or checked_out.
    pub status: String,
    pub currency: String,
    /// Units of the cart's currency per unit of the base currency, locked with the prices.
    pub fx_rate: String,
    pub prices_locked_until: DateTime<Utc>,
    /// True when this answer re-priced the cart because its lock had ended.
    pub repriced: bool,
    pub lines: Vec<CartLineView>,
    pub coupons: Vec<AppliedCoupon>,
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub shipping_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
    /// `inclusive` (prices include tax) or `exclusive`.
    pub tax_mode: String,
    /// The shipping method the totals assume (the cheapest for the destination).
    pub shipping_method: Option<String>,
    /// The country tax and shipping were estimated for.
    pub destination_country: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CartLineView {
    pub id: Uuid,
    pub sku: String,
    pub title: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
    pub line_total_minor: i64,
    pub discount_minor: i64,
    pub tax_minor: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AppliedCoupon {
    pub code: String,
    pub amount_minor: i64,
}

pub const MAX_LINE_QUANTITY: i64 = 100;
pub const MAX_LINES: usize = 100;

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_token() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut secret = [0u8; 24];
    rand::rng().fill_bytes(&mut secret);
    format!(
        "cart_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    )
}

/// Whether `access` may use `cart`: its owner, or for guest carts the token's holder.
fn allowed(cart: &CartRow, access: &CartAccess) -> bool {
    if cart.user_id.is_nil() {
        access
            .token
            .as_deref()
            .is_some_and(|t| token_hash(t) == cart.token_hash)
    } else {
        access.user.is_some_and(|u| u.0 == cart.user_id)
    }
}

pub async fn create(
    shop: &Shop,
    user: Option<UserId>,
    currency: Option<Currency>,
) -> Result<CartView, ShopError> {
    let currency = currency.unwrap_or(shop.config.checkout.base_currency);
    let rate = crate::pricing::rate_for(shop, currency).await?;
    let now = shop.now();
    let token = new_token();
    let row = CartRow {
        user_id: user.map(|u| u.0).unwrap_or(Uuid::nil()),
        id: Uuid::now_v7(),
        token_hash: token_hash(&token),
        status: "open".to_owned(),
        currency: currency.code().to_owned(),
        fx_rate_e9: rate.e9(),
        prices_locked_until: now + shop.config.checkout.price_lock,
        coupon_codes: String::new(),
        created_at: now,
        updated_at: now,
        version: 0,
    };
    let mut tx = shop.db.begin_yielding().await?;
    store::insert_cart(&mut tx, &row).await?;
    tx.commit().await?;
    let mut view = view(shop, &row, &[], None).await?;
    view.token = Some(token);
    Ok(view)
}

/// The cart, re-priced first when its lock has ended.
pub async fn get(
    shop: &Shop,
    access: &CartAccess,
    id: Uuid,
    country: Option<CountryCode>,
) -> Result<CartView, ShopError> {
    let cart = store::find_cart(&shop.db, id)
        .await?
        .filter(|c| allowed(c, access))
        .ok_or(ShopError::NotFound("cart"))?;
    if cart.status == "open" && cart.prices_locked_until <= shop.now() {
        let o = open(shop, access, id, &[]).await?;
        return finish(shop, o).await;
    }
    let items = store::items(&shop.db, cart.user_id, cart.id).await?;
    view(shop, &cart, &items, country).await
}

/// An open cart locked for a change, re-priced first when its lock had ended.
struct Open {
    tx: Tx,
    cart: CartRow,
    items: Vec<CartItemRow>,
    repriced: bool,
    /// Today's unit prices (at the cart's rate) of the requested variants, and of the
    /// cart's lines when re-priced.
    prices: std::collections::HashMap<Uuid, i64>,
}

/// Opens a change.
///
/// Nothing is read from the pool inside the write transaction (on PostgreSQL a transaction
/// that waits for a pool connection while holding one can starve the pool under load): the
/// variants and pricing tables come from this node's caches, read before it begins. Only
/// re-pricing lines this node has not seen in the last moment takes a second attempt, after
/// reading them.
async fn open(
    shop: &Shop,
    access: &CartAccess,
    id: Uuid,
    also: &[Uuid],
) -> Result<Open, ShopError> {
    let mut wanted = also.to_vec();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let variants = shop.variants.get(&shop.db, &wanted).await?;
        let tables = shop.pricing.get(&shop.db).await?;
        let now = shop.now();
        // Cart edits let checkouts and payments go first (see `Db::begin_yielding`).
        let mut tx = shop.db.begin_yielding().await?;
        let (mut cart, mut items) = store::lock_cart_with_items(&mut tx, id)
            .await?
            .filter(|(c, _)| allowed(c, access))
            .ok_or(ShopError::NotFound("cart"))?;
        if cart.status != "open" {
            return Err(ShopError::conflict_with(
                "cart_not_open",
                format!("the cart is {}", cart.status),
                serde_json::json!({ "cart_status": cart.status }),
            ));
        }
        let repriced = cart.prices_locked_until <= now;
        if repriced && attempts == 1 {
            let unseen: Vec<Uuid> = items
                .iter()
                .map(|i| i.variant_id)
                .filter(|v| !variants.contains_key(v))
                .collect();
            if !unseen.is_empty() {
                drop(tx);
                wanted.extend(unseen);
                continue;
            }
        }
        let currency = Currency::parse(&cart.currency)?;
        let rate = if repriced {
            crate::pricing::rate_in(shop, &tables, currency)?
        } else {
            emporium_domain::pricing::FxRate::from_e9(cart.fx_rate_e9)?
        };
        let prices = price::current_prices(shop, &variants, currency, rate);
        if repriced {
            cart.fx_rate_e9 = rate.e9();
            cart.prices_locked_until = now + shop.config.checkout.price_lock;
            for item in &mut items {
                let unit = prices
                    .get(&item.variant_id)
                    .copied()
                    .ok_or_else(|| price::unavailable(item.variant_id))?;
                store::set_item_price(&mut tx, cart.user_id, cart.id, item.id, unit).await?;
                item.unit_price_minor = unit;
            }
        }
        return Ok(Open {
            tx,
            cart,
            items,
            repriced,
            prices,
        });
    }
}

/// Stores the cart's header and answers with its view.
async fn finish(shop: &Shop, o: Open) -> Result<CartView, ShopError> {
    finish_with(shop, o, Writes::new(), None).await
}

/// Stores the cart's header with the caller's queued `writes`, in one round trip, and
/// answers with its view; `items` are the lines after them when the caller knows them.
async fn finish_with(
    shop: &Shop,
    mut o: Open,
    mut writes: Writes,
    items: Option<Vec<CartItemRow>>,
) -> Result<CartView, ShopError> {
    o.cart.updated_at = shop.now();
    store::queue_update_cart(&mut writes, &o.cart);
    writes.run(&mut o.tx).await?;
    let items = match items {
        Some(items) => items,
        None => store::items_in_tx(&mut o.tx, o.cart.user_id, o.cart.id).await?,
    };
    o.tx.commit().await?;
    let mut v = view(shop, &o.cart, &items, None).await?;
    v.repriced = o.repriced;
    Ok(v)
}

/// 409 `cart_changed`: the cart changed after the checkout read it, and the order made
/// from what it read would not match it.
pub(crate) fn changed_during_checkout() -> ShopError {
    ShopError::conflict(
        "cart_changed",
        "the cart changed while it was being checked out; review it and check out again",
    )
}

fn check_quantity(quantity: i64) -> Result<(), Invalid> {
    if (1..=MAX_LINE_QUANTITY).contains(&quantity) {
        Ok(())
    } else {
        Err(Invalid::new(
            "quantity",
            format!("must be between 1 and {MAX_LINE_QUANTITY}"),
        ))
    }
}

pub async fn add_item(
    shop: &Shop,
    access: &CartAccess,
    id: Uuid,
    sku: Sku,
    quantity: i64,
) -> Result<CartView, ShopError> {
    check_quantity(quantity)?;
    let found = shop
        .variants
        .by_sku(&shop.db, sku.as_str())
        .await?
        .filter(|v| v.facts.status == "active")
        .ok_or(ShopError::NotFound("sku"))?;
    let variant = found.facts.variant_id;
    if let Some(view) = add_item_unlocked(shop, access, id, found, quantity).await? {
        return Ok(view);
    }
    let o = open(shop, access, id, &[variant]).await?;
    let (row, items) = added(shop, &o.cart, &o.items, &o.prices, variant, quantity)?;
    let mut writes = Writes::new();
    store::queue_add_item(&mut writes, &row);
    finish_with(shop, o, writes, Some(items)).await
}

/// Adds an item to an open cart whose prices are locked, deciding on the cart as a read
/// connection sees it and writing in one round trip, only if the cart is unchanged since
/// (its version): the writer's lock is not held while the cart is read and the change
/// decided. `None` when that cannot be done (the cart is not found, not open, due to be
/// re-priced, or changed in between): the caller then takes the lock and decides again.
async fn add_item_unlocked(
    shop: &Shop,
    access: &CartAccess,
    id: Uuid,
    found: std::sync::Arc<Variant>,
    quantity: i64,
) -> Result<Option<CartView>, ShopError> {
    let now = shop.now();
    let variant = found.facts.variant_id;
    let Some((mut cart, items)) = store::find_cart_with_items(&shop.db, id)
        .await?
        .filter(|(c, _)| allowed(c, access) && c.status == "open" && c.prices_locked_until > now)
    else {
        return Ok(None);
    };
    let variants = std::collections::HashMap::from([(variant, found)]);
    let currency = Currency::parse(&cart.currency)?;
    let rate = emporium_domain::pricing::FxRate::from_e9(cart.fx_rate_e9)?;
    let prices = price::current_prices(shop, &variants, currency, rate);
    let (row, items) = added(shop, &cart, &items, &prices, variant, quantity)?;
    cart.updated_at = now;
    let mut writes = Writes::new();
    store::queue_update_unchanged_cart(&mut writes, &cart);
    store::queue_add_item(&mut writes, &row);
    // Cart edits let checkouts and payments go first (see `Db::begin_yielding`). Refused
    // when the cart changed since it was read.
    if writes
        .commit_unless_refused(&shop.db, true)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    view(shop, &cart, &items, None).await.map(Some)
}

/// The line `quantity` of `variant` adds to `cart` (whose lines are `items`), and the cart's
/// lines after it (known without reading them again), or why it cannot be added.
fn added(
    shop: &Shop,
    cart: &CartRow,
    items: &[CartItemRow],
    prices: &std::collections::HashMap<Uuid, i64>,
    variant: Uuid,
    quantity: i64,
) -> Result<(CartItemRow, Vec<CartItemRow>), ShopError> {
    let existing = items.iter().find(|i| i.variant_id == variant);
    if existing.is_none() && items.len() >= MAX_LINES {
        return Err(
            Invalid::new("items", format!("a cart holds at most {MAX_LINES} lines")).into(),
        );
    }
    if let Some(i) = existing {
        check_quantity(i.quantity + quantity)?;
    }
    let unit = prices
        .get(&variant)
        .copied()
        .ok_or_else(|| price::unavailable(variant))?;
    let row = CartItemRow {
        user_id: cart.user_id,
        cart_id: cart.id,
        id: Uuid::now_v7(),
        variant_id: variant,
        quantity,
        unit_price_minor: unit,
        created_at: shop.now(),
    };
    let mut after = items.to_vec();
    match after.iter_mut().find(|i| i.variant_id == variant) {
        Some(line) => line.quantity += quantity,
        None => after.push(row.clone()),
    }
    after.sort_by_key(|i| i.id);
    Ok((row, after))
}

pub async fn set_quantity(
    shop: &Shop,
    access: &CartAccess,
    id: Uuid,
    item: Uuid,
    quantity: i64,
) -> Result<CartView, ShopError> {
    check_quantity(quantity)?;
    let mut o = open(shop, access, id, &[]).await?;
    if !store::set_item_quantity(&mut o.tx, o.cart.user_id, o.cart.id, item, quantity).await? {
        return Err(ShopError::NotFound("cart_item"));
    }
    finish(shop, o).await
}

pub async fn remove_item(
    shop: &Shop,
    access: &CartAccess,
    id: Uuid,
    item: Uuid,
) -> Result<CartView, ShopError> {
    let mut o = open(shop, access, id, &[]).await?;
    if !store::remove_item(&mut o.tx, o.cart.user_id, o.cart.id, item).await? {
        return Err(ShopError::NotFound("cart_item"));
    }
    finish(shop, o).await
}

/// Applies a coupon code; the cart's coupons must stack and meet their minimums.
pub async fn apply_coupon(
    shop: &Shop,
    access: &CartAccess,
    id: Uuid,
    code: &str,
) -> Result<CartView, ShopError> {
    let code = crate::pricing::normalize_code(code)?;
    let row = emporium_store::pricing::find_coupon(&shop.db, &code)
        .await?
        .ok_or(ShopError::NotFound("coupon"))?;
    // Priced first (outside the write transaction): a coupon that cannot apply is refused,
    // not stored.
    let mut trial = store::find_cart(&shop.db, id)
        .await?
        .filter(|c| allowed(c, access))
        .ok_or(ShopError::NotFound("cart"))?;
    let mut codes = coupon_codes(&trial);
    if !codes.contains(&row.code) {
        codes.push(row.code.clone());
    }
    trial.coupon_codes = codes.join(",");
    let items = store::items(&shop.db, trial.user_id, trial.id).await?;
    price_cart(shop, &trial, &items, &Destination::home(shop)).await?;
    let mut o = open(shop, access, id, &[]).await?;
    let mut codes = coupon_codes(&o.cart);
    if !codes.contains(&row.code) {
        codes.push(row.code.clone());
    }
    o.cart.coupon_codes = codes.join(",");
    finish(shop, o).await
}

pub async fn remove_coupon(
    shop: &Shop,
    access: &CartAccess,
    id: Uuid,
    code: &str,
) -> Result<CartView, ShopError> {
    let code = crate::pricing::normalize_code(code)?;
    let mut o = open(shop, access, id, &[]).await?;
    let codes: Vec<String> = coupon_codes(&o.cart)
        .into_iter()
        .filter(|c| *c != code)
        .collect();
    o.cart.coupon_codes = codes.join(",");
    finish(shop, o).await
}

pub(crate) fn coupon_codes(cart: &CartRow) -> Vec<String> {
    cart.coupon_codes
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Merges a guest cart into the customer's open cart (creating it from the guest cart when
/// the customer has none). Called at login.
pub async fn merge_guest_cart(
    shop: &Shop,
    user: UserId,
    guest: Uuid,
    token: &str,
) -> Result<CartView, ShopError> {
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let mut guest_cart = store::lock_cart(&mut tx, guest)
        .await?
        .filter(|c| c.user_id.is_nil() && token_hash(token) == c.token_hash)
        .ok_or(ShopError::NotFound("cart"))?;
    if guest_cart.status != "open" {
        return Err(ShopError::conflict(
            "cart_not_open",
            "the guest cart was already merged or checked out",
        ));
    }
    let guest_items = store::items_in_tx(&mut tx, guest_cart.user_id, guest_cart.id).await?;
    let mut target = match store::open_cart_of(&mut tx, user.0).await? {
        Some(c) => c,
        None => {
            let c = CartRow {
                user_id: user.0,
                id: Uuid::now_v7(),
                status: "open".to_owned(),
                created_at: now,
                version: 0,
                ..guest_cart.clone()
            };
            store::insert_cart(&mut tx, &c).await?;
            c
        }
    };
    let existing = store::items_in_tx(&mut tx, target.user_id, target.id).await?;
    let mut adds = Writes::new();
    for item in guest_items {
        let have = existing
            .iter()
            .find(|i| i.variant_id == item.variant_id)
            .map_or(0, |i| i.quantity);
        let quantity = item.quantity.min(MAX_LINE_QUANTITY - have);
        if quantity > 0 {
            store::queue_add_item(
                &mut adds,
                &CartItemRow {
                    user_id: target.user_id,
                    cart_id: target.id,
                    id: Uuid::now_v7(),
                    quantity,
                    ..item
                },
            );
        }
    }
    adds.run(&mut tx).await?;
    let mut codes = coupon_codes(&target);
    for c in coupon_codes(&guest_cart) {
        if !codes.contains(&c) {
            codes.push(c);
        }
    }
    target.coupon_codes = codes.join(",");
    target.updated_at = now;
    store::update_cart(&mut tx, &target).await?;
    guest_cart.status = "merged".to_owned();
    guest_cart.updated_at = now;
    store::update_cart(&mut tx, &guest_cart).await?;
    let items = store::items_in_tx(&mut tx, target.user_id, target.id).await?;
    tx.commit().await?;
    view(shop, &target, &items, None).await
}

async fn view(
    shop: &Shop,
    cart: &CartRow,
    items: &[CartItemRow],
    country: Option<CountryCode>,
) -> Result<CartView, ShopError> {
    let destination = match country {
        Some(c) => Destination {
            country: c.as_str().to_owned(),
            region: String::new(),
            shipping_method: None,
        },
        None => Destination::home(shop),
    };
    let priced = price_cart(shop, cart, items, &destination).await?;
    Ok(priced.view(cart))
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AbandonedCarts {
    /// Open carts with items, untouched for at least this many minutes.
    pub idle_minutes: i64,
    pub by_currency: Vec<AbandonedInCurrency>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AbandonedInCurrency {
    pub currency: String,
    pub carts: i64,
    pub value_minor: i64,
}

pub async fn abandoned(shop: &Shop, idle: Duration) -> Result<AbandonedCarts, ShopError> {
    let rows = store::abandoned(&shop.db, shop.now() - idle).await?;
    Ok(AbandonedCarts {
        idle_minutes: idle.num_minutes(),
        by_currency: rows
            .into_iter()
            .map(|(currency, carts, value_minor)| AbandonedInCurrency {
                currency,
                carts,
                value_minor,
            })
            .collect(),
    })
}

/// Logs in and, when the shopper brought a guest cart, merges it into their cart. A guest
/// cart that cannot be merged (wrong token, already merged) does not fail the login.
pub async fn login_with_guest_cart(
    shop: &Shop,
    email: &str,
    password: &str,
    addr: Option<std::net::IpAddr>,
    guest: Option<(Uuid, String)>,
) -> Result<crate::identity::LoginResult, ShopError> {
    let result = crate::identity::login(shop, email, password, addr).await?;
    if let Some((id, token)) = guest
        && let Err(e) = merge_guest_cart(shop, result.user.id, id, &token).await
    {
        tracing::info!(cart.id = %id, error = %e, "guest cart not merged at login");
    }
    Ok(result)
}
