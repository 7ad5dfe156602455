//! Categories, products, translations, variants and prices.

use chrono::{DateTime, Utc};
pub use sqlx::types::Json;
use uuid::Uuid;

use crate::{Db, StoreError, Tx, on_pool, on_tx, shapes};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CategoryRow {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub slug: String,
    pub name: String,
    pub path: String,
    pub position: i32,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_category(tx: &mut Tx, c: &CategoryRow) -> Result<(), StoreError> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO categories (id, parent_id, slug, name, path, position, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(c.id)
    .bind(c.parent_id)
    .bind(&c.slug)
    .bind(&c.name)
    .bind(&c.path)
    .bind(c.position)
    .bind(c.created_at)
    .execute(conn)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn list_categories(db: &Db) -> Result<Vec<CategoryRow>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT id, parent_id, slug, name, path, position, created_at FROM categories ORDER BY path",
    )
    .fetch_all(p)
    .await)?)
}

pub async fn find_category_in_tx(tx: &mut Tx, id: Uuid) -> Result<Option<CategoryRow>, StoreError> {
    Ok(on_tx!(tx, c => sqlx::query_as(
        "SELECT id, parent_id, slug, name, path, position, created_at FROM categories WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(c)
    .await)?)
}

pub async fn find_category_by_slug(db: &Db, slug: &str) -> Result<Option<CategoryRow>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT id, parent_id, slug, name, path, position, created_at FROM categories WHERE slug = $1",
    )
    .bind(slug)
    .fetch_optional(p)
    .await)?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProductRow {
    pub id: Uuid,
    pub seller_id: Uuid,
    pub category_id: Option<Uuid>,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub brand: Option<String>,
    pub attributes: Json<std::collections::BTreeMap<String, String>>,
    pub images: Json<Vec<String>>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const PRODUCT_COLUMNS: &str = "p.id, p.seller_id, p.category_id, p.slug, p.title, p.description, \
    p.brand, p.attributes, p.images, p.status, p.created_at, p.updated_at";

pub async fn insert_product(tx: &mut Tx, p: &ProductRow) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO products (id, seller_id, category_id, slug, title, description, brand, \
         attributes, images, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(p.id)
    .bind(p.seller_id)
    .bind(p.category_id)
    .bind(&p.slug)
    .bind(&p.title)
    .bind(&p.description)
    .bind(&p.brand)
    .bind(&p.attributes)
    .bind(&p.images)
    .bind(&p.status)
    .bind(p.created_at)
    .bind(p.updated_at)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn update_product(tx: &mut Tx, p: &ProductRow) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE products SET category_id = $2, slug = $3, title = $4, description = $5, brand = $6, \
         attributes = $7, images = $8, status = $9, updated_at = $10 WHERE id = $1",
    )
    .bind(p.id)
    .bind(p.category_id)
    .bind(&p.slug)
    .bind(&p.title)
    .bind(&p.description)
    .bind(&p.brand)
    .bind(&p.attributes)
    .bind(&p.images)
    .bind(&p.status)
    .bind(p.updated_at)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// A product by id, inside a write transaction (to check ownership before changing it).
pub async fn find_product_in_tx(tx: &mut Tx, id: Uuid) -> Result<Option<ProductRow>, StoreError> {
    let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = $1");
    Ok(
        on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(c).await)?,
    )
}

/// A product by id or by slug, whatever its status.
pub async fn find_product(
    db: &Db,
    id: Option<Uuid>,
    slug: &str,
) -> Result<Option<ProductRow>, StoreError> {
    let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = $1 OR p.slug = $2");
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).bind(slug).fetch_optional(p).await)?,
    )
}

/// What a product listing asks for. `None` filters are not applied.
#[derive(Debug, Clone, Default)]
pub struct ProductQuery {
    /// Only products of this status (public reads ask for `active`).
    pub status: Option<String>,
    /// A category path: the category and all its descendants.
    pub category_path: Option<String>,
    pub seller_id: Option<Uuid>,
    pub brand: Option<String>,
    /// The currency prices are compared and sorted in.
    pub currency: String,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub sort: ListSort,
    /// Keyset position: the sort key and id of the last item of the previous page.
    pub after: Option<(SortKey, Uuid)>,
    pub limit: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListSort {
    #[default]
    Newest,
    PriceAsc,
    PriceDesc,
    Title,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    Int(i64),
    Text(String),
    None,
}

/// A product of a listing, with its lowest price in the asked currency.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListedProduct {
    #[sqlx(flatten)]
    pub product: ProductRow,
    pub price_minor: Option<i64>,
}

/// One page of products (keyset pagination on the sort key, then id).
pub async fn list_products(db: &Db, q: &ProductQuery) -> Result<Vec<ListedProduct>, StoreError> {
    Ok(on_pool!(db, p => {
        let mut qb = sqlx::QueryBuilder::new(format!(
            "SELECT * FROM (SELECT {PRODUCT_COLUMNS}, \
             (SELECT MIN(vp.amount_minor) FROM variants v JOIN variant_prices vp ON vp.variant_id = v.id \
              WHERE v.product_id = p.id AND vp.currency = "
        ));
        qb.push_bind(q.currency.clone());
        qb.push(") AS price_minor FROM products p WHERE 1 = 1");
        if let Some(status) = &q.status {
            qb.push(" AND p.status = ").push_bind(status.clone());
        }
        if let Some(path) = &q.category_path {
            qb.push(" AND p.category_id IN (SELECT id FROM categories WHERE path = ")
                .push_bind(path.clone())
                .push(" OR path LIKE ")
                .push_bind(format!("{path}/%"))
                .push(")");
        }
        if let Some(seller) = q.seller_id {
            qb.push(" AND p.seller_id = ").push_bind(seller);
        }
        if let Some(brand) = &q.brand {
            qb.push(" AND p.brand = ").push_bind(brand.clone());
        }
        qb.push(") AS x WHERE 1 = 1");
        if q.price_min.is_some() || q.price_max.is_some() || matches!(q.sort, ListSort::PriceAsc | ListSort::PriceDesc) {
            qb.push(" AND price_minor IS NOT NULL");
        }
        if let Some(min) = q.price_min {
            qb.push(" AND price_minor >= ").push_bind(min);
        }
        if let Some(max) = q.price_max {
            qb.push(" AND price_minor <= ").push_bind(max);
        }
        let (column, desc) = match q.sort {
            ListSort::Newest => ("id", true),
            ListSort::PriceAsc => ("price_minor", false),
            ListSort::PriceDesc => ("price_minor", true),
            ListSort::Title => ("title", false),
        };
        let op = if desc { "<" } else { ">" };
        if let Some((key, id)) = &q.after {
            match key {
                SortKey::Int(v) => {
                    qb.push(format!(" AND ({column} {op} ")).push_bind(*v)
                        .push(format!(" OR ({column} = ")).push_bind(*v)
                        .push(format!(" AND id {op} ")).push_bind(*id).push("))");
                }
                SortKey::Text(v) => {
                    qb.push(format!(" AND ({column} {op} ")).push_bind(v.clone())
                        .push(format!(" OR ({column} = ")).push_bind(v.clone())
                        .push(format!(" AND id {op} ")).push_bind(*id).push("))");
                }
                SortKey::None => {
                    qb.push(format!(" AND id {op} ")).push_bind(*id);
                }
            }
        }
        let dir = if desc { "DESC" } else { "ASC" };
        if column == "id" {
            qb.push(format!(" ORDER BY id {dir}"));
        } else {
            qb.push(format!(" ORDER BY {column} {dir}, id {dir}"));
        }
        qb.push(" LIMIT ").push_bind(i64::from(q.limit));
        qb.build_query_as().fetch_all(p).await
    })?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TranslationRow {
    pub product_id: Uuid,
    pub locale: String,
    pub title: String,
    pub description: String,
}

pub async fn upsert_translation(tx: &mut Tx, t: &TranslationRow) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO product_translations (product_id, locale, title, description) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (product_id, locale) DO UPDATE SET title = excluded.title, description = excluded.description",
    )
    .bind(t.product_id)
    .bind(&t.locale)
    .bind(&t.title)
    .bind(&t.description)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn list_translations(
    db: &Db,
    product_ids: &[Uuid],
) -> Result<Vec<TranslationRow>, StoreError> {
    if product_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(on_pool!(db, p => {
        let mut qb = sqlx::QueryBuilder::new(
            "SELECT product_id, locale, title, description FROM product_translations WHERE product_id IN (",
        );
        let mut ids = qb.separated(", ");
        for id in shapes::padded(product_ids) {
            ids.push_bind(*id);
        }
        qb.push(")");
        qb.build_query_as().fetch_all(p).await
    })?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VariantRow {
    pub id: Uuid,
    pub product_id: Uuid,
    pub sku: String,
    pub options: Json<std::collections::BTreeMap<String, String>>,
    pub position: i32,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_variant(tx: &mut Tx, v: &VariantRow) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO variants (id, product_id, sku, options, position, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(v.id)
    .bind(v.product_id)
    .bind(&v.sku)
    .bind(&v.options)
    .bind(v.position)
    .bind(v.created_at)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn update_variant(tx: &mut Tx, v: &VariantRow) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query("UPDATE variants SET sku = $2, options = $3, position = $4 WHERE id = $1")
        .bind(v.id)
        .bind(&v.sku)
        .bind(&v.options)
        .bind(v.position)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn find_variant_in_tx(tx: &mut Tx, id: Uuid) -> Result<Option<VariantRow>, StoreError> {
    Ok(on_tx!(tx, c => sqlx::query_as(
        "SELECT id, product_id, sku, options, position, created_at FROM variants WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(c)
    .await)?)
}

pub async fn list_variants(db: &Db, product_ids: &[Uuid]) -> Result<Vec<VariantRow>, StoreError> {
    if product_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(on_pool!(db, p => {
        let mut qb = sqlx::QueryBuilder::new(
            "SELECT id, product_id, sku, options, position, created_at FROM variants WHERE product_id IN (",
        );
        let mut ids = qb.separated(", ");
        for id in shapes::padded(product_ids) {
            ids.push_bind(*id);
        }
        qb.push(") ORDER BY product_id, position, id");
        qb.build_query_as().fetch_all(p).await
    })?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PriceRow {
    pub variant_id: Uuid,
    pub currency: String,
    pub amount_minor: i64,
    pub compare_at_minor: Option<i64>,
}

/// Replaces all prices of a variant with the given ones.
pub async fn replace_prices(
    tx: &mut Tx,
    variant_id: Uuid,
    prices: &[PriceRow],
) -> Result<(), StoreError> {
    on_tx!(tx, c => {
        sqlx::query("DELETE FROM variant_prices WHERE variant_id = $1")
            .bind(variant_id)
            .execute(&mut *c)
            .await?;
        for price in prices {
            sqlx::query(
                "INSERT INTO variant_prices (variant_id, currency, amount_minor, compare_at_minor) VALUES ($1, $2, $3, $4)",
            )
            .bind(variant_id)
            .bind(&price.currency)
            .bind(price.amount_minor)
            .bind(price.compare_at_minor)
            .execute(&mut *c)
            .await?;
        }
        Ok::<u64, sqlx::Error>(0)
    })?;
    Ok(())
}

/// Prices and available stock (on hand minus reserved, over all locations) of variants.
#[derive(Debug, Clone, Default)]
pub struct VariantFacts {
    pub prices: Vec<PriceRow>,
    pub available: Vec<(Uuid, i64)>,
}

pub async fn variant_facts(db: &Db, variant_ids: &[Uuid]) -> Result<VariantFacts, StoreError> {
    if variant_ids.is_empty() {
        return Ok(VariantFacts::default());
    }
    // Two reads, each on a connection of its own (as before on the pool: no snapshot
    // between them is needed, availability is advisory until the engine reserves).
    let prices: Vec<PriceRow> = on_pool!(db, p => {
        let mut qb = sqlx::QueryBuilder::new(
            "SELECT variant_id, currency, amount_minor, compare_at_minor FROM variant_prices WHERE variant_id IN (",
        );
        let mut ids = qb.separated(", ");
        for id in shapes::padded(variant_ids) {
            ids.push_bind(*id);
        }
        qb.push(") ORDER BY variant_id, currency");
        qb.build_query_as().fetch_all(p).await
    })?;
    let available: Vec<(Uuid, i64)> = on_pool!(db, p => {
        let mut qb = sqlx::QueryBuilder::new(
            "SELECT variant_id, CAST(SUM(on_hand - reserved) AS BIGINT) FROM stock_levels WHERE variant_id IN (",
        );
        let mut ids = qb.separated(", ");
        for id in shapes::padded(variant_ids) {
            ids.push_bind(*id);
        }
        qb.push(") GROUP BY variant_id");
        qb.build_query_as().fetch_all(p).await
    })?;
    Ok(VariantFacts { prices, available })
}

pub async fn count_products(db: &Db) -> Result<i64, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM products").fetch_one(p).await)?)
}

/// SKU codes of variants, by variant id.
pub async fn skus_of(
    db: &Db,
    variant_ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, String>, StoreError> {
    if variant_ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let rows: Vec<(Uuid, String)> = on_pool!(db, p => {
        let mut qb = sqlx::QueryBuilder::new("SELECT id, sku FROM variants WHERE id IN (");
        let mut ids = qb.separated(", ");
        for id in shapes::padded(variant_ids) {
            ids.push_bind(*id);
        }
        qb.push(")");
        qb.build_query_as().fetch_all(p).await
    })?;
    Ok(rows.into_iter().collect())
}

/// A variant and its product's seller, by SKU code.
pub async fn find_variant_by_sku(db: &Db, sku: &str) -> Result<Option<(Uuid, Uuid)>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT v.id, p.seller_id FROM variants v JOIN products p ON p.id = v.product_id WHERE v.sku = $1",
    )
    .bind(sku)
    .fetch_optional(p)
    .await)?)
}
