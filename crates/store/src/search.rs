//! Search's tables: synonyms, query analytics, product signals; and the reads that feed the
//! index (active products by page or by id, products of variants).

use chrono::{DateTime, Utc};
pub use sqlx::types::Json;
use uuid::Uuid;

use crate::catalog::ProductRow;
use crate::{Db, StoreError, Tx, on_pool, on_tx};

const PRODUCT_COLUMNS: &str = "p.id, p.seller_id, p.category_id, p.slug, p.title, p.description, \
    p.brand, p.attributes, p.images, p.status, p.created_at, p.updated_at";

/// Active products after `after` in id order: one page of a rebuild.
pub async fn active_products_after(
    db: &Db,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<ProductRow>, StoreError> {
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.status = 'active' AND ($1 IS NULL OR p.id > $1) \
         ORDER BY p.id LIMIT $2"
    );
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?,
    )
}

/// Products by id, whatever their status.
pub async fn products_by_ids(db: &Db, ids: &[Uuid]) -> Result<Vec<ProductRow>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(on_pool!(db, p => {
        let mut qb = sqlx::QueryBuilder::new(format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id IN ("));
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        qb.push(")");
        qb.build_query_as().fetch_all(p).await
    })?)
}

/// The products of some variants.
pub async fn products_of_variants(db: &Db, variant_ids: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
    if variant_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(on_pool!(db, p => {
        let mut qb = sqlx::QueryBuilder::new("SELECT DISTINCT product_id FROM variants WHERE id IN (");
        let mut list = qb.separated(", ");
        for id in variant_ids {
            list.push_bind(*id);
        }
        qb.push(")");
        qb.build_query_scalar().fetch_all(p).await
    })?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SignalsRow {
    pub product_id: Uuid,
    pub rating: f64,
    pub review_count: i64,
    pub sales_count: i64,
    pub updated_at: DateTime<Utc>,
}

pub async fn signals_of(db: &Db, product_ids: &[Uuid]) -> Result<Vec<SignalsRow>, StoreError> {
    if product_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(on_pool!(db, p => {
        let mut qb = sqlx::QueryBuilder::new(
            "SELECT product_id, rating, review_count, sales_count, updated_at FROM product_signals WHERE product_id IN (",
        );
        let mut list = qb.separated(", ");
        for id in product_ids {
            list.push_bind(*id);
        }
        qb.push(")");
        qb.build_query_as().fetch_all(p).await
    })?)
}

/// Sets a product's rating and review count (reviews own these numbers).
pub async fn set_rating(
    tx: &mut Tx,
    product_id: Uuid,
    rating: f64,
    review_count: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO product_signals (product_id, rating, review_count, sales_count, updated_at) \
         VALUES ($1, $2, $3, 0, $4) ON CONFLICT (product_id) DO UPDATE SET \
         rating = excluded.rating, review_count = excluded.review_count, updated_at = excluded.updated_at",
    )
    .bind(product_id)
    .bind(rating)
    .bind(review_count)
    .bind(at)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Adds units sold to a product's sales count (orders own this number).
pub async fn add_sales(
    tx: &mut Tx,
    product_id: Uuid,
    units: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO product_signals (product_id, rating, review_count, sales_count, updated_at) \
         VALUES ($1, 0, 0, $2, $3) ON CONFLICT (product_id) DO UPDATE SET \
         sales_count = product_signals.sales_count + excluded.sales_count, updated_at = excluded.updated_at",
    )
    .bind(product_id)
    .bind(units)
    .bind(at)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SynonymRow {
    pub id: Uuid,
    pub kind: String,
    pub source: Option<String>,
    pub terms: Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_synonym(tx: &mut Tx, s: &SynonymRow) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO search_synonyms (id, kind, source, terms, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(s.id)
    .bind(&s.kind)
    .bind(&s.source)
    .bind(&s.terms)
    .bind(s.created_at)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes a synonym rule; false when there was none.
pub async fn delete_synonym(tx: &mut Tx, id: Uuid) -> Result<bool, StoreError> {
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM search_synonyms WHERE id = $1")
        .bind(id)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

pub async fn list_synonyms(db: &Db) -> Result<Vec<SynonymRow>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT id, kind, source, terms, created_at FROM search_synonyms ORDER BY id",
    )
    .fetch_all(p)
    .await)?)
}

/// Searches of one query since the last flush.
#[derive(Debug, Clone)]
pub struct QueryTally {
    pub query: String,
    pub searches: i64,
    pub zero_results: i64,
    pub last_results: i64,
}

/// Adds a batch of tallies to the query statistics.
pub async fn record_queries(
    tx: &mut Tx,
    tallies: &[QueryTally],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for t in tallies {
        on_tx!(tx, c => sqlx::query(
            "INSERT INTO search_queries (query, searches, zero_results, last_results, last_searched_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (query) DO UPDATE SET \
             searches = search_queries.searches + excluded.searches, \
             zero_results = search_queries.zero_results + excluded.zero_results, \
             last_results = excluded.last_results, last_searched_at = excluded.last_searched_at",
        )
        .bind(&t.query)
        .bind(t.searches)
        .bind(t.zero_results)
        .bind(t.last_results)
        .bind(at)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueryStatsRow {
    pub query: String,
    pub searches: i64,
    pub zero_results: i64,
    pub last_results: i64,
    pub last_searched_at: DateTime<Utc>,
}

/// The most searched queries.
pub async fn top_queries(db: &Db, limit: u32) -> Result<Vec<QueryStatsRow>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT query, searches, zero_results, last_results, last_searched_at FROM search_queries \
         ORDER BY searches DESC, query LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(p)
    .await)?)
}

/// Queries that found nothing, most frequent first.
pub async fn zero_result_queries(db: &Db, limit: u32) -> Result<Vec<QueryStatsRow>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT query, searches, zero_results, last_results, last_searched_at FROM search_queries \
         WHERE zero_results > 0 ORDER BY zero_results DESC, query LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(p)
    .await)?)
}

/// Queries whose last search found something, most searched first (suggestions).
pub async fn popular_queries(db: &Db, limit: u32) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT query, searches FROM search_queries WHERE last_results > 0 \
         ORDER BY searches DESC, query LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(p)
    .await)?)
}
