//! Products as search sees them, read from the database in batches.

use std::collections::{BTreeMap, HashMap};

use emporium_search::{LocalText, ProductDoc};
use emporium_store::catalog::{self as store, CategoryRow, ProductRow};
use emporium_store::search as signals;
use uuid::Uuid;

use crate::catalog::BASE_LOCALE;
use crate::{Shop, ShopError};

/// The documents of these products; rows that are not active are skipped (the caller
/// removes them from the index).
pub async fn load(shop: &Shop, rows: Vec<ProductRow>) -> Result<Vec<ProductDoc>, ShopError> {
    let rows: Vec<ProductRow> = rows.into_iter().filter(|r| r.status == "active").collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let variants = store::list_variants(&shop.db, &ids).await?;
    let variant_ids: Vec<Uuid> = variants.iter().map(|v| v.id).collect();
    let facts = store::variant_facts(&shop.db, &variant_ids).await?;
    let translations = store::list_translations(&shop.db, &ids).await?;
    let signals: HashMap<Uuid, signals::SignalsRow> = signals::signals_of(&shop.db, &ids)
        .await?
        .into_iter()
        .map(|s| (s.product_id, s))
        .collect();
    let categories: HashMap<Uuid, CategoryRow> = store::list_categories(&shop.db)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let product_of: HashMap<Uuid, Uuid> = variants.iter().map(|v| (v.id, v.product_id)).collect();
    let mut skus: HashMap<Uuid, Vec<String>> = HashMap::new();
    for v in &variants {
        skus.entry(v.product_id).or_default().push(v.sku.clone());
    }
    let mut prices: HashMap<Uuid, BTreeMap<String, i64>> = HashMap::new();
    for p in &facts.prices {
        if let Some(product) = product_of.get(&p.variant_id) {
            let slot = prices
                .entry(*product)
                .or_default()
                .entry(p.currency.clone())
                .or_insert(p.amount_minor);
            *slot = (*slot).min(p.amount_minor);
        }
    }
    let mut in_stock: HashMap<Uuid, bool> = HashMap::new();
    for (variant, available) in &facts.available {
        if *available > 0
            && let Some(product) = product_of.get(variant)
        {
            in_stock.insert(*product, true);
        }
    }
    let mut texts: HashMap<Uuid, Vec<LocalText>> = HashMap::new();
    for t in translations {
        if t.locale != BASE_LOCALE {
            texts.entry(t.product_id).or_default().push(LocalText {
                locale: t.locale,
                title: t.title,
                description: t.description,
            });
        }
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let s = signals.get(&row.id);
            let (path, names) = category_of(row.category_id, &categories);
            ProductDoc {
                id: row.id.to_string(),
                slug: row.slug,
                title: row.title,
                description: row.description,
                translations: texts.remove(&row.id).unwrap_or_default(),
                brand: row.brand,
                category_path: path,
                category_names: names,
                attributes: row.attributes.0,
                skus: skus.remove(&row.id).unwrap_or_default(),
                prices: prices.remove(&row.id).unwrap_or_default(),
                rating: s.map_or(0.0, |s| s.rating),
                review_count: s.map_or(0, |s| u64::try_from(s.review_count).unwrap_or(0)),
                sales_count: s.map_or(0, |s| u64::try_from(s.sales_count).unwrap_or(0)),
                in_stock: in_stock.contains_key(&row.id),
                created_at: row.created_at.timestamp(),
                image: row.images.0.into_iter().next(),
            }
        })
        .collect())
}

/// The category's path and the names of it and its ancestors.
fn category_of(
    id: Option<Uuid>,
    categories: &HashMap<Uuid, CategoryRow>,
) -> (Option<String>, Vec<String>) {
    let Some(start) = id.and_then(|id| categories.get(&id)) else {
        return (None, Vec::new());
    };
    let mut names = vec![start.name.clone()];
    let mut parent = start.parent_id;
    // Bounded walk: a cycle cannot come from the API, but must not hang the indexer.
    for _ in 0..32 {
        let Some(row) = parent.and_then(|p| categories.get(&p)) else {
            break;
        };
        names.push(row.name.clone());
        parent = row.parent_id;
    }
    (Some(start.path.clone()), names)
}
