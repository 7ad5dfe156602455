//! Catalog writes. Each is one transaction with its outbox event; the catalog version moves
//! after the commit.

use emporium_domain::catalog::Locale;
use emporium_domain::ids::{CategoryId, ProductId, VariantId};
use emporium_store::Tx;
use emporium_store::catalog::{self as store, Json};
use uuid::Uuid;

use super::read::product_view;
use super::{
    CategoryNode, NewCategory, NewPrice, NewProduct, NewVariant, ProductPatch, ProductView,
    Translation, VariantPatch,
};
use crate::identity::Actor;
use crate::{Shop, ShopError, events};

/// At most this many variants per product.
pub const MAX_VARIANTS: usize = 100;

const NOT_A_SELLER: ShopError = ShopError::Forbidden(
    "forbidden",
    "only approved sellers and admins may change the catalog",
);

pub async fn create_category(
    shop: &Shop,
    actor: &Actor,
    new: NewCategory,
) -> Result<CategoryNode, ShopError> {
    if !actor.is_admin() {
        return Err(ShopError::Forbidden(
            "forbidden",
            "only admins may change categories",
        ));
    }
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let path = match new.parent {
        Some(parent) => {
            let parent = store::find_category_in_tx(&mut tx, parent.0)
                .await?
                .ok_or_else(|| emporium_domain::Invalid::new("parent_id", "no such category"))?;
            format!("{}/{}", parent.path, new.slug.as_str())
        }
        None => new.slug.as_str().to_owned(),
    };
    let row = store::CategoryRow {
        id: CategoryId::new().0,
        parent_id: new.parent.map(|p| p.0),
        slug: new.slug.as_str().to_owned(),
        name: new.name,
        path,
        position: 0,
        created_at: now,
    };
    store::insert_category(&mut tx, &row).await?;
    events::emit(
        &mut tx,
        actor.user_id.0,
        events::CATEGORY_CREATED,
        serde_json::json!({ "category_id": row.id }),
        now,
    )
    .await?;
    tx.commit().await?;
    shop.catalog_changed();
    Ok(CategoryNode {
        id: CategoryId(row.id),
        slug: row.slug,
        name: row.name,
        path: row.path,
        parent_id: row.parent_id.map(CategoryId),
        children: Vec::new(),
    })
}

pub async fn create_product(
    shop: &Shop,
    actor: &Actor,
    new: NewProduct,
) -> Result<ProductView, ShopError> {
    if !actor.can_sell() {
        return Err(NOT_A_SELLER);
    }
    let seller = match new.seller {
        Some(other) if other != actor.user_id && !actor.is_admin() => {
            return Err(ShopError::Forbidden(
                "forbidden",
                "sellers create products for themselves only",
            ));
        }
        Some(other) => other,
        None => actor.user_id,
    };
    if new.variants.len() > MAX_VARIANTS {
        return Err(emporium_domain::Invalid::new(
            "variants",
            format!("at most {MAX_VARIANTS} variants"),
        )
        .into());
    }
    let now = shop.now();
    let row = store::ProductRow {
        id: ProductId::new().0,
        seller_id: seller.0,
        category_id: new.category.map(|c| c.0),
        slug: new.slug.as_str().to_owned(),
        title: new.title,
        description: new.description,
        brand: new.brand,
        attributes: Json(new.attributes),
        images: Json(new.images),
        status: new.status.as_str().to_owned(),
        created_at: now,
        updated_at: now,
    };
    let mut tx = shop.db.begin().await?;
    store::insert_product(&mut tx, &row).await?;
    for (position, variant) in new.variants.iter().enumerate() {
        insert_variant(&mut tx, row.id, variant, position, now).await?;
    }
    events::emit(
        &mut tx,
        actor.user_id.0,
        events::PRODUCT_CREATED,
        serde_json::json!({ "product_id": row.id }),
        now,
    )
    .await?;
    tx.commit().await?;
    shop.catalog_changed();
    product_view(shop, row, &[]).await
}

pub async fn update_product(
    shop: &Shop,
    actor: &Actor,
    id: ProductId,
    patch: ProductPatch,
) -> Result<ProductView, ShopError> {
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let mut row = owned_product(&mut tx, actor, id.0).await?;
    if let Some(v) = patch.title {
        row.title = v;
    }
    if let Some(v) = patch.slug {
        row.slug = v.as_str().to_owned();
    }
    if let Some(v) = patch.description {
        row.description = v;
    }
    if let Some(v) = patch.brand {
        row.brand = v;
    }
    if let Some(v) = patch.category {
        row.category_id = v.map(|c| c.0);
    }
    if let Some(v) = patch.attributes {
        row.attributes = Json(v);
    }
    if let Some(v) = patch.images {
        row.images = Json(v);
    }
    if let Some(v) = patch.status {
        row.status = v.as_str().to_owned();
    }
    row.updated_at = now;
    store::update_product(&mut tx, &row).await?;
    product_changed(&mut tx, actor, row.id, now).await?;
    tx.commit().await?;
    shop.catalog_changed();
    product_view(shop, row, &[]).await
}

pub async fn add_variant(
    shop: &Shop,
    actor: &Actor,
    product: ProductId,
    new: NewVariant,
) -> Result<ProductView, ShopError> {
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let row = owned_product(&mut tx, actor, product.0).await?;
    insert_variant(&mut tx, row.id, &new, MAX_VARIANTS, now).await?;
    product_changed(&mut tx, actor, row.id, now).await?;
    tx.commit().await?;
    shop.catalog_changed();
    product_view(shop, row, &[]).await
}

pub async fn update_variant(
    shop: &Shop,
    actor: &Actor,
    id: VariantId,
    patch: VariantPatch,
) -> Result<ProductView, ShopError> {
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let mut variant = store::find_variant_in_tx(&mut tx, id.0)
        .await?
        .ok_or(ShopError::NotFound("variant"))?;
    let row = owned_product(&mut tx, actor, variant.product_id)
        .await
        .map_err(|e| match e {
            ShopError::NotFound(_) => ShopError::NotFound("variant"),
            other => other,
        })?;
    if let Some(sku) = patch.sku {
        variant.sku = sku.as_str().to_owned();
    }
    if let Some(options) = patch.options {
        variant.options = Json(options);
    }
    store::update_variant(&mut tx, &variant).await?;
    if let Some(prices) = patch.prices {
        store::replace_prices(&mut tx, variant.id, &price_rows(variant.id, &prices)).await?;
    }
    product_changed(&mut tx, actor, row.id, now).await?;
    tx.commit().await?;
    shop.catalog_changed();
    product_view(shop, row, &[]).await
}

pub async fn set_translation(
    shop: &Shop,
    actor: &Actor,
    product: ProductId,
    t: Translation,
) -> Result<ProductView, ShopError> {
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let row = owned_product(&mut tx, actor, product.0).await?;
    store::upsert_translation(
        &mut tx,
        &store::TranslationRow {
            product_id: row.id,
            locale: t.locale.as_str().to_owned(),
            title: t.title,
            description: t.description,
        },
    )
    .await?;
    product_changed(&mut tx, actor, row.id, now).await?;
    tx.commit().await?;
    shop.catalog_changed();
    let locale: Locale = t.locale;
    product_view(shop, row, &[locale]).await
}

/// Loads a product for a change: it must exist, and the actor must own it or be an admin.
/// Another seller's product is reported as not found, so its existence does not leak.
async fn owned_product(
    tx: &mut Tx,
    actor: &Actor,
    id: Uuid,
) -> Result<store::ProductRow, ShopError> {
    if !actor.can_sell() {
        return Err(NOT_A_SELLER);
    }
    let row = store::find_product_in_tx(tx, id)
        .await?
        .ok_or(ShopError::NotFound("product"))?;
    if !actor.is_admin() && row.seller_id != actor.user_id.0 {
        return Err(ShopError::NotFound("product"));
    }
    Ok(row)
}

async fn product_changed(
    tx: &mut Tx,
    actor: &Actor,
    product: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ShopError> {
    events::emit(
        tx,
        actor.user_id.0,
        events::PRODUCT_UPDATED,
        serde_json::json!({ "product_id": product }),
        now,
    )
    .await?;
    Ok(())
}

async fn insert_variant(
    tx: &mut Tx,
    product: Uuid,
    v: &NewVariant,
    position: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ShopError> {
    let row = store::VariantRow {
        id: VariantId::new().0,
        product_id: product,
        sku: v.sku.as_str().to_owned(),
        options: Json(v.options.clone()),
        position: i32::try_from(position).unwrap_or(i32::MAX),
        created_at: now,
    };
    store::insert_variant(tx, &row).await?;
    store::replace_prices(tx, row.id, &price_rows(row.id, &v.prices)).await?;
    Ok(())
}

fn price_rows(variant: Uuid, prices: &[NewPrice]) -> Vec<store::PriceRow> {
    prices
        .iter()
        .map(|p| store::PriceRow {
            variant_id: variant,
            currency: p.currency.code().to_owned(),
            amount_minor: p.amount_minor,
            compare_at_minor: p.compare_at_minor,
        })
        .collect()
}
