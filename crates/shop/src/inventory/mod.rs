//! Inventory: stock levels and the movement ledger (`stock`), reservations and their expiry
//! (`reservations`), the batched reservation engine (`engine`) and flash sales (`flash`).

pub mod engine;
pub mod flash;
pub mod reservations;
pub mod stock;

use emporium_domain::catalog::Sku;

use crate::{Shop, ShopError};

/// The variant of a SKU code (404 `sku_not_found` when there is none).
pub async fn stock_variant(shop: &Shop, sku: &Sku) -> Result<uuid::Uuid, ShopError> {
    emporium_store::catalog::find_variant_by_sku(&shop.db, sku.as_str())
        .await?
        .map(|(variant, _)| variant)
        .ok_or(ShopError::NotFound("sku"))
}
