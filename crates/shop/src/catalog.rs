//! Categories, products, variants, prices and translations.
//!
//! Public reads see active products only. Sellers change their own products, admins any.
//! Every write bumps [`CatalogVersion`] after its commit, so read caches built on an older
//! version are dropped; other nodes bump theirs when the worker delivers the write's event.

mod read;
pub mod signals;
mod write;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use emporium_domain::catalog::{Locale, ProductStatus, Sku, Slug};
use emporium_domain::ids::{CategoryId, ProductId, UserId, VariantId};
use emporium_domain::money::Currency;
use serde::Serialize;

pub use read::{ProductFilter, ProductPage, get_product, list_categories, list_products};
pub use write::{
    add_variant, create_category, create_product, set_translation, update_product, update_variant,
};

/// A counter that moves on every catalog write. Caches remember the version they were
/// built at and are stale once it moves.
#[derive(Debug, Default)]
pub struct CatalogVersion(AtomicU64);

impl CatalogVersion {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// A node of the category tree.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CategoryNode {
    pub id: CategoryId,
    pub slug: String,
    pub name: String,
    /// Slugs from the root, joined by `/`: `home-decor/candles-and-holders`.
    pub path: String,
    pub parent_id: Option<CategoryId>,
    #[schema(no_recursion)]
    pub children: Vec<CategoryNode>,
}

#[derive(Debug, Clone)]
pub struct NewCategory {
    pub slug: Slug,
    pub name: String,
    pub parent: Option<CategoryId>,
}

/// A price of a variant in one currency.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PriceView {
    pub currency: Currency,
    pub amount_minor: i64,
    pub compare_at_minor: Option<i64>,
    /// For people: "12.50 GBP".
    pub display: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StockStatus {
    InStock,
    LowStock,
    OutOfStock,
}

impl StockStatus {
    /// At or below this many available units a variant shows as low on stock.
    pub const LOW: i64 = 5;

    pub fn of(available: i64) -> Self {
        match available {
            a if a <= 0 => Self::OutOfStock,
            a if a <= Self::LOW => Self::LowStock,
            _ => Self::InStock,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VariantView {
    pub id: VariantId,
    pub sku: String,
    /// Option values such as size and colour.
    pub options: BTreeMap<String, String>,
    pub prices: Vec<PriceView>,
    pub stock_status: StockStatus,
    pub available: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CategoryRef {
    pub id: CategoryId,
    pub slug: String,
    pub name: String,
    pub path: String,
}

/// A product with everything a product page needs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductView {
    pub id: ProductId,
    pub slug: String,
    /// The locale title and description are in.
    pub locale: String,
    pub title: String,
    pub description: String,
    pub brand: Option<String>,
    pub category: Option<CategoryRef>,
    pub attributes: BTreeMap<String, String>,
    pub images: Vec<String>,
    pub status: ProductStatus,
    pub seller_id: UserId,
    pub variants: Vec<VariantView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A product in a listing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductSummary {
    pub id: ProductId,
    pub slug: String,
    pub locale: String,
    pub title: String,
    pub brand: Option<String>,
    pub category_id: Option<CategoryId>,
    pub status: ProductStatus,
    /// The lowest price of the product's variants in the listing's currency.
    pub price: Option<PriceView>,
    pub image: Option<String>,
}

/// The default locale of base product texts.
pub const BASE_LOCALE: &str = "en";

/// A price as given by a seller.
#[derive(Debug, Clone)]
pub struct NewPrice {
    pub currency: Currency,
    pub amount_minor: i64,
    pub compare_at_minor: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewVariant {
    pub sku: Sku,
    pub options: BTreeMap<String, String>,
    pub prices: Vec<NewPrice>,
}

#[derive(Debug, Clone)]
pub struct NewProduct {
    pub title: String,
    pub slug: Slug,
    pub description: String,
    pub brand: Option<String>,
    pub category: Option<CategoryId>,
    pub attributes: BTreeMap<String, String>,
    pub images: Vec<String>,
    pub status: ProductStatus,
    pub variants: Vec<NewVariant>,
    /// Products are created for the actor; an admin may name another seller.
    pub seller: Option<UserId>,
}

/// Changes to a product; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    pub title: Option<String>,
    pub slug: Option<Slug>,
    pub description: Option<String>,
    pub brand: Option<Option<String>>,
    pub category: Option<Option<CategoryId>>,
    pub attributes: Option<BTreeMap<String, String>>,
    pub images: Option<Vec<String>>,
    pub status: Option<ProductStatus>,
}

#[derive(Debug, Clone, Default)]
pub struct VariantPatch {
    pub sku: Option<Sku>,
    pub options: Option<BTreeMap<String, String>>,
    pub prices: Option<Vec<NewPrice>>,
}

/// Translated texts of a product in one locale.
#[derive(Debug, Clone)]
pub struct Translation {
    pub locale: Locale,
    pub title: String,
    pub description: String,
}
