//! What Emporium asks of a payment provider.

use serde::{Deserialize, Serialize};

/// A charge of a card token. `key` is Emporium's payment id: the provider treats it as an
/// idempotency key, so retrying a charge never charges twice.
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    pub key: String,
    pub amount_minor: i64,
    pub currency: String,
    pub token: String,
}

/// The provider's view of a charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ChargeStatus {
    Succeeded,
    /// The customer must complete a challenge; then the client calls confirm.
    RequiresAction,
    /// Decided later; a webhook will tell.
    Processing,
    Failed {
        code: String,
    },
    Voided,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPayment {
    /// The provider's id of the charge.
    pub reference: String,
    pub status: ChargeStatus,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RefundRequest {
    /// Emporium's refund id, an idempotency key at the provider.
    pub key: String,
    pub reference: String,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRefund {
    pub reference: String,
    pub succeeded: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GatewayError {
    /// The provider does not know this token, charge or refund.
    #[error("unknown {0}")]
    Unknown(&'static str),
    /// The provider refused the request as invalid (e.g. refund above the captured amount).
    #[error("refused: {0}")]
    Refused(String),
    /// The provider could not be reached or did not answer.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
}

/// What a webhook reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookKind {
    #[serde(rename = "payment.succeeded")]
    PaymentSucceeded,
    #[serde(rename = "payment.failed")]
    PaymentFailed,
    #[serde(rename = "refund.succeeded")]
    RefundSucceeded,
}

/// A verified webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// The provider's event id: an event is applied once.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: WebhookKind,
    /// Emporium's payment id (the charge's idempotency key).
    pub payment_key: String,
    pub reference: String,
    #[serde(default)]
    pub failure_code: Option<String>,
    #[serde(default)]
    pub amount_minor: Option<i64>,
    /// Unix seconds when the provider created the event.
    pub created: i64,
}

/// A payment provider.
#[async_trait::async_trait]
pub trait PaymentGateway: Send + Sync {
    /// The provider's name in URLs and in the database (`test`, `stripe`, ...).
    fn name(&self) -> &'static str;

    async fn charge(&self, request: &ChargeRequest) -> Result<ProviderPayment, GatewayError>;

    /// Completes a `RequiresAction` charge after the customer's challenge.
    async fn confirm(&self, reference: &str) -> Result<ProviderPayment, GatewayError>;

    /// The charge made with this idempotency key, if any: how reconciliation learns what
    /// happened to a charge whose answer was lost.
    async fn retrieve(&self, key: &str) -> Result<Option<ProviderPayment>, GatewayError>;

    async fn refund(&self, request: &RefundRequest) -> Result<ProviderRefund, GatewayError>;

    /// Cancels a charge that has not captured money.
    async fn void(&self, reference: &str) -> Result<ProviderPayment, GatewayError>;

    /// Checks a webhook's signature (over timestamp and body, within the tolerance window)
    /// and parses it.
    fn verify_webhook(
        &self,
        signature_header: &str,
        body: &[u8],
        now_unix: i64,
    ) -> Result<WebhookEvent, crate::signature::SignatureError>;
}
