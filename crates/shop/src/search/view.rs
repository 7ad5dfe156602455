//! What the search API answers, built from the engine's results.

use std::collections::{BTreeMap, HashMap};

use emporium_domain::money::{Currency, Money};
use emporium_search::{CategoryCount, SearchResults, Suggestions, ValueCount};
use emporium_store::catalog::CategoryRow;
use serde::Serialize;

use crate::catalog::PriceView;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    pub id: String,
    pub slug: String,
    /// The locale of `title` and the highlights.
    pub locale: String,
    pub title: String,
    /// The title, HTML-escaped, with matched words in `<em>`.
    pub title_html: String,
    /// Part of the description around the first match, same markup.
    pub snippet_html: String,
    pub brand: Option<String>,
    pub category_path: Option<String>,
    /// The lowest price in the search's currency.
    pub price: Option<PriceView>,
    pub rating: f64,
    pub review_count: u64,
    pub in_stock: bool,
    pub image: Option<String>,
    /// The blended relevance score (see docs/architecture.md).
    pub score: f32,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FacetValue {
    pub value: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CategoryFacet {
    /// Slugs from the root; pass as `category` to filter.
    pub path: String,
    pub name: String,
    pub count: u64,
    #[schema(no_recursion)]
    pub children: Vec<CategoryFacet>,
}

/// Products priced from `min_minor` up to (not including) `max_minor`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PriceFacet {
    pub min_minor: u64,
    pub max_minor: Option<u64>,
    pub count: u64,
}

/// Products rated at least `min`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RatingFacet {
    pub min: f64,
    pub count: u64,
}

/// Facet counts. Disjunctive: each facet counts as if its own filter were not set.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchFacets {
    pub categories: Vec<CategoryFacet>,
    pub brands: Vec<FacetValue>,
    pub price: Vec<PriceFacet>,
    pub rating: Vec<RatingFacet>,
    pub attributes: BTreeMap<String, Vec<FacetValue>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    /// Products matching the query and all filters.
    pub total: u64,
    pub hits: Vec<SearchHit>,
    pub facets: SearchFacets,
    /// A corrected query, offered when few products were found.
    pub did_you_mean: Option<String>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SuggestedProductView {
    pub id: String,
    pub slug: String,
    pub title: String,
    pub title_html: String,
    pub image: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SuggestPage {
    /// Query completions, from past queries and product titles.
    pub completions: Vec<String>,
    pub products: Vec<SuggestedProductView>,
}

/// Category names by path, and paths by slug.
pub struct CategoryNames {
    names: HashMap<String, String>,
    paths: HashMap<String, String>,
}

impl CategoryNames {
    pub fn new(rows: Vec<CategoryRow>) -> Self {
        let mut names = HashMap::new();
        let mut paths = HashMap::new();
        for r in rows {
            paths.insert(r.slug, r.path.clone());
            names.insert(r.path, r.name);
        }
        Self { names, paths }
    }

    /// The path of a slug, or the path itself when it is one.
    pub fn path_of(&self, slug_or_path: &str) -> Option<String> {
        if self.names.contains_key(slug_or_path) {
            return Some(slug_or_path.to_owned());
        }
        self.paths.get(slug_or_path).cloned()
    }
}

/// The `cursor` of a result offset.
pub fn cursor_of(offset: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

/// The offset of a `cursor` this server issued.
pub fn offset_of(cursor: &str) -> Option<usize> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix("o:")?
        .parse()
        .ok()
}

pub fn page(r: &SearchResults, names: &CategoryNames, currency: Currency) -> SearchPage {
    SearchPage {
        total: r.total,
        hits: r
            .hits
            .iter()
            .map(|h| SearchHit {
                id: h.product.id.clone(),
                slug: h.product.slug.clone(),
                locale: h.locale.clone(),
                title: h.title.clone(),
                title_html: h.title_html.clone(),
                snippet_html: h.snippet_html.clone(),
                brand: h.product.brand.clone(),
                category_path: h.product.category_path.clone(),
                price: h
                    .product
                    .prices
                    .get(currency.code())
                    .and_then(|amount| price(*amount, currency)),
                rating: h.product.rating,
                review_count: h.product.review_count,
                in_stock: h.product.in_stock,
                image: h.product.image.clone(),
                score: h.score,
            })
            .collect(),
        facets: SearchFacets {
            categories: r
                .facets
                .categories
                .iter()
                .map(|c| category(c, names))
                .collect(),
            brands: values(&r.facets.brands),
            price: r
                .facets
                .price
                .iter()
                .map(|b| PriceFacet {
                    min_minor: b.min_minor,
                    max_minor: b.max_minor,
                    count: b.count,
                })
                .collect(),
            rating: r
                .facets
                .rating
                .iter()
                .map(|b| RatingFacet {
                    min: b.min,
                    count: b.count,
                })
                .collect(),
            attributes: r
                .facets
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), values(v)))
                .collect(),
        },
        did_you_mean: r.did_you_mean.clone(),
        next_cursor: r.next_offset.map(cursor_of),
    }
}

fn price(amount_minor: i64, currency: Currency) -> Option<PriceView> {
    let money = Money::price(amount_minor, currency).ok()?;
    Some(PriceView {
        currency,
        amount_minor,
        compare_at_minor: None,
        display: money.display(),
    })
}

fn values(v: &[ValueCount]) -> Vec<FacetValue> {
    v.iter()
        .map(|c| FacetValue {
            value: c.value.clone(),
            count: c.count,
        })
        .collect()
}

fn category(c: &CategoryCount, names: &CategoryNames) -> CategoryFacet {
    CategoryFacet {
        name: names
            .names
            .get(&c.path)
            .cloned()
            .unwrap_or_else(|| c.path.rsplit('/').next().unwrap_or_default().to_owned()),
        path: c.path.clone(),
        count: c.count,
        children: c.children.iter().map(|ch| category(ch, names)).collect(),
    }
}

pub fn suggestions(s: &Suggestions) -> SuggestPage {
    SuggestPage {
        completions: s.completions.clone(),
        products: s
            .products
            .iter()
            .map(|p| SuggestedProductView {
                id: p.id.clone(),
                slug: p.slug.clone(),
                title: p.title.clone(),
                title_html: p.title_html.clone(),
                image: p.image.clone(),
            })
            .collect(),
    }
}
