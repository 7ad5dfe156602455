//! The reconciliation job: asks the provider about payments whose outcome Emporium does not
//! know, completes or cancels their orders, refunds captures whose order cannot be filled,
//! and cancels orders left pending payment for too long (releasing their stock).
//!
//! It is what makes the checkout saga crash-safe: whatever step a crash interrupted, the
//! stored payment and order rows say what is missing, and this job finishes or undoes it.

use emporium_domain::ids::UserId;
use emporium_domain::order::PaymentStatus;
use emporium_store::payments as store;
use serde::Serialize;

use super::{Report, apply};
use crate::{Shop, ShopError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileOutcome {
    /// Open payments whose outcome was learned from the provider.
    pub resolved: usize,
    /// Captured payments refunded because their order could not be filled.
    pub refunded: usize,
    /// Orders cancelled because payment never completed in time.
    pub expired: usize,
}

impl ReconcileOutcome {
    pub fn is_idle(&self) -> bool {
        *self == Self::default()
    }
}

/// One pass; the worker calls it periodically, tests call it directly.
pub async fn reconcile_once(shop: &Shop) -> Result<ReconcileOutcome, ShopError> {
    let now = shop.now();
    let config = &shop.config.checkout;
    let mut out = ReconcileOutcome::default();
    for (user, id) in store::open_payments(&shop.db, now - config.reconcile_after, 200).await? {
        let Some(payment) = store::find_payment(&shop.db, user, id).await? else {
            continue;
        };
        let answer = tokio::time::timeout(
            config.gateway_timeout,
            shop.gateway.retrieve(&id.to_string()),
        )
        .await;
        let report = match answer {
            Ok(Ok(Some(p))) => Report::from_provider(&p),
            // The charge never reached the provider (a crash before the call).
            Ok(Ok(None)) => Report::failed("not_submitted"),
            Ok(Err(_)) | Err(_) => continue,
        };
        let overdue = payment.created_at + config.payment_window <= now;
        let report = if report.status.is_open() && overdue {
            // The customer never finished: void at the provider, then cancel.
            if let Some(reference) = &payment.provider_ref {
                let _ = tokio::time::timeout(config.gateway_timeout, shop.gateway.void(reference))
                    .await;
            }
            out.expired += 1;
            Report {
                status: PaymentStatus::Voided,
                ..report
            }
        } else {
            report
        };
        if report.status.is_open() {
            continue;
        }
        apply(shop, UserId(user), id, &report, None).await?;
        out.resolved += 1;
    }
    for (user, id) in store::orphaned_captures(&shop.db, 100).await? {
        let Some(payment) = store::find_payment(&shop.db, user, id).await? else {
            continue;
        };
        match super::refund(
            shop,
            UserId(user),
            payment.order_id,
            None,
            "order could not be completed",
        )
        .await
        {
            Ok(_) => out.refunded += 1,
            Err(e) => {
                tracing::warn!(payment.id = %id, error = %e, "refund of an orphaned capture failed")
            }
        }
    }
    Ok(out)
}
