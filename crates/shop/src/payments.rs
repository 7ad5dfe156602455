//! Payments after checkout: applying what the provider reports (the charge's answer, the
//! client's confirm, webhooks, reconciliation), refunds, and the reconciliation job.
//!
//! Every report goes through [`apply`]: one transaction that locks the payment, accepts the
//! new state only if [`PaymentStatus::accepts`] it (reports come late, twice and out of
//! order), records the provider event id (so a webhook is applied once), and moves the
//! order: paid with its reservation committed, or cancelled with its reservation released.
//! The one shortcut is [`apply_capture`], for the answer to a checkout's own charge: the
//! same writes in one round trip, each conditional on its row being as the checkout wrote it,
//! dropped whole (and [`apply`] used instead) when any is not.
//! The unique index `payments_one_success` makes a second captured payment for an order
//! impossible whatever the race.

mod reconcile;
mod refund;

use chrono::{DateTime, Utc};
use emporium_domain::ids::UserId;
use emporium_domain::order::{OrderEvent, OrderStatus, PaymentStatus};
use emporium_payments::{ChargeStatus, ProviderPayment, WebhookKind};
use emporium_store::orders::{self as order_store, OrderRow};
use emporium_store::payments::{self as store, PaymentRow};
use emporium_store::reservations::{LineRow, ReservationRow};
use emporium_store::{Tx, Writes};
use serde::Serialize;
use uuid::Uuid;

pub use reconcile::{ReconcileOutcome, reconcile_once};
pub use refund::{refund, refund_order};

use crate::identity::Actor;
use crate::{Shop, ShopError, events};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    pub id: Uuid,
    pub status: PaymentStatus,
    pub provider: String,
    pub amount_minor: i64,
    pub refunded_minor: i64,
    pub currency: String,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub failure_code: Option<String>,
    /// What the client must do next, when the payment waits for the customer.
    pub next_action: Option<NextAction>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NextAction {
    /// `confirm`: complete the challenge, then POST to `url`.
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
}

pub(crate) fn view(p: &PaymentRow) -> PaymentView {
    let status = PaymentStatus::parse(&p.status).unwrap_or(PaymentStatus::Pending);
    PaymentView {
        id: p.id,
        status,
        provider: p.provider.clone(),
        amount_minor: p.amount_minor,
        refunded_minor: p.refunded_minor,
        currency: p.currency.clone(),
        card_brand: p.card_brand.clone(),
        card_last4: p.card_last4.clone(),
        failure_code: p.failure_code.clone(),
        next_action: (status == PaymentStatus::RequiresAction).then(|| NextAction {
            kind: "confirm".to_owned(),
            url: format!("/api/v1/payments/{}/confirm", p.id),
        }),
    }
}

/// What a provider said about a payment.
#[derive(Debug, Clone)]
pub struct Report {
    pub status: PaymentStatus,
    pub reference: Option<String>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub failure_code: Option<String>,
}

impl Report {
    /// The payment as this report leaves it, at `now`.
    fn write_into(&self, payment: &mut PaymentRow, now: DateTime<Utc>) {
        payment.status = self.status.as_str().to_owned();
        payment.provider_ref = self.reference.clone().or(payment.provider_ref.take());
        payment.card_brand = self.card_brand.clone().or(payment.card_brand.take());
        payment.card_last4 = self.card_last4.clone().or(payment.card_last4.take());
        payment.failure_code = self.failure_code.clone().or(payment.failure_code.take());
        payment.updated_at = now;
    }

    pub fn from_provider(p: &ProviderPayment) -> Self {
        let (status, failure_code) = match &p.status {
            ChargeStatus::Succeeded => (PaymentStatus::Succeeded, None),
            ChargeStatus::RequiresAction => (PaymentStatus::RequiresAction, None),
            ChargeStatus::Processing => (PaymentStatus::Processing, None),
            ChargeStatus::Failed { code } => (PaymentStatus::Failed, Some(code.clone())),
            ChargeStatus::Voided => (PaymentStatus::Voided, None),
        };
        Self {
            status,
            reference: Some(p.reference.clone()),
            card_brand: p.card_brand.clone(),
            card_last4: p.card_last4.clone(),
            failure_code,
        }
    }

    pub fn failed(code: &str) -> Self {
        Self {
            status: PaymentStatus::Failed,
            reference: None,
            card_brand: None,
            card_last4: None,
            failure_code: Some(code.to_owned()),
        }
    }
}

/// Reports about the same payment on this node take turns: the answer to a charge and the
/// provider's webhook for it usually arrive together, and the second to come, once the first
/// is applied, finds the payment already moved and writes nothing. Striped by payment id (two
/// payments rarely share a stripe, and then only wait for one short transaction). Across
/// nodes the database decides as before; this only saves the loser's work.
pub struct PaymentLocks(Vec<tokio::sync::Mutex<()>>);

impl Default for PaymentLocks {
    fn default() -> Self {
        Self((0..256).map(|_| tokio::sync::Mutex::new(())).collect())
    }
}

impl PaymentLocks {
    pub(crate) async fn lock(&self, payment: Uuid) -> tokio::sync::MutexGuard<'_, ()> {
        let stripe = (payment.as_u128() % self.0.len() as u128) as usize;
        self.0[stripe].lock().await
    }
}

/// A provider event to record with the report: (provider, event id, kind).
pub(crate) type EventKey<'a> = (&'a str, &'a str, &'a str);

/// A payment and its order after a report. `order` is `None` when the report changed
/// nothing (a repeated event, or a state the payment had already moved past, found under its
/// lock); it is not read then: most callers only need the payment.
pub struct Applied {
    pub payment: PaymentRow,
    pub order: Option<OrderRow>,
}

/// Applies a report to a payment and its order in one transaction; returns both after it.
pub(crate) async fn apply(
    shop: &Shop,
    user: UserId,
    payment_id: Uuid,
    report: &Report,
    event: Option<EventKey<'_>>,
) -> Result<Applied, ShopError> {
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    if let Some((provider, event_id, kind)) = event
        && !store::record_event(&mut tx, user.0, provider, event_id, payment_id, kind, now).await?
    {
        // Already applied: answer with the current state, change nothing.
        drop(tx);
        let payment = store::find_payment(&shop.db, user.0, payment_id)
            .await?
            .ok_or(ShopError::NotFound("payment"))?;
        return Ok(Applied {
            payment,
            order: None,
        });
    }
    // The order and its reservation come with the payment: one round trip, where three
    // statements would each hold the writer.
    let locked = store::lock_payment_with_order(&mut tx, user.0, payment_id)
        .await?
        .ok_or(ShopError::NotFound("payment"))?;
    let mut payment = locked.payment;
    let from = PaymentStatus::parse(&payment.status)?;
    if !from.accepts(report.status) {
        // Nothing changes (a late or repeated report): only the event id is kept, and the
        // payment is as it was locked.
        tx.commit().await?;
        return Ok(Applied {
            payment,
            order: None,
        });
    }
    let mut order = locked.order.ok_or(ShopError::NotFound("order"))?;
    report.write_into(&mut payment, now);
    // The payment and order are locked: what follows is decided, and its writes go to the
    // database together.
    let mut writes = Writes::new();
    store::queue_update_payment(&mut writes, &payment);
    move_order(
        &mut tx,
        &mut writes,
        &mut order,
        locked.reservation,
        report.status,
        now,
    )
    .await?;
    writes.run(&mut tx).await?;
    tx.commit().await?;
    shop.catalog_version.bump();
    Ok(Applied {
        payment,
        order: Some(order),
    })
}

/// The rows a checkout wrote with its grant, as it wrote them: enough to apply the answer to
/// its charge without locking and reading them back.
#[derive(Debug, Clone)]
pub struct Placed {
    pub order: OrderRow,
    pub payment: PaymentRow,
    pub reservation: ReservationRow,
    pub lines: Vec<LineRow>,
}

/// Applies a capture reported in answer to the checkout's own charge, in one round trip
/// where [`apply`] takes two: every write is conditional on its row being as the checkout
/// left it (the payment `pending`, the order `pending_payment`, the reservation active with
/// its units reserved), and if any is not (a webhook or the customer's confirm came first,
/// the hold ended) the transaction is dropped whole and `None` says so: the caller applies
/// the report the usual way. The rows are written in the order [`apply`] locks them.
pub async fn apply_capture(
    shop: &Shop,
    placed: &Placed,
    report: &Report,
) -> Result<Option<Applied>, ShopError> {
    let now = shop.now();
    if report.status != PaymentStatus::Succeeded || placed.payment.status != "pending" {
        return Ok(None);
    }
    let mut payment = placed.payment.clone();
    report.write_into(&mut payment, now);
    let mut order = placed.order.clone();
    let mut writes = Writes::new();
    store::queue_update_pending_payment(&mut writes, &payment);
    let reservation = Some((placed.reservation.clone(), placed.lines.clone()));
    match queue_paid(&mut writes, &mut order, reservation, now) {
        Ok(()) => {}
        // The hold ran out: the usual way cancels the order.
        Err(ShopError::Conflict { .. } | ShopError::ConflictDetails { .. }) => return Ok(None),
        Err(e) => return Err(e),
    }
    // Refused when a row is not as the checkout left it.
    if writes
        .commit_unless_refused(&shop.db, false)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    shop.catalog_version.bump();
    Ok(Some(Applied {
        payment,
        order: Some(order),
    }))
}

/// What a payment's new state means for its order, in the caller's transaction: paid, with
/// its reservation (locked by the caller) committed (queued in `writes`), or cancelled.
async fn move_order(
    tx: &mut Tx,
    writes: &mut Writes,
    order: &mut OrderRow,
    reservation: Option<(ReservationRow, Vec<LineRow>)>,
    payment: PaymentStatus,
    now: DateTime<Utc>,
) -> Result<(), ShopError> {
    let status = OrderStatus::parse(&order.status)?;
    match payment {
        PaymentStatus::Succeeded if status == OrderStatus::PendingPayment => {
            match queue_paid(writes, order, reservation, now) {
                Ok(()) => {}
                // The hold ran out before the money arrived: the order cannot be fulfilled.
                // It is cancelled here and the capture refunded by reconciliation.
                Err(ShopError::Conflict { .. } | ShopError::ConflictDetails { .. }) => {
                    cancel_in(tx, order, "stock_released_before_payment", now).await?;
                }
                Err(e) => return Err(e),
            }
        }
        PaymentStatus::Failed | PaymentStatus::Voided if status == OrderStatus::PendingPayment => {
            let event =
                serde_json::json!({ "order_id": order.id, "payment_status": payment.as_str() });
            crate::events::emit(tx, order.user_id, events::PAYMENT_FAILED, event, now).await?;
            cancel_in(tx, order, "payment_failed", now).await?;
        }
        _ => {}
    }
    Ok(())
}

/// Queues a pending order's move to paid: its reservation committed (its units sold), its
/// status, `order.paid`. A 409 when the reservation is no longer active; nothing is queued then.
fn queue_paid(
    writes: &mut Writes,
    order: &mut OrderRow,
    reservation: Option<(ReservationRow, Vec<LineRow>)>,
    now: DateTime<Utc>,
) -> Result<(), ShopError> {
    let user = UserId(order.user_id);
    let to = next_status(order, OrderEvent::PaymentSucceeded)?;
    crate::inventory::reservations::queue_commit(writes, user, reservation, now)?;
    order_store::queue_set_status(
        writes,
        order.user_id,
        order.id,
        &order.status,
        to.as_str(),
        now,
    );
    order.status = to.as_str().to_owned();
    order.updated_at = now;
    order.paid_at = Some(now);
    events::queue(
        writes,
        order.user_id,
        events::ORDER_PAID,
        order_event(order),
        now,
    );
    Ok(())
}

/// The state `event` moves the order to, or 409 `illegal_transition`.
fn next_status(order: &OrderRow, event: OrderEvent) -> Result<OrderStatus, ShopError> {
    let from = OrderStatus::parse(&order.status)?;
    from.apply(event).ok_or_else(|| {
        ShopError::conflict(
            "illegal_transition",
            format!("an order that is {} cannot do that", from.as_str()),
        )
    })
}

async fn set_order_status(
    tx: &mut Tx,
    order: &mut OrderRow,
    event: OrderEvent,
    now: DateTime<Utc>,
) -> Result<(), ShopError> {
    let to = next_status(order, event)?;
    if !order_store::set_status(tx, order.user_id, order.id, &order.status, to.as_str(), now)
        .await?
    {
        return Err(ShopError::conflict(
            "order_changed",
            "the order changed at the same time",
        ));
    }
    order.status = to.as_str().to_owned();
    Ok(())
}

/// Cancels an unpaid order: releases its reservation, gives its coupon uses back and
/// reopens its cart for another try.
pub(crate) async fn cancel_in(
    tx: &mut Tx,
    order: &mut OrderRow,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), ShopError> {
    set_order_status(tx, order, OrderEvent::Cancel, now).await?;
    order_store::set_cancel_reason(tx, order.user_id, order.id, reason).await?;
    order.cancel_reason = Some(reason.to_owned());
    let user = UserId(order.user_id);
    crate::inventory::reservations::release_in(tx, user, order.reservation_id, now).await?;
    for code in order.coupon_codes.split(',').filter(|c| !c.is_empty()) {
        if let Some(id) = emporium_store::pricing::coupon_id_in_tx(tx, code).await? {
            emporium_store::pricing::return_coupon_use(tx, order.user_id, id).await?;
        }
    }
    emporium_store::carts::reopen_cart(tx, order.user_id, order.cart_id, now).await?;
    emit(tx, order, events::ORDER_CANCELLED, now).await
}

pub(crate) async fn emit(
    tx: &mut Tx,
    order: &OrderRow,
    topic: &str,
    now: DateTime<Utc>,
) -> Result<(), ShopError> {
    Ok(events::emit(tx, order.user_id, topic, order_event(order), now).await?)
}

/// What an order event says of its order.
pub(crate) fn order_event(order: &OrderRow) -> serde_json::Value {
    serde_json::json!({
        "order_id": order.id,
        "user_id": order.user_id,
        "status": order.status,
        "total_minor": order.total_minor,
        "currency": order.currency,
    })
}

/// Completes a `requires_action` payment after the customer's challenge. Safe to race
/// with the provider's webhook: whichever applies first wins, the other changes nothing.
pub async fn confirm(shop: &Shop, actor: &Actor, id: Uuid) -> Result<PaymentView, ShopError> {
    let payment = store::find_payment(&shop.db, actor.user_id.0, id)
        .await?
        .ok_or(ShopError::NotFound("payment"))?;
    let status = PaymentStatus::parse(&payment.status)?;
    if status != PaymentStatus::RequiresAction {
        if status.captured() {
            return Ok(view(&payment));
        }
        return Err(ShopError::conflict_with(
            "payment_not_confirmable",
            format!("the payment is {}", status.as_str()),
            serde_json::json!({ "payment_status": status.as_str() }),
        ));
    }
    let reference = payment.provider_ref.clone().unwrap_or_default();
    let answer = tokio::time::timeout(
        shop.config.checkout.gateway_timeout,
        shop.gateway.confirm(&reference),
    )
    .await;
    let report = match answer {
        Ok(Ok(p)) => Report::from_provider(&p),
        // No answer: the payment stays as it is; the webhook or reconciliation decides.
        Ok(Err(_)) | Err(_) => return Ok(view(&payment)),
    };
    let applied = apply(shop, actor.user_id, id, &report, None).await?;
    Ok(view(&applied.payment))
}

/// Whether a webhook changed anything.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookOutcome {
    pub event_id: String,
    /// False when it changed nothing: a repeated delivery, or a report the payment had
    /// already moved past.
    pub applied: bool,
}

/// Verifies and applies a provider webhook, once per provider event id.
pub async fn webhook(
    shop: &Shop,
    provider: &str,
    signature: &str,
    body: &[u8],
) -> Result<WebhookOutcome, ShopError> {
    if provider != shop.gateway.name() {
        return Err(ShopError::NotFound("provider"));
    }
    let event = shop
        .gateway
        .verify_webhook(signature, body, shop.now().timestamp())
        .map_err(|e| ShopError::BadRequest("invalid_signature", e.to_string()))?;
    let payment_id: Uuid = event
        .payment_key
        .parse()
        .map_err(|_| ShopError::NotFound("payment"))?;
    let _turn = shop.payment_locks.lock(payment_id).await;
    let payment = store::find_payment_by_id(&shop.db, payment_id)
        .await?
        .ok_or(ShopError::NotFound("payment"))?;
    let report = match event.kind {
        WebhookKind::PaymentSucceeded => Report {
            status: PaymentStatus::Succeeded,
            reference: Some(event.reference.clone()),
            card_brand: None,
            card_last4: None,
            failure_code: None,
        },
        WebhookKind::PaymentFailed => Report {
            reference: Some(event.reference.clone()),
            ..Report::failed(event.failure_code.as_deref().unwrap_or("failed"))
        },
        // Refunds are applied when Emporium asks for them; the event is only recorded.
        WebhookKind::RefundSucceeded => {
            let mut tx = shop.db.begin().await?;
            let applied = store::record_event(
                &mut tx,
                payment.user_id,
                provider,
                &event.id,
                payment_id,
                "refund.succeeded",
                shop.now(),
            )
            .await?;
            tx.commit().await?;
            return Ok(WebhookOutcome {
                event_id: event.id,
                applied,
            });
        }
    };
    // Payment states only move forward (`PaymentStatus::accepts`): a report the payment has
    // already moved past (the checkout applied the charge's answer before the provider's
    // webhook came, or a late report out of order) changes nothing now and never will, so it
    // is answered from the row just read, without a write transaction.
    if !PaymentStatus::parse(&payment.status)?.accepts(report.status) {
        return Ok(WebhookOutcome {
            event_id: event.id,
            applied: false,
        });
    }
    let kind = match event.kind {
        WebhookKind::PaymentSucceeded => "payment.succeeded",
        _ => "payment.failed",
    };
    let applied = apply(
        shop,
        UserId(payment.user_id),
        payment_id,
        &report,
        Some((provider, &event.id, kind)),
    )
    .await?;
    Ok(WebhookOutcome {
        event_id: event.id,
        applied: applied.order.is_some(),
    })
}
