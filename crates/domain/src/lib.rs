//! Pure types and rules of Emporium: no I/O, no async.
//!
//! Layout: `ids` (one UUIDv7 newtype per entity), `money` (currencies and integer minor
//! units), `identity` (emails, passwords, roles), `catalog` (slugs, SKUs, product rules),
//! `paging` (cursors and limits), `inventory` (reservation rules), `stock` (locations,
//! quantities, thresholds), `order` (the order, payment and return state machines),
//! `pricing` (FX conversion, coupons, tax, totals), `idempotency` (idempotency keys).
//! Everything raw that enters the system is parsed into these types at the edge; inner
//! layers accept only them.

pub mod catalog;
pub mod idempotency;
pub mod identity;
pub mod ids;
pub mod inventory;
pub mod money;
pub mod order;
pub mod paging;
pub mod pricing;
pub mod stock;

mod invalid;

pub use invalid::Invalid;
