//! Payment jobs: reconciliation (a periodic `run_once` pass) and the delivery of the test
//! gateway's webhooks to this node's own endpoint over HTTP, as a real provider would.

use std::time::Duration;

use emporium_shop::Shop;
use emporium_shop::payments::reconcile_once;
use futures::StreamExt;
use tokio::sync::watch;

/// How often reconciliation looks for payments and orders left undecided.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(5);

pub async fn reconcile(shop: Shop, mut shutdown: watch::Receiver<bool>) {
    loop {
        match reconcile_once(&shop).await {
            Ok(out) if !out.is_idle() => tracing::info!(?out, "payments reconciled"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "reconciliation failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RECONCILE_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Webhooks in flight at once: a flash of payments is delivered in parallel, not one
/// round trip after another.
const DELIVERIES_IN_FLIGHT: usize = 32;

/// POSTs queued webhooks of the test gateway to `base_url`; failures are retried.
pub async fn deliver_webhooks(shop: Shop, base_url: String, mut shutdown: watch::Receiver<bool>) {
    let client = reqwest::Client::new();
    let url = format!("{base_url}/api/v1/payments/webhooks/test");
    loop {
        let batch = shop.test_gateway.take_webhooks();
        let failed: Vec<_> = futures::stream::iter(batch)
            .map(|hook| {
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("emporium-signature", &hook.signature)
                    .body(hook.body.clone())
                    .send();
                async move {
                    // A 4xx other than a transient one is final (e.g. an unknown payment).
                    let transient = |s: reqwest::StatusCode| {
                        s == reqwest::StatusCode::TOO_MANY_REQUESTS
                            || s == reqwest::StatusCode::REQUEST_TIMEOUT
                    };
                    match sent.await {
                        Ok(r) if r.status().is_success() => None,
                        Ok(r) if r.status().is_client_error() && !transient(r.status()) => None,
                        _ => Some(hook),
                    }
                }
            })
            .buffer_unordered(DELIVERIES_IN_FLIGHT)
            .filter_map(std::future::ready)
            .collect()
            .await;
        let retry = !failed.is_empty();
        shop.test_gateway.requeue(failed);
        let wait = if retry {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            _ = shop.test_gateway.webhook_ready.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}
