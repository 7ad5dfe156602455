//! The `test` gateway: an in-process provider that behaves like a real one, driven by test
//! card tokens.
//!
//! | token                    | charge answers                 | later                          |
//! |--------------------------|--------------------------------|--------------------------------|
//! | `tok_success`            | succeeded                      | webhook `payment.succeeded`    |
//! | `tok_decline`            | failed `card_declined`         | webhook `payment.failed`       |
//! | `tok_insufficient_funds` | failed `insufficient_funds`    | webhook `payment.failed`       |
//! | `tok_requires_action`    | requires_action                | confirm → succeeded + webhook  |
//! | `tok_async`              | processing                     | settles → succeeded + webhook  |
//! | `tok_timeout`            | no answer in time (but the charge is captured at the provider, as with a real timeout) | webhook `payment.succeeded` |
//!
//! Like a real provider it reports every decided charge by a signed webhook, possibly after
//! the synchronous answer said the same thing: Emporium must apply each once. Webhooks queue
//! in [`TestGateway::take_webhooks`]; `serve` runs a task that POSTs them to the node's own
//! webhook endpoint, tests post them themselves (in any order, as often as they like).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::gateway::{
    ChargeRequest, ChargeStatus, GatewayError, PaymentGateway, ProviderPayment, ProviderRefund,
    RefundRequest, WebhookEvent, WebhookKind,
};
use crate::signature::{self, SignatureError};

#[derive(Debug, Clone)]
pub struct TestGatewayConfig {
    /// The webhook signing secret shared with Emporium.
    pub webhook_secret: String,
    /// How long `tok_timeout` keeps the caller waiting (longer than any sane client timeout).
    pub hang: Duration,
    /// When `tok_async` charges settle by themselves; `None`: only on [`TestGateway::settle`].
    pub async_settle_after: Option<Duration>,
}

impl Default for TestGatewayConfig {
    fn default() -> Self {
        Self {
            webhook_secret: "whsec_test_emporium".to_owned(),
            hang: Duration::from_secs(60),
            async_settle_after: Some(Duration::from_millis(200)),
        }
    }
}

/// A signed webhook ready to be delivered.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub signature: String,
    pub body: Vec<u8>,
    pub event: WebhookEvent,
}

#[derive(Debug, Clone)]
struct Charge {
    key: String,
    reference: String,
    status: ChargeStatus,
    amount_minor: i64,
    refunded_minor: i64,
    last4: String,
}

#[derive(Default)]
struct State {
    by_key: HashMap<String, Charge>,
    key_of_ref: HashMap<String, String>,
    refunds: HashMap<String, ProviderRefund>,
    webhooks: VecDeque<Webhook>,
    event_seq: u64,
}

pub struct TestGateway {
    config: TestGatewayConfig,
    state: Arc<Mutex<State>>,
    /// Woken when a webhook is queued.
    pub webhook_ready: Arc<Notify>,
}

impl TestGateway {
    pub fn new(config: TestGatewayConfig) -> Self {
        Self {
            config,
            state: Arc::default(),
            webhook_ready: Arc::new(Notify::new()),
        }
    }

    pub fn secret(&self) -> &[u8] {
        self.config.webhook_secret.as_bytes()
    }

    /// Webhooks queued since the last call, oldest first.
    pub fn take_webhooks(&self) -> Vec<Webhook> {
        self.state.lock().webhooks.drain(..).collect()
    }

    /// Puts webhooks back (a delivery failed); they are retried.
    pub fn requeue(&self, webhooks: Vec<Webhook>) {
        let mut state = self.state.lock();
        for w in webhooks.into_iter().rev() {
            state.webhooks.push_front(w);
        }
    }

    /// Settles every processing (`tok_async`) charge as succeeded; returns how many.
    pub fn settle(&self) -> usize {
        let keys: Vec<String> = {
            let state = self.state.lock();
            state
                .by_key
                .values()
                .filter(|c| c.status == ChargeStatus::Processing)
                .map(|c| c.key.clone())
                .collect()
        };
        for key in &keys {
            settle_one(&self.state, &self.webhook_ready, self.secret(), key);
        }
        keys.len()
    }

    fn find_by_ref(&self, reference: &str) -> Result<Charge, GatewayError> {
        let state = self.state.lock();
        state
            .key_of_ref
            .get(reference)
            .and_then(|k| state.by_key.get(k))
            .cloned()
            .ok_or(GatewayError::Unknown("charge"))
    }
}

fn view(c: &Charge) -> ProviderPayment {
    ProviderPayment {
        reference: c.reference.clone(),
        status: c.status.clone(),
        card_brand: Some("visa".to_owned()),
        card_last4: Some(c.last4.clone()),
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Queues a signed webhook about `charge`.
fn notify(
    state: &mut State,
    ready: &Notify,
    secret: &[u8],
    kind: WebhookKind,
    charge: &Charge,
    amount: Option<i64>,
) {
    state.event_seq += 1;
    let event = WebhookEvent {
        id: format!("evt_{}_{}", charge.reference, state.event_seq),
        kind,
        payment_key: charge.key.clone(),
        reference: charge.reference.clone(),
        failure_code: match &charge.status {
            ChargeStatus::Failed { code } => Some(code.clone()),
            _ => None,
        },
        amount_minor: amount,
        created: now_unix(),
    };
    let body = serde_json::to_vec(&event).unwrap_or_default();
    let Ok(signature) = signature::sign(secret, event.created, &body) else {
        return;
    };
    state.webhooks.push_back(Webhook {
        signature,
        body,
        event,
    });
    ready.notify_one();
}

fn settle_one(state: &Mutex<State>, ready: &Notify, secret: &[u8], key: &str) {
    let mut state = state.lock();
    let Some(charge) = state.by_key.get_mut(key) else {
        return;
    };
    if charge.status != ChargeStatus::Processing {
        return;
    }
    charge.status = ChargeStatus::Succeeded;
    let charge = charge.clone();
    notify(
        &mut state,
        ready,
        secret,
        WebhookKind::PaymentSucceeded,
        &charge,
        Some(charge.amount_minor),
    );
}

/// What a token does: (immediate status, last four digits, whether the caller waits forever).
fn behaviour(token: &str) -> Option<(ChargeStatus, &'static str, bool)> {
    let failed = |code: &str| ChargeStatus::Failed {
        code: code.to_owned(),
    };
    Some(match token {
        "tok_success" => (ChargeStatus::Succeeded, "4242", false),
        "tok_decline" => (failed("card_declined"), "0002", false),
        "tok_insufficient_funds" => (failed("insufficient_funds"), "9995", false),
        "tok_requires_action" => (ChargeStatus::RequiresAction, "3155", false),
        "tok_async" => (ChargeStatus::Processing, "1881", false),
        "tok_timeout" => (ChargeStatus::Succeeded, "0341", true),
        _ => return None,
    })
}

#[async_trait::async_trait]
impl PaymentGateway for TestGateway {
    fn name(&self) -> &'static str {
        "test"
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<ProviderPayment, GatewayError> {
        let (status, last4, hang) =
            behaviour(&request.token).ok_or(GatewayError::Unknown("token"))?;
        let charge = {
            let mut state = self.state.lock();
            // Idempotent by key: a retried charge returns the first one.
            if let Some(existing) = state.by_key.get(&request.key) {
                return Ok(view(existing));
            }
            let charge = Charge {
                key: request.key.clone(),
                reference: format!("ch_{}", uuid::Uuid::now_v7().simple()),
                status: status.clone(),
                amount_minor: request.amount_minor,
                refunded_minor: 0,
                last4: last4.to_owned(),
            };
            state
                .key_of_ref
                .insert(charge.reference.clone(), charge.key.clone());
            state.by_key.insert(charge.key.clone(), charge.clone());
            let kind = match &status {
                ChargeStatus::Succeeded => Some(WebhookKind::PaymentSucceeded),
                ChargeStatus::Failed { .. } => Some(WebhookKind::PaymentFailed),
                _ => None,
            };
            if let Some(kind) = kind {
                let amount = Some(charge.amount_minor);
                notify(
                    &mut state,
                    &self.webhook_ready,
                    self.secret(),
                    kind,
                    &charge,
                    amount,
                );
            }
            charge
        };
        if status == ChargeStatus::Processing
            && let Some(after) = self.config.async_settle_after
        {
            let state = self.state.clone();
            let ready = self.webhook_ready.clone();
            let secret = self.config.webhook_secret.clone();
            let key = charge.key.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                settle_one(&state, &ready, secret.as_bytes(), &key);
            });
        }
        if hang {
            tokio::time::sleep(self.config.hang).await;
            return Err(GatewayError::Unavailable("timed out".to_owned()));
        }
        Ok(view(&charge))
    }

    async fn confirm(&self, reference: &str) -> Result<ProviderPayment, GatewayError> {
        let charge = self.find_by_ref(reference)?;
        if charge.status != ChargeStatus::RequiresAction {
            return Ok(view(&charge));
        }
        let mut state = self.state.lock();
        let Some(stored) = state.by_key.get_mut(&charge.key) else {
            return Err(GatewayError::Unknown("charge"));
        };
        stored.status = ChargeStatus::Succeeded;
        let stored = stored.clone();
        notify(
            &mut state,
            &self.webhook_ready,
            self.secret(),
            WebhookKind::PaymentSucceeded,
            &stored,
            Some(stored.amount_minor),
        );
        Ok(view(&stored))
    }

    async fn retrieve(&self, key: &str) -> Result<Option<ProviderPayment>, GatewayError> {
        Ok(self.state.lock().by_key.get(key).map(view))
    }

    async fn refund(&self, request: &RefundRequest) -> Result<ProviderRefund, GatewayError> {
        let charge = self.find_by_ref(&request.reference)?;
        let mut state = self.state.lock();
        if let Some(done) = state.refunds.get(&request.key) {
            return Ok(done.clone());
        }
        if charge.status != ChargeStatus::Succeeded {
            return Err(GatewayError::Refused(
                "the charge has not captured money".into(),
            ));
        }
        if request.amount_minor <= 0
            || charge.refunded_minor + request.amount_minor > charge.amount_minor
        {
            return Err(GatewayError::Refused(
                "the refund exceeds the captured amount".into(),
            ));
        }
        let Some(stored) = state.by_key.get_mut(&charge.key) else {
            return Err(GatewayError::Unknown("charge"));
        };
        stored.refunded_minor += request.amount_minor;
        let stored = stored.clone();
        let refund = ProviderRefund {
            reference: format!("re_{}", uuid::Uuid::now_v7().simple()),
            succeeded: true,
        };
        state.refunds.insert(request.key.clone(), refund.clone());
        notify(
            &mut state,
            &self.webhook_ready,
            self.secret(),
            WebhookKind::RefundSucceeded,
            &stored,
            Some(request.amount_minor),
        );
        Ok(refund)
    }

    async fn void(&self, reference: &str) -> Result<ProviderPayment, GatewayError> {
        let charge = self.find_by_ref(reference)?;
        let mut state = self.state.lock();
        let Some(stored) = state.by_key.get_mut(&charge.key) else {
            return Err(GatewayError::Unknown("charge"));
        };
        if matches!(
            stored.status,
            ChargeStatus::RequiresAction | ChargeStatus::Processing
        ) {
            stored.status = ChargeStatus::Voided;
        }
        Ok(view(stored))
    }

    fn verify_webhook(
        &self,
        signature_header: &str,
        body: &[u8],
        now_unix: i64,
    ) -> Result<WebhookEvent, SignatureError> {
        signature::verify(self.secret(), signature_header, body, now_unix)?;
        serde_json::from_slice(body).map_err(|e| SignatureError::Body(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &str, token: &str) -> ChargeRequest {
        ChargeRequest {
            key: key.to_owned(),
            amount_minor: 1000,
            currency: "GBP".to_owned(),
            token: token.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_retried_charge_is_the_same_charge() {
        let g = TestGateway::new(TestGatewayConfig::default());
        let a = g.charge(&request("k1", "tok_success")).await;
        let b = g.charge(&request("k1", "tok_success")).await;
        assert_eq!(a, b);
        assert_eq!(g.take_webhooks().len(), 1);
    }

    #[tokio::test]
    async fn tokens_behave_as_documented() {
        let g = TestGateway::new(TestGatewayConfig {
            async_settle_after: None,
            hang: Duration::from_millis(10),
            ..TestGatewayConfig::default()
        });
        let declined = g.charge(&request("d", "tok_decline")).await;
        assert!(
            matches!(declined.map(|p| p.status), Ok(ChargeStatus::Failed { code }) if code == "card_declined")
        );
        let action = g.charge(&request("a", "tok_requires_action")).await;
        let reference = action.map(|p| p.reference).unwrap_or_default();
        let confirmed = g.confirm(&reference).await.map(|p| p.status);
        assert_eq!(confirmed, Ok(ChargeStatus::Succeeded));
        let pending = g.charge(&request("p", "tok_async")).await.map(|p| p.status);
        assert_eq!(pending, Ok(ChargeStatus::Processing));
        assert_eq!(g.settle(), 1);
        let timeout = g.charge(&request("t", "tok_timeout")).await;
        assert!(matches!(timeout, Err(GatewayError::Unavailable(_))));
        let after = g.retrieve("t").await.map(|p| p.map(|p| p.status));
        assert_eq!(after, Ok(Some(ChargeStatus::Succeeded)));
        let unknown = g.charge(&request("u", "4242424242424242")).await;
        assert_eq!(unknown, Err(GatewayError::Unknown("token")));
        for w in g.take_webhooks() {
            let event = g.verify_webhook(&w.signature, &w.body, w.event.created);
            assert_eq!(event, Ok(w.event));
        }
    }
}
