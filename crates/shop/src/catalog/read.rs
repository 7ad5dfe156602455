//! Catalog reads: the category tree, one product, product listings.

use std::collections::HashMap;

use emporium_domain::Invalid;
use emporium_domain::catalog::{Locale, ProductSort, ProductStatus, Slug};
use emporium_domain::ids::{CategoryId, ProductId, UserId, VariantId};
use emporium_domain::money::{Currency, Money};
use emporium_domain::paging::{Cursor, CursorKey, Limit};
use emporium_store::catalog::{self as store, ListSort, SortKey};
use serde::Serialize;
use uuid::Uuid;

use super::{
    BASE_LOCALE, CategoryNode, CategoryRef, PriceView, ProductSummary, ProductView, StockStatus,
    VariantView,
};
use crate::{Shop, ShopError};

/// The whole category tree, roots first, children ordered by position then name.
pub async fn list_categories(shop: &Shop) -> Result<Vec<CategoryNode>, ShopError> {
    let rows = store::list_categories(&shop.db).await?;
    let mut children: HashMap<Option<Uuid>, Vec<&store::CategoryRow>> = HashMap::new();
    for row in &rows {
        children.entry(row.parent_id).or_default().push(row);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| {
            a.position
                .cmp(&b.position)
                .then_with(|| a.name.cmp(&b.name))
        });
    }
    fn build(
        parent: Option<Uuid>,
        children: &HashMap<Option<Uuid>, Vec<&store::CategoryRow>>,
        depth: usize,
    ) -> Vec<CategoryNode> {
        if depth > 32 {
            return Vec::new();
        }
        children
            .get(&parent)
            .map(|rows| {
                rows.iter()
                    .map(|r| CategoryNode {
                        id: CategoryId(r.id),
                        slug: r.slug.clone(),
                        name: r.name.clone(),
                        path: r.path.clone(),
                        parent_id: r.parent_id.map(CategoryId),
                        children: build(Some(r.id), children, depth + 1),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    Ok(build(None, &children, 0))
}

/// A product by id or slug. Only active products are found unless `viewer` owns the
/// product or is an admin.
pub async fn get_product(
    shop: &Shop,
    key: &str,
    locales: &[Locale],
    viewer: Option<&crate::identity::Actor>,
) -> Result<ProductView, ShopError> {
    let id = Uuid::try_parse(key).ok();
    if id.is_none() && Slug::parse(key).is_err() {
        return Err(ShopError::NotFound("product"));
    }
    let row = store::find_product(&shop.db, id, key)
        .await?
        .ok_or(ShopError::NotFound("product"))?;
    let status = ProductStatus::parse(&row.status).map_err(ShopError::internal)?;
    let visible = status == ProductStatus::Active
        || viewer.is_some_and(|v| v.is_admin() || v.user_id.0 == row.seller_id);
    if !visible {
        return Err(ShopError::NotFound("product"));
    }
    product_view(shop, row, locales).await
}

/// Builds the full view of a product row: category, variants, prices, stock, translation.
pub(super) async fn product_view(
    shop: &Shop,
    row: store::ProductRow,
    locales: &[Locale],
) -> Result<ProductView, ShopError> {
    let variants = store::list_variants(&shop.db, &[row.id]).await?;
    let variant_ids: Vec<Uuid> = variants.iter().map(|v| v.id).collect();
    let facts = store::variant_facts(&shop.db, &variant_ids).await?;
    let translations = store::list_translations(&shop.db, &[row.id]).await?;
    let category = match row.category_id {
        Some(id) => store::list_categories(&shop.db)
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .map(|c| CategoryRef {
                id: CategoryId(c.id),
                slug: c.slug,
                name: c.name,
                path: c.path,
            }),
        None => None,
    };
    let available: HashMap<Uuid, i64> = facts.available.into_iter().collect();
    let mut prices: HashMap<Uuid, Vec<PriceView>> = HashMap::new();
    for p in facts.prices {
        if let Some(view) = price_view(&p.currency, p.amount_minor, p.compare_at_minor) {
            prices.entry(p.variant_id).or_default().push(view);
        }
    }
    let (locale, title, description) = localize(&row, &translations, locales);
    Ok(ProductView {
        id: ProductId(row.id),
        slug: row.slug,
        locale,
        title,
        description,
        brand: row.brand,
        category,
        attributes: row.attributes.0,
        images: row.images.0,
        status: ProductStatus::parse(&row.status).map_err(ShopError::internal)?,
        seller_id: UserId(row.seller_id),
        variants: variants
            .into_iter()
            .map(|v| {
                let avail = available.get(&v.id).copied().unwrap_or(0);
                VariantView {
                    id: VariantId(v.id),
                    sku: v.sku,
                    options: v.options.0,
                    prices: prices.remove(&v.id).unwrap_or_default(),
                    stock_status: StockStatus::of(avail),
                    available: avail.max(0),
                }
            })
            .collect(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// What a listing asks for, already parsed.
#[derive(Debug, Clone)]
pub struct ProductFilter {
    pub category: Option<Slug>,
    pub seller: Option<UserId>,
    pub brand: Option<String>,
    pub currency: Currency,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub sort: ProductSort,
    pub cursor: Option<Cursor>,
    pub limit: Limit,
    pub locales: Vec<Locale>,
    /// Public listings ask for active products; a seller's own listing for any status.
    pub status: Option<ProductStatus>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductPage {
    pub items: Vec<ProductSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

pub async fn list_products(shop: &Shop, f: ProductFilter) -> Result<ProductPage, ShopError> {
    if let (Some(min), Some(max)) = (f.price_min, f.price_max)
        && min > max
    {
        return Err(Invalid::new("price_min", "must not be above price_max").into());
    }
    let category_path = match &f.category {
        Some(slug) => Some(
            store::find_category_by_slug(&shop.db, slug.as_str())
                .await?
                .ok_or_else(|| Invalid::new("category", "no category has this slug"))?
                .path,
        ),
        None => None,
    };
    let sort = match f.sort {
        ProductSort::Newest => ListSort::Newest,
        ProductSort::PriceAsc => ListSort::PriceAsc,
        ProductSort::PriceDesc => ListSort::PriceDesc,
        ProductSort::Title => ListSort::Title,
    };
    let after = match &f.cursor {
        None => None,
        Some(c) => Some((cursor_key(sort, &c.key)?, c.id)),
    };
    let query = store::ProductQuery {
        status: f.status.map(|s| s.as_str().to_owned()),
        category_path,
        seller_id: f.seller.map(|s| s.0),
        brand: f.brand.clone(),
        currency: f.currency.code().to_owned(),
        price_min: f.price_min,
        price_max: f.price_max,
        sort,
        after,
        // One more than asked tells whether there is a next page.
        limit: f.limit.get() + 1,
    };
    let mut rows = store::list_products(&shop.db, &query).await?;
    let has_more = rows.len() > f.limit.get() as usize;
    rows.truncate(f.limit.get() as usize);
    let next_cursor = if has_more {
        rows.last().map(|last| {
            let key = match sort {
                ListSort::Newest => CursorKey::Int(0),
                ListSort::PriceAsc | ListSort::PriceDesc => {
                    CursorKey::Int(last.price_minor.unwrap_or(0))
                }
                ListSort::Title => CursorKey::Text(last.product.title.clone()),
            };
            Cursor {
                key,
                id: last.product.id,
            }
            .encode()
        })
    } else {
        None
    };
    let ids: Vec<Uuid> = rows.iter().map(|r| r.product.id).collect();
    let translations = store::list_translations(&shop.db, &ids).await?;
    let items = rows
        .into_iter()
        .map(|r| {
            let mine: Vec<store::TranslationRow> = translations
                .iter()
                .filter(|t| t.product_id == r.product.id)
                .cloned()
                .collect();
            let (locale, title, _) = localize(&r.product, &mine, &f.locales);
            Ok(ProductSummary {
                id: ProductId(r.product.id),
                slug: r.product.slug,
                locale,
                title,
                brand: r.product.brand,
                category_id: r.product.category_id.map(CategoryId),
                status: ProductStatus::parse(&r.product.status).map_err(ShopError::internal)?,
                price: r
                    .price_minor
                    .and_then(|p| price_view(f.currency.code(), p, None)),
                image: r.product.images.0.into_iter().next(),
            })
        })
        .collect::<Result<_, ShopError>>()?;
    Ok(ProductPage { items, next_cursor })
}

fn cursor_key(sort: ListSort, key: &CursorKey) -> Result<SortKey, ShopError> {
    let bad = || Invalid::new("cursor", "does not belong to this sort order");
    Ok(match (sort, key) {
        (ListSort::Newest, _) => SortKey::None,
        (ListSort::PriceAsc | ListSort::PriceDesc, CursorKey::Int(v)) => SortKey::Int(*v),
        (ListSort::Title, CursorKey::Text(v)) => SortKey::Text(v.clone()),
        _ => return Err(bad().into()),
    })
}

fn price_view(
    currency: &str,
    amount_minor: i64,
    compare_at_minor: Option<i64>,
) -> Option<PriceView> {
    let currency = Currency::parse(currency).ok()?;
    let money = Money::price(amount_minor, currency).ok()?;
    Some(PriceView {
        currency,
        amount_minor,
        compare_at_minor,
        display: money.display(),
    })
}

/// Picks the texts for the first requested locale that has them: the exact locale, then
/// the same language, then the base texts.
fn localize(
    row: &store::ProductRow,
    translations: &[store::TranslationRow],
    wanted: &[Locale],
) -> (String, String, String) {
    for locale in wanted {
        if locale.language() == BASE_LOCALE {
            break;
        }
        let found = translations
            .iter()
            .find(|t| t.locale == locale.as_str())
            .or_else(|| {
                translations.iter().find(|t| {
                    Locale::parse(&t.locale).is_ok_and(|l| l.language() == locale.language())
                })
            });
        if let Some(t) = found {
            return (t.locale.clone(), t.title.clone(), t.description.clone());
        }
    }
    (
        BASE_LOCALE.to_owned(),
        row.title.clone(),
        row.description.clone(),
    )
}
