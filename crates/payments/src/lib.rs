//! Payments: the [`PaymentGateway`] trait every provider implements, webhook signatures, and
//! the built-in `test` gateway that behaves like a real provider.
//!
//! Layout: `gateway` (the trait and its types), `signature` (HMAC-SHA256 webhook signing and
//! verification with a tolerance window), `test_gateway` (the provider used by the demo, the
//! tests and the benchmark).
//!
//! Card numbers never reach Emporium: a client sends a gateway token, and a gateway answers
//! with the card's brand and last four digits only.

mod gateway;
pub mod signature;
mod test_gateway;

pub use gateway::{
    ChargeRequest, ChargeStatus, GatewayError, PaymentGateway, ProviderPayment, ProviderRefund,
    RefundRequest, WebhookEvent, WebhookKind,
};
pub use test_gateway::{TestGateway, TestGatewayConfig, Webhook};
