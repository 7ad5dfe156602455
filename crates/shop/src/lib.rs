//! The shop's operations, one module per business component. Each operation applies the
//! domain's rules, runs one transaction through the store and writes an outbox row for every
//! side effect.
//!
//! Layout: `error` (the error policy of this layer), `clock`, `identity` (accounts, sessions,
//! addresses, roles), `throttle` (login brute-force protection), `catalog` (categories,
//! products, variants, the catalog version used by read caches), `events` (outbox topics),
//! `demo` (the demo catalog and accounts), `inventory` (stock, reservations, flash sales,
//! the engine), `pricing` (FX, tax, shipping and coupon reference data), `cart`, `checkout`
//! (the checkout saga), `payments` (provider results, webhooks, refunds, reconciliation),
//! `orders` (history, fulfilment, returns),
//! `idempotency` (claims and stored responses of requests sent with an `Idempotency-Key`), `search` (product search:
//! index feed, queries, synonyms, analytics).

pub mod cart;
pub mod catalog;
pub mod checkout;
pub mod clock;
pub mod demo;
mod error;
pub mod events;
pub mod idempotency;
pub mod identity;
pub mod inventory;
pub mod orders;
pub mod payments;
pub mod pricing;
pub mod search;
pub mod sessions;
pub mod throttle;

use std::sync::Arc;

pub use clock::{Clock, ManualClock, SystemClock};
pub use emporium_store::{Backend, Db};
pub use error::ShopError;

/// Tunables of the shop, with production defaults.
#[derive(Debug, Clone)]
pub struct ShopConfig {
    pub session_ttl: chrono::Duration,
    pub password_hashing: identity::HashingCost,
    pub login_throttle: throttle::ThrottleConfig,
    pub engine: inventory::engine::EngineConfig,
    pub checkout: checkout::CheckoutConfig,
    pub idempotency: idempotency::IdempotencyConfig,
}

impl Default for ShopConfig {
    fn default() -> Self {
        Self {
            session_ttl: chrono::Duration::days(14),
            password_hashing: identity::HashingCost::default(),
            login_throttle: throttle::ThrottleConfig::default(),
            engine: inventory::engine::EngineConfig::default(),
            checkout: checkout::CheckoutConfig::default(),
            idempotency: idempotency::IdempotencyConfig::default(),
        }
    }
}

/// Everything an operation needs: the database, the clock, the configuration and the
/// in-process state shared by all requests of this node.
#[derive(Clone)]
pub struct Shop {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<ShopConfig>,
    pub throttle: Arc<throttle::LoginThrottle>,
    pub catalog_version: Arc<catalog::CatalogVersion>,
    /// The reservation engine of this node.
    pub engine: Arc<inventory::engine::Engine>,
    /// Sessions this node verified recently.
    pub sessions: Arc<identity::SessionCache>,
    /// Batched session lookups for cache misses.
    pub session_loader: Arc<sessions::SessionLoader>,
    /// Tax rates, shipping methods and FX rates, read recently.
    pub pricing: Arc<pricing::PricingCache>,
    /// Variants' facts and prices as carts see them, read recently.
    pub variants: Arc<cart::VariantCache>,
    /// Flash sales this node has read recently.
    pub sales: Arc<inventory::flash::SaleCache>,
    /// The payment provider (the built-in test gateway).
    pub gateway: Arc<dyn emporium_payments::PaymentGateway>,
    /// The same gateway, typed: its webhook queue is delivered by the worker.
    pub test_gateway: Arc<emporium_payments::TestGateway>,
    /// This node's search index and analytics.
    pub search: Arc<search::SearchService>,
    /// Reports about one payment on this node wait for each other (see
    /// [`payments::PaymentLocks`]).
    pub payment_locks: Arc<payments::PaymentLocks>,
}

impl Shop {
    pub fn new(db: Db, clock: Arc<dyn Clock>, config: ShopConfig) -> Self {
        let throttle = Arc::new(throttle::LoginThrottle::new(config.login_throttle.clone()));
        let engine = Arc::new(inventory::engine::Engine::new(
            db.clone(),
            clock.clone(),
            config.engine.clone(),
        ));
        let test_gateway = Arc::new(emporium_payments::TestGateway::new(
            config.checkout.test_gateway.clone(),
        ));
        Self {
            gateway: test_gateway.clone(),
            test_gateway,
            engine,
            sales: Arc::default(),
            pricing: Arc::default(),
            variants: Arc::default(),
            search: Arc::default(),
            payment_locks: Arc::default(),
            sessions: Arc::default(),
            session_loader: Arc::new(sessions::SessionLoader::new(db.clone())),
            db,
            clock,
            config: Arc::new(config),
            throttle,
            catalog_version: Arc::new(catalog::CatalogVersion::default()),
        }
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// After a catalog write committed: products, variants or prices changed.
    pub fn catalog_changed(&self) {
        self.catalog_version.bump();
        self.variants.clear();
    }
}
