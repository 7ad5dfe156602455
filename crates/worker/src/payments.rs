//! Payment jobs: reconciliation (a periodic `run_once` pass) and the delivery of the test
//! gateway's webhooks to this node's own endpoint over HTTP, as a real provider would.

use std::time::Duration;

use emporium_shop::Shop;
use emporium_shop::payments::reconcile_once;
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

/// POSTs queued webhooks of the test gateway to `base_url`; failures are retried.
pub async fn deliver_webhooks(shop: Shop, base_url: String, mut shutdown: watch::Receiver<bool>) {
    let client = reqwest::Client::new();
    let url = format!("{base_url}/api/v1/payments/webhooks/test");
    loop {
        let batch = shop.test_gateway.take_webhooks();
        let mut failed = Vec::new();
        for hook in batch {
            let sent = client
                .post(&url)
                .header("content-type", "application/json")
                .header("emporium-signature", &hook.signature)
                .body(hook.body.clone())
                .send()
                .await;
            // A 4xx other than a transient one is final (e.g. an unknown payment).
            match sent {
                Ok(r) if r.status().is_success() || r.status().is_client_error() => {}
                _ => failed.push(hook),
            }
        }
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
