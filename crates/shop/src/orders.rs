//! Orders after checkout: what customers, sellers and admins see, fulfilment per seller
//! (shipments with carrier and tracking, delivery), cancellation before payment, and
//! returns (request, approve or reject, receive with restock, refund).

mod returns;

use chrono::{DateTime, Utc};
use emporium_domain::Invalid;
use emporium_domain::order::{OrderEvent, OrderStatus};
use emporium_store::orders::{self as store, FulfilmentRow, OrderDetail, OrderFilter, OrderRow};
use serde::Serialize;
use uuid::Uuid;

pub use returns::{ReturnLine, ReturnView, decide_return, request_return};

use crate::identity::Actor;
use crate::payments::PaymentView;
use crate::{Shop, ShopError, events};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderSummary {
    pub id: Uuid,
    pub status: OrderStatus,
    pub email: String,
    pub currency: String,
    pub total_minor: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    pub status: OrderStatus,
    pub email: String,
    pub currency: String,
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub shipping_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
    pub refunded_minor: i64,
    pub tax_mode: String,
    pub coupons: Vec<String>,
    pub shipping_method: String,
    #[schema(value_type = Object)]
    pub shipping_address: serde_json::Value,
    pub cancel_reason: Option<String>,
    pub lines: Vec<OrderLineView>,
    /// One group per seller, each shipped and tracked on its own.
    pub fulfilments: Vec<FulfilmentView>,
    pub payments: Vec<PaymentView>,
    pub returns: Vec<ReturnView>,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderLineView {
    pub line_no: i32,
    pub sku: String,
    pub title: String,
    pub seller_id: Uuid,
    pub quantity: i64,
    pub unit_price_minor: i64,
    pub discount_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FulfilmentView {
    pub seller_id: Uuid,
    /// pending, shipped, delivered or cancelled.
    pub status: String,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

fn summary(o: &OrderRow) -> Result<OrderSummary, ShopError> {
    Ok(OrderSummary {
        id: o.id,
        status: OrderStatus::parse(&o.status)?,
        email: o.email.clone(),
        currency: o.currency.clone(),
        total_minor: o.total_minor,
        created_at: o.created_at,
    })
}

/// The order as it is now, after a change to it committed.
async fn view_now(shop: &Shop, o: &OrderRow) -> Result<OrderView, ShopError> {
    let detail = store::order_detail(&shop.db, o.user_id, o.id)
        .await?
        .ok_or(ShopError::NotFound("order"))?;
    view(detail, None)
}

/// The full view; `seller` limits lines and fulfilments to one seller's (`None`: the
/// customer or an admin sees all).
fn view(detail: OrderDetail, seller: Option<Uuid>) -> Result<OrderView, ShopError> {
    let OrderDetail {
        order: o,
        lines,
        fulfilments,
        payments,
        returns,
    } = detail;
    let mine = |s: Uuid| seller.is_none_or(|x| x == s);
    Ok(OrderView {
        id: o.id,
        status: OrderStatus::parse(&o.status)?,
        email: o.email.clone(),
        currency: o.currency.clone(),
        subtotal_minor: o.subtotal_minor,
        discount_minor: o.discount_minor,
        shipping_minor: o.shipping_minor,
        tax_minor: o.tax_minor,
        total_minor: o.total_minor,
        refunded_minor: o.refunded_minor,
        tax_mode: o.tax_mode.clone(),
        coupons: o
            .coupon_codes
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
        shipping_method: o.shipping_method.clone(),
        shipping_address: o.shipping_address.0.clone(),
        cancel_reason: o.cancel_reason.clone(),
        lines: lines
            .into_iter()
            .filter(|l| mine(l.seller_id))
            .map(|l| OrderLineView {
                line_no: l.line_no,
                sku: l.sku,
                title: l.title,
                seller_id: l.seller_id,
                quantity: l.quantity,
                unit_price_minor: l.unit_price_minor,
                discount_minor: l.discount_minor,
                tax_minor: l.tax_minor,
                total_minor: l.total_minor,
            })
            .collect(),
        fulfilments: fulfilments
            .into_iter()
            .filter(|f| mine(f.seller_id))
            .map(fulfilment_view)
            .collect(),
        payments: if seller.is_some() {
            Vec::new()
        } else {
            payments.iter().map(crate::payments::view).collect()
        },
        returns: returns
            .iter()
            .map(returns::view)
            .collect::<Result<_, _>>()?,
        created_at: o.created_at,
        paid_at: o.paid_at,
    })
}

fn fulfilment_view(f: FulfilmentRow) -> FulfilmentView {
    FulfilmentView {
        seller_id: f.seller_id,
        status: f.status,
        carrier: f.carrier,
        tracking_number: f.tracking,
        shipped_at: f.shipped_at,
        delivered_at: f.delivered_at,
    }
}

/// An order as its customer, one of its sellers, or an admin may see it.
pub async fn get(shop: &Shop, actor: &Actor, id: Uuid) -> Result<OrderView, ShopError> {
    // Admins and sellers do not know the customer: the order is found by id first.
    let user = if actor.is_admin() || actor.can_sell() {
        store::find_order_by_id(&shop.db, id)
            .await?
            .map(|o| o.user_id)
    } else {
        Some(actor.user_id.0)
    };
    let detail = match user {
        Some(user) => store::order_detail(&shop.db, user, id).await?,
        None => None,
    }
    .ok_or(ShopError::NotFound("order"))?;
    if detail.order.user_id == actor.user_id.0 || actor.is_admin() {
        return view(detail, None);
    }
    if detail.lines.iter().any(|l| l.seller_id == actor.user_id.0) {
        return view(detail, Some(actor.user_id.0));
    }
    Err(ShopError::NotFound("order"))
}

/// Which orders a list shows, by who asks.
#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    pub email: Option<String>,
    pub status: Option<OrderStatus>,
    pub id: Option<Uuid>,
    pub before: Option<Uuid>,
    pub limit: i64,
}

pub async fn list_own(
    shop: &Shop,
    actor: &Actor,
    q: OrderQuery,
) -> Result<Vec<OrderSummary>, ShopError> {
    list(
        shop,
        OrderFilter {
            user_id: Some(actor.user_id.0),
            ..filter(q)
        },
    )
    .await
}

pub async fn list_for_seller(
    shop: &Shop,
    actor: &Actor,
    q: OrderQuery,
) -> Result<Vec<OrderSummary>, ShopError> {
    list(
        shop,
        OrderFilter {
            seller_id: Some(actor.user_id.0),
            ..filter(q)
        },
    )
    .await
}

pub async fn list_all(shop: &Shop, q: OrderQuery) -> Result<Vec<OrderSummary>, ShopError> {
    list(shop, filter(q)).await
}

fn filter(q: OrderQuery) -> OrderFilter {
    OrderFilter {
        user_id: None,
        seller_id: None,
        email: q.email.map(|e| e.trim().to_lowercase()),
        status: q.status.map(|s| s.as_str().to_owned()),
        id: q.id,
        before: q.before,
        limit: q.limit.clamp(1, 100),
    }
}

async fn list(shop: &Shop, f: OrderFilter) -> Result<Vec<OrderSummary>, ShopError> {
    store::list_orders(&shop.db, &f)
        .await?
        .iter()
        .map(summary)
        .collect()
}

/// A seller ships its group of an order (or delivers it, when `delivered`).
pub async fn update_shipment(
    shop: &Shop,
    actor: &Actor,
    id: Uuid,
    carrier: Option<String>,
    tracking: Option<String>,
    delivered: bool,
) -> Result<OrderView, ShopError> {
    let found = store::find_order_by_id(&shop.db, id)
        .await?
        .ok_or(ShopError::NotFound("order"))?;
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let mut order = store::lock_order(&mut tx, found.user_id, id)
        .await?
        .ok_or(ShopError::NotFound("order"))?;
    let groups = store::fulfilments_in_tx(&mut tx, order.user_id, order.id).await?;
    let mut group = groups
        .iter()
        .find(|g| g.seller_id == actor.user_id.0 || (actor.is_admin() && groups.len() == 1))
        .cloned()
        .ok_or(ShopError::NotFound("order"))?;
    let (from, event) = if delivered {
        group.status = "delivered".to_owned();
        group.delivered_at = Some(now);
        let all = groups
            .iter()
            .all(|g| g.seller_id == group.seller_id || g.status == "delivered");
        ("shipped", all.then_some(OrderEvent::Delivered))
    } else {
        let clean = |v: Option<String>, field: &str| -> Result<String, Invalid> {
            let v = v.map(|s| s.trim().to_owned()).unwrap_or_default();
            if v.is_empty() || v.len() > 100 {
                return Err(Invalid::new(field, "must be 1 to 100 characters"));
            }
            Ok(v)
        };
        group.carrier = Some(clean(carrier, "carrier")?);
        group.tracking = Some(clean(tracking, "tracking_number")?);
        group.status = "shipped".to_owned();
        group.shipped_at = Some(now);
        let all = groups
            .iter()
            .all(|g| g.seller_id == group.seller_id || g.status != "pending");
        ("pending", Some(OrderEvent::Shipped { all_shipped: all }))
    };
    let status = OrderStatus::parse(&order.status)?;
    let next = match event {
        Some(e) => Some(status.apply(e).ok_or_else(|| {
            ShopError::conflict(
                "illegal_transition",
                format!("an order that is {} cannot do that", status.as_str()),
            )
        })?),
        None => None,
    };
    if !store::update_fulfilment(&mut tx, &group, from).await? {
        return Err(ShopError::conflict(
            "illegal_transition",
            format!("this shipment is not {from}"),
        ));
    }
    if let Some(next) = next
        && next != status
    {
        store::set_status(
            &mut tx,
            order.user_id,
            order.id,
            status.as_str(),
            next.as_str(),
            now,
        )
        .await?;
        order.status = next.as_str().to_owned();
    }
    let topic = if delivered {
        events::ORDER_DELIVERED
    } else {
        events::ORDER_SHIPPED
    };
    let payload = serde_json::json!({
        "order_id": order.id, "seller_id": group.seller_id, "carrier": group.carrier,
        "tracking_number": group.tracking, "status": order.status,
    });
    events::emit(&mut tx, order.user_id, topic, payload, now).await?;
    tx.commit().await?;
    view_now(shop, &order).await
}

/// Cancels an order still waiting for payment: voids the payment at the provider when it
/// waits for the customer, releases the stock.
pub async fn cancel(shop: &Shop, actor: &Actor, id: Uuid) -> Result<OrderView, ShopError> {
    let order = if actor.is_admin() {
        store::find_order_by_id(&shop.db, id).await?
    } else {
        store::find_order(&shop.db, actor.user_id.0, id).await?
    }
    .ok_or(ShopError::NotFound("order"))?;
    if OrderStatus::parse(&order.status)? != OrderStatus::PendingPayment {
        return Err(ShopError::conflict(
            "illegal_transition",
            "only an order waiting for payment can be cancelled; a paid order is refunded",
        ));
    }
    for p in emporium_store::payments::payments_of_order(&shop.db, order.user_id, order.id).await? {
        if let Some(reference) = p.provider_ref.as_deref() {
            let _ = tokio::time::timeout(
                shop.config.checkout.gateway_timeout,
                shop.gateway.void(reference),
            )
            .await;
        }
    }
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let mut locked = store::lock_order(&mut tx, order.user_id, id)
        .await?
        .ok_or(ShopError::NotFound("order"))?;
    crate::payments::cancel_in(&mut tx, &mut locked, "cancelled_by_request", now).await?;
    tx.commit().await?;
    shop.catalog_version.bump();
    view_now(shop, &locked).await
}
