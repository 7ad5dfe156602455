//! The checkout saga: cart → reservation → order pending payment → charge → paid order.
//!
//! Each step stores its outcome before the next begins, so a crash anywhere leaves rows that
//! say what is missing:
//!
//! 1. price the cart (locked prices and rate; an ended lock re-prices and asks the shopper
//!    to look again, 409 `cart_repriced`);
//! 2. reserve every line through the inventory engine (all or nothing; 409 `out_of_stock`)
//!    and, in the same transaction (the engine's batch, see [`Placement`]), insert the order
//!    (`pending_payment`) with line snapshots and fulfilment groups, a `pending` payment,
//!    close the cart and put `order.created` in the outbox: the grant and the order commit
//!    together or not at all;
//! 3. only for an order with coupons, whose counters are conditional writes that may refuse
//!    (so a one-time code is redeemed once whatever the race): step 2 grants the stock
//!    alone, then one transaction redeems the coupons and writes the order's rows; a crash
//!    between leaves a reservation that expires by itself, and a failure releases it;
//! 4. charge the card token at the provider, outside any transaction, with Emporium's
//!    payment id as the provider's idempotency key and a timeout;
//! 5. apply the answer ([`crate::payments`]): paid with the reservation committed in the
//!    same transaction, or cancelled with it released. A capture of an order placed with its
//!    grant is applied to the rows as step 2 wrote them, in one round trip whose every write
//!    is conditional on its row being unchanged ([`payments::apply_capture`]); if anything
//!    moved them it is dropped whole and the answer applied the usual way. A crash between 3
//!    and 5 leaves a `pending` payment that reconciliation resolves by asking the provider.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Duration;
use emporium_domain::Invalid;
use emporium_domain::identity::PostalAddress;
use emporium_domain::money::Currency;
use emporium_domain::order::PaymentStatus;
use emporium_domain::pricing::TaxMode;
use emporium_payments::{ChargeRequest, TestGatewayConfig};
use emporium_store::Writes;
use emporium_store::carts as cart_store;
use emporium_store::orders::{self as order_store, Json, OrderLineRow, OrderRow};
use emporium_store::payments::{self as payment_store, PaymentRow};
use emporium_store::reservations::{LineRow, ReservationRow};
use serde::Serialize;
use uuid::Uuid;

use crate::cart::{Destination, PricedCart, price_cart};
use crate::identity::Actor;
use crate::inventory::engine::{Attempt, Placement};
use crate::inventory::reservations::ReservationView;
use crate::payments::{self, PaymentView, Report};
use crate::{Shop, ShopError, events};

#[derive(Debug, Clone)]
pub struct CheckoutConfig {
    /// The currency catalog prices are stated in; FX rates are relative to it.
    pub base_currency: Currency,
    /// Where carts estimate tax and shipping before an address is known.
    pub home_country: String,
    /// How long a cart's prices and FX rate hold.
    pub price_lock: Duration,
    pub tax_mode: TaxMode,
    /// How long Emporium waits for the payment provider.
    pub gateway_timeout: std::time::Duration,
    /// How long an order may wait for its payment (and its stock stays reserved).
    pub payment_window: Duration,
    /// Open payments untouched this long are looked up at the provider.
    pub reconcile_after: Duration,
    pub test_gateway: TestGatewayConfig,
    /// Fault injection for crash tests.
    pub faults: Arc<Faults>,
}

impl Default for CheckoutConfig {
    fn default() -> Self {
        Self {
            base_currency: Currency::GBP,
            home_country: "GB".to_owned(),
            price_lock: Duration::minutes(30),
            tax_mode: TaxMode::Inclusive,
            gateway_timeout: std::time::Duration::from_secs(10),
            payment_window: Duration::minutes(30),
            reconcile_after: Duration::minutes(1),
            test_gateway: TestGatewayConfig::default(),
            faults: Arc::default(),
        }
    }
}

/// Places where a test can make the checkout fail as a crash would.
#[derive(Debug, Default)]
pub struct Faults {
    /// Fail after the provider charged but before Emporium recorded the answer.
    pub after_charge: AtomicBool,
}

#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    pub cart_id: Uuid,
    pub address: PostalAddress,
    pub shipping_method: Option<String>,
    pub card_token: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckoutView {
    pub order_id: Uuid,
    pub status: emporium_domain::order::OrderStatus,
    pub total_minor: i64,
    pub currency: String,
    pub payment: PaymentView,
}

fn checkout_view(order: &OrderRow, payment: &PaymentRow) -> Result<CheckoutView, ShopError> {
    Ok(CheckoutView {
        order_id: order.id,
        status: emporium_domain::order::OrderStatus::parse(&order.status)?,
        total_minor: order.total_minor,
        currency: order.currency.clone(),
        payment: payments::view(payment),
    })
}

pub async fn checkout(
    shop: &Shop,
    actor: &Actor,
    req: CheckoutRequest,
) -> Result<CheckoutView, ShopError> {
    let user = actor.user_id;
    let start = cart_store::checkout_start(&shop.db, user.0, req.cart_id)
        .await?
        .ok_or(ShopError::NotFound("cart"))?;
    let (cart, items) = (&start.cart, &start.items);
    if cart.status == "checked_out" {
        return existing_order(shop, actor, cart.id).await;
    }
    if cart.status != "open" {
        return Err(ShopError::conflict(
            "cart_not_open",
            format!("the cart is {}", cart.status),
        ));
    }
    if cart.prices_locked_until <= shop.now() {
        let access = crate::cart::CartAccess {
            user: Some(user),
            token: None,
        };
        let repriced = crate::cart::get(shop, &access, cart.id, None).await?;
        return Err(ShopError::conflict_with(
            "cart_repriced",
            "the cart's price lock ended and it was re-priced; review it and check out again",
            serde_json::json!({ "total_minor": repriced.total_minor, "prices_locked_until": repriced.prices_locked_until }),
        ));
    }
    if items.is_empty() {
        return Err(Invalid::new("cart_id", "the cart is empty").into());
    }
    let destination = Destination {
        country: req.address.country.as_str().to_owned(),
        region: req
            .address
            .region
            .clone()
            .unwrap_or_default()
            .to_uppercase(),
        shipping_method: req.shipping_method.clone(),
    };
    let priced = price_cart(shop, cart, items, &destination).await?;
    let shipping = priced.shipping.clone().ok_or_else(|| {
        ShopError::conflict_with(
            "shipping_unavailable",
            "no shipping method serves this address",
            serde_json::json!({ "country": destination.country }),
        )
    })?;
    let lines = priced
        .lines
        .iter()
        .map(|(item, facts)| (item.variant_id, facts.sku.clone(), item.quantity))
        .collect();
    let mut rows = OrderRows::new(shop, actor, &start, &priced, &req, &shipping.code);
    // Without coupons the order is written by the batch that grants its stock, in the same
    // transaction. Coupons' counters are conditional writes that may refuse, so an order
    // with coupons follows the grant in a transaction of its own (step 3 above).
    let placement = priced.coupons.is_empty().then(|| {
        let rows = rows.clone();
        Arc::new(Placement {
            cart: cart.id,
            cart_version: cart.version,
            reservation: rows.order.reservation_id,
            rows: Box::new(move |w| {
                rows.queue(w, true);
            }),
        })
    });
    let placed_with_grant = placement.is_some();
    let reservation = shop
        .engine
        .reserve(Attempt::Stock {
            user,
            lines,
            ttl: shop.config.checkout.payment_window,
            then: placement,
        })
        .await;
    let reservation = match reservation {
        Err(ShopError::Conflict {
            code: "already_checked_out",
            ..
        }) => return existing_order(shop, actor, cart.id).await,
        r => r?,
    };
    if placed_with_grant {
        let placed = rows.placed(&reservation, &priced);
        return charge(shop, actor, rows.payment, &req.card_token, placed).await;
    }
    rows.order.reservation_id = reservation.id;
    let placed = place_order(shop, actor, &priced, &rows).await;
    if let Err(e) = placed {
        let mut tx = shop.db.begin().await?;
        crate::inventory::reservations::release_in(&mut tx, user, reservation.id, shop.now())
            .await?;
        tx.commit().await?;
        shop.catalog_version.bump();
        if matches!(
            &e,
            ShopError::Conflict {
                code: "already_checked_out",
                ..
            }
        ) {
            return existing_order(shop, actor, cart.id).await;
        }
        return Err(e);
    }
    charge(shop, actor, rows.payment, &req.card_token, None).await
}

/// Asks the provider to charge and applies its answer: in one round trip when the checkout
/// knows the rows it wrote (`placed`) and nothing else moved them, else the usual way.
async fn charge(
    shop: &Shop,
    actor: &Actor,
    payment: PaymentRow,
    token: &str,
    placed: Option<payments::Placed>,
) -> Result<CheckoutView, ShopError> {
    let request = ChargeRequest {
        key: payment.id.to_string(),
        amount_minor: payment.amount_minor,
        currency: payment.currency.clone(),
        token: token.to_owned(),
    };
    let answer = tokio::time::timeout(
        shop.config.checkout.gateway_timeout,
        shop.gateway.charge(&request),
    )
    .await;
    if shop
        .config
        .checkout
        .faults
        .after_charge
        .load(Ordering::SeqCst)
    {
        return Err(ShopError::internal(anyhow::anyhow!(
            "injected fault after the charge"
        )));
    }
    let report = match answer {
        Ok(Ok(p)) => Report::from_provider(&p),
        Ok(Err(emporium_payments::GatewayError::Unknown(_))) => Report::failed("invalid_token"),
        Ok(Err(emporium_payments::GatewayError::Refused(_))) => Report::failed("refused"),
        // No answer in time: the order is cancelled and its stock released; if the provider
        // captured anyway, reconciliation refunds it.
        Ok(Err(emporium_payments::GatewayError::Unavailable(_))) | Err(_) => {
            Report::failed("timeout")
        }
    };
    let turn = shop.payment_locks.lock(payment.id).await;
    let fast = match &placed {
        Some(placed) => payments::apply_capture(shop, placed, &report).await?,
        None => None,
    };
    let applied = match fast {
        Some(applied) => applied,
        None => payments::apply(shop, actor.user_id, payment.id, &report, None).await?,
    };
    drop(turn);
    let order = match applied.order {
        Some(order) => order,
        // Something else (the webhook) applied the provider's answer first.
        None => order_store::find_order(&shop.db, actor.user_id.0, applied.payment.order_id)
            .await?
            .ok_or(ShopError::NotFound("order"))?,
    };
    checkout_view(&order, &applied.payment)
}

/// The order already placed for this cart (a repeated submit), with its newest payment.
async fn existing_order(shop: &Shop, actor: &Actor, cart: Uuid) -> Result<CheckoutView, ShopError> {
    let order = order_store::order_for_cart(&shop.db, actor.user_id.0, cart).await?;
    let order =
        order.ok_or_else(|| ShopError::conflict("cart_not_open", "the cart is not open"))?;
    let payment = payment_store::payments_of_order(&shop.db, actor.user_id.0, order.id)
        .await?
        .pop()
        .ok_or(ShopError::NotFound("payment"))?;
    checkout_view(&order, &payment)
}

/// An order's rows, made before its stock is reserved: the order (`pending_payment`, with
/// the id its reservation will get), its line snapshots, its `pending` payment.
#[derive(Debug, Clone)]
struct OrderRows {
    order: OrderRow,
    lines: Vec<OrderLineRow>,
    payment: PaymentRow,
    /// The cart's version the order was made from.
    cart_version: i64,
    now: chrono::DateTime<chrono::Utc>,
}

impl OrderRows {
    /// The rows as the grant wrote them, with the reservation's allocation; `None` when the
    /// reservation's lines do not match the cart's (then nothing is assumed about them).
    fn placed(
        &self,
        reservation: &ReservationView,
        priced: &PricedCart,
    ) -> Option<payments::Placed> {
        let user = self.order.user_id;
        if reservation.lines.len() != priced.lines.len() {
            return None;
        }
        let mut lines = Vec::new();
        for line in &reservation.lines {
            let (item, _) = priced.lines.iter().find(|(_, f)| f.sku == line.sku)?;
            let allocated: i64 = line.allocations.iter().map(|a| a.quantity).sum();
            if allocated != line.quantity || line.quantity != item.quantity {
                return None;
            }
            lines.extend(line.allocations.iter().map(|a| LineRow {
                user_id: user,
                reservation_id: reservation.id,
                variant_id: item.variant_id,
                location_id: a.location_id,
                quantity: a.quantity,
                unit_price_minor: line.unit_price_minor,
                currency: line.currency.clone(),
            }));
        }
        if reservation.id != self.order.reservation_id || lines.is_empty() {
            return None;
        }
        Some(payments::Placed {
            order: self.order.clone(),
            payment: self.payment.clone(),
            reservation: ReservationRow {
                user_id: user,
                id: reservation.id,
                status: reservation.status.clone(),
                flash_sale_id: reservation.flash_sale_id,
                expires_at: reservation.expires_at,
                created_at: reservation.created_at,
                updated_at: reservation.created_at,
            },
            lines,
        })
    }

    fn new(
        shop: &Shop,
        actor: &Actor,
        start: &cart_store::CheckoutStart,
        priced: &PricedCart,
        req: &CheckoutRequest,
        shipping_method: &str,
    ) -> Self {
        let now = shop.now();
        let order = order_row(
            &start.cart,
            priced,
            req,
            shipping_method,
            Uuid::now_v7(),
            start.email.clone(),
            now,
        );
        let lines = line_rows(&order, priced);
        let payment = PaymentRow {
            user_id: actor.user_id.0,
            id: Uuid::now_v7(),
            order_id: order.id,
            provider: shop.gateway.name().to_owned(),
            provider_ref: None,
            status: PaymentStatus::Pending.as_str().to_owned(),
            amount_minor: order.total_minor,
            refunded_minor: 0,
            currency: order.currency.clone(),
            card_token: Some(req.card_token.clone()),
            card_brand: None,
            card_last4: None,
            failure_code: None,
            created_at: now,
            updated_at: now,
        };
        Self {
            order,
            lines,
            payment,
            cart_version: start.cart.version,
            now,
        }
    }

    /// Queues closing the cart, the order with its lines, the payment and `order.created`.
    /// Returns the index of the cart's closing, which touches no row when the cart is not
    /// open any more; `locked`: the cart was read open under a lock the transaction holds,
    /// so that would be an error of the whole transaction.
    fn queue(&self, writes: &mut Writes, locked: bool) -> usize {
        let (user, cart) = (self.order.user_id, self.order.cart_id);
        let closed = writes.len();
        if locked {
            cart_store::queue_close_locked_cart(writes, user, cart, self.cart_version, self.now);
        } else {
            cart_store::queue_close_cart(writes, user, cart, self.cart_version, self.now);
        }
        order_store::queue_insert_order(writes, &self.order, &self.lines);
        payment_store::queue_insert_payment(writes, &self.payment);
        events::queue(
            writes,
            user,
            events::ORDER_CREATED,
            payments::order_event(&self.order),
            self.now,
        );
        closed
    }
}

/// Step 3 for an order with coupons: the coupon redemptions and the order's rows, in one
/// transaction after the grant.
async fn place_order(
    shop: &Shop,
    actor: &Actor,
    priced: &PricedCart,
    rows: &OrderRows,
) -> Result<(), ShopError> {
    let user = actor.user_id.0;
    let mut tx = shop.db.begin().await?;
    for coupon in &priced.coupons {
        if !emporium_store::pricing::use_coupon(&mut tx, coupon.id).await? {
            return Err(ShopError::conflict_with(
                "coupon_used_up",
                "the coupon has been used up",
                serde_json::json!({ "coupon": coupon.code }),
            ));
        }
        if !emporium_store::pricing::use_coupon_by(
            &mut tx,
            user,
            coupon.id,
            coupon.per_customer_limit,
        )
        .await?
        {
            return Err(ShopError::conflict_with(
                "coupon_limit_reached",
                "you have used this coupon as often as allowed",
                serde_json::json!({ "coupon": coupon.code }),
            ));
        }
    }
    // The rest in one round trip; when the cart turns out not to be open any more, or
    // changed since it was read, the transaction is dropped and none of it stays.
    let mut writes = Writes::new();
    let closed = rows.queue(&mut writes, false);
    if writes.run(&mut tx).await?[closed] != 1 {
        let still_open = cart_store::lock_cart(&mut tx, rows.order.cart_id)
            .await?
            .is_some_and(|c| c.status == "open");
        drop(tx);
        if still_open {
            return Err(crate::cart::changed_during_checkout());
        }
        return Err(ShopError::conflict(
            "already_checked_out",
            "the cart was checked out at the same time",
        ));
    }
    tx.commit().await?;
    Ok(())
}

fn order_row(
    cart: &cart_store::CartRow,
    priced: &PricedCart,
    req: &CheckoutRequest,
    shipping_method: &str,
    reservation: Uuid,
    email: String,
    now: chrono::DateTime<chrono::Utc>,
) -> OrderRow {
    let q = &priced.quote;
    let a = &req.address;
    OrderRow {
        user_id: cart.user_id,
        id: Uuid::now_v7(),
        cart_id: cart.id,
        email,
        status: "pending_payment".to_owned(),
        currency: cart.currency.clone(),
        fx_rate_e9: cart.fx_rate_e9,
        subtotal_minor: q.subtotal_minor,
        discount_minor: q.discount_minor,
        shipping_minor: q.shipping_minor,
        tax_minor: q.tax_minor,
        total_minor: q.total_minor,
        refunded_minor: 0,
        tax_mode: match priced.tax_mode {
            TaxMode::Inclusive => "inclusive",
            TaxMode::Exclusive => "exclusive",
        }
        .to_owned(),
        coupon_codes: q
            .discounts
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(","),
        shipping_method: shipping_method.to_owned(),
        shipping_address: Json(serde_json::json!({
            "name": a.name, "line1": a.line1, "line2": a.line2, "city": a.city,
            "region": a.region, "postal_code": a.postal_code, "country": a.country.as_str(),
            "phone": a.phone,
        })),
        reservation_id: reservation,
        cancel_reason: None,
        created_at: now,
        updated_at: now,
        paid_at: None,
    }
}

/// Line snapshots: title, SKU, unit price, and each line's share of discount and tax.
fn line_rows(order: &OrderRow, priced: &PricedCart) -> Vec<OrderLineRow> {
    let q = &priced.quote;
    priced
        .lines
        .iter()
        .enumerate()
        .map(|(i, (item, facts))| {
            let discount = q.line_discounts.get(i).copied().unwrap_or(0);
            let tax = q.line_taxes.get(i).copied().unwrap_or(0);
            let net = item.unit_price_minor * item.quantity - discount;
            OrderLineRow {
                user_id: order.user_id,
                order_id: order.id,
                line_no: i32::try_from(i + 1).unwrap_or(i32::MAX),
                variant_id: item.variant_id,
                product_id: facts.product_id,
                seller_id: facts.seller_id,
                sku: facts.sku.clone(),
                title: facts.title.clone(),
                quantity: item.quantity,
                unit_price_minor: item.unit_price_minor,
                discount_minor: discount,
                tax_minor: tax,
                total_minor: match priced.tax_mode {
                    TaxMode::Exclusive => net + tax,
                    TaxMode::Inclusive => net,
                },
            }
        })
        .collect()
}
