//! Refunds, full or partial, with a reason. The refund row is written before the provider
//! is asked (its id is the provider's idempotency key), so a crash in between is retried
//! without refunding twice.

use emporium_domain::Invalid;
use emporium_domain::ids::UserId;
use emporium_domain::order::{OrderEvent, OrderStatus, PaymentStatus};
use emporium_payments::RefundRequest;
use emporium_store::orders as order_store;
use emporium_store::payments::{self as store, RefundRow};
use uuid::Uuid;

use super::{PaymentView, emit, view};
use crate::{Shop, ShopError, events};

/// Refunds `amount` (default: everything not yet refunded) of an order's captured payment.
pub async fn refund(
    shop: &Shop,
    user: UserId,
    order_id: Uuid,
    amount: Option<i64>,
    reason: &str,
) -> Result<PaymentView, ShopError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > 500 {
        return Err(Invalid::new("reason", "must be 1 to 500 characters").into());
    }
    let payment = store::payments_of_order(&shop.db, user.0, order_id)
        .await?
        .into_iter()
        .find(|p| PaymentStatus::parse(&p.status).is_ok_and(|s| s.captured()))
        .ok_or_else(|| {
            ShopError::conflict("not_refundable", "the order has no captured payment")
        })?;
    let left = payment.amount_minor - payment.refunded_minor;
    let amount = amount.unwrap_or(left);
    if amount <= 0 || amount > left {
        return Err(Invalid::new("amount_minor", format!("must be between 1 and {left}")).into());
    }
    let now = shop.now();
    let row = RefundRow {
        user_id: user.0,
        id: Uuid::now_v7(),
        payment_id: payment.id,
        order_id,
        amount_minor: amount,
        reason: reason.to_owned(),
        status: "pending".to_owned(),
        provider_ref: None,
        created_at: now,
    };
    let mut tx = shop.db.begin().await?;
    store::insert_refund(&mut tx, &row).await?;
    tx.commit().await?;
    let request = RefundRequest {
        key: row.id.to_string(),
        reference: payment.provider_ref.clone().unwrap_or_default(),
        amount_minor: amount,
    };
    let answer = tokio::time::timeout(
        shop.config.checkout.gateway_timeout,
        shop.gateway.refund(&request),
    )
    .await;
    let provider_ref = match answer {
        Ok(Ok(r)) if r.succeeded => r.reference,
        other => {
            let mut tx = shop.db.begin().await?;
            store::finish_refund(&mut tx, user.0, row.id, "failed", None).await?;
            tx.commit().await?;
            return Err(ShopError::conflict(
                "refund_failed",
                format!(
                    "the payment provider did not refund: {}",
                    match other {
                        Ok(Err(e)) => e.to_string(),
                        _ => "no answer in time".to_owned(),
                    }
                ),
            ));
        }
    };
    record_success(shop, user, payment.id, &row, &provider_ref).await
}

/// Books a refund the provider made: payment, order and an outbox event, in one transaction.
async fn record_success(
    shop: &Shop,
    user: UserId,
    payment_id: Uuid,
    row: &RefundRow,
    provider_ref: &str,
) -> Result<PaymentView, ShopError> {
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let mut payment = store::lock_payment(&mut tx, user.0, payment_id)
        .await?
        .ok_or(ShopError::NotFound("payment"))?;
    store::finish_refund(&mut tx, user.0, row.id, "succeeded", Some(provider_ref)).await?;
    payment.refunded_minor += row.amount_minor;
    let in_full = payment.refunded_minor >= payment.amount_minor;
    payment.status = if in_full {
        PaymentStatus::Refunded
    } else {
        PaymentStatus::PartiallyRefunded
    }
    .as_str()
    .to_owned();
    payment.updated_at = now;
    store::update_payment(&mut tx, &payment).await?;
    let mut order = order_store::lock_order(&mut tx, user.0, row.order_id)
        .await?
        .ok_or(ShopError::NotFound("order"))?;
    let refundable_share = row
        .amount_minor
        .min(order.total_minor - order.refunded_minor);
    order_store::add_refunded(&mut tx, user.0, order.id, refundable_share).await?;
    let from = OrderStatus::parse(&order.status)?;
    // A cancelled order (a capture that arrived too late) stays cancelled.
    if let Some(to) = from.apply(OrderEvent::Refunded { in_full }) {
        order_store::set_status(&mut tx, user.0, order.id, from.as_str(), to.as_str(), now).await?;
        order.status = to.as_str().to_owned();
    }
    emit(&mut tx, &order, events::REFUND_SUCCEEDED, now).await?;
    tx.commit().await?;
    Ok(view(&payment))
}

/// [`refund`] of an order found by id alone (admins).
pub async fn refund_order(
    shop: &Shop,
    order_id: Uuid,
    amount: Option<i64>,
    reason: &str,
) -> Result<PaymentView, ShopError> {
    let order = order_store::find_order_by_id(&shop.db, order_id)
        .await?
        .ok_or(ShopError::NotFound("order"))?;
    refund(shop, UserId(order.user_id), order_id, amount, reason).await
}
