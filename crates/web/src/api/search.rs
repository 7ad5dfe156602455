//! Search: products with facets, suggestions as the shopper types, and the admin side
//! (synonyms, query analytics).

mod params;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::routing::{delete, get};
use emporium_shop::search::analytics::{self, QueryReport, QueryStats};
use emporium_shop::search::synonyms::{self, SynonymView};
use emporium_shop::search::{self as search, SearchPage, SuggestPage};
use serde::Deserialize;
use uuid::Uuid;

use super::Items;
use crate::AppState;
use crate::error::{ApiResult, Problem};
use crate::extract::{AdminUser, ApiJson, ApiPath, ApiQuery, Locales};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/search", get(search_products))
        .route("/search/suggest", get(suggest))
        .route(
            "/admin/search/synonyms",
            get(list_synonyms).post(create_synonym),
        )
        .route("/admin/search/synonyms/{id}", delete(delete_synonym))
        .route("/admin/search/queries", get(query_report))
}

/// The parameters of a search (documentation; the handler reads the raw query string).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the query string, which is parsed by hand"
)]
pub struct SearchParams {
    /// Words to find (at most 200 characters); empty: browse by filters. Typos are
    /// tolerated, the last word is completed, quotes and operators are plain text.
    q: Option<String>,
    /// A category slug or path; its descendants are included.
    category: Option<String>,
    /// Repeat for several brands (any of them).
    brand: Option<String>,
    /// Minor units of `currency`, inclusive.
    price_min: Option<u64>,
    price_max: Option<u64>,
    /// Currency of prices, price filters and price sorts (default GBP).
    currency: Option<String>,
    /// 0 to 5.
    rating_min: Option<f64>,
    in_stock: Option<bool>,
    /// `attr.NAME=value`, e.g. `attr.colour=red`; repeat for alternatives.
    #[param(rename = "attr.NAME")]
    attr: Option<String>,
    /// relevance (default), price_asc, price_desc, rating, newest, best_selling.
    sort: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 100, default 20.
    limit: Option<i64>,
    /// Overrides Accept-Language for titles and snippets.
    locale: Option<String>,
}

/// Search products: hits with highlights, total, disjunctive facet counts and "did you mean".
#[utoipa::path(get, path = "/api/v1/search", tag = "search", params(SearchParams),
    responses((status = 200, body = SearchPage), (status = 400, body = Problem), (status = 422, body = Problem)))]
async fn search_products(
    State(app): State<AppState>,
    uri: Uri,
    locales: Locales,
) -> ApiResult<axum::Json<SearchPage>> {
    let mut query = params::search_query(params::pairs(uri.query())?)?;
    query.locales = locales.0;
    Ok(axum::Json(search::search(&app.shop, query).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuggestParams {
    /// What the shopper typed so far (at most 200 characters).
    pub q: Option<String>,
    pub locale: Option<String>,
}

/// Completions and top products as the shopper types.
#[utoipa::path(get, path = "/api/v1/search/suggest", tag = "search", params(SuggestParams),
    responses((status = 200, body = SuggestPage), (status = 400, body = Problem), (status = 422, body = Problem)))]
async fn suggest(
    State(app): State<AppState>,
    uri: Uri,
    locales: Locales,
) -> ApiResult<axum::Json<SuggestPage>> {
    let text = params::pairs(uri.query())?
        .into_iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v)
        .unwrap_or_default();
    Ok(axum::Json(
        search::suggest(&app.shop, &text, &locales.0).await?,
    ))
}

/// Synonym rules.
#[utoipa::path(get, path = "/api/v1/admin/search/synonyms", tag = "search", security(("bearer" = [])),
    responses((status = 200, body = Items<SynonymView>), (status = 403, body = Problem)))]
async fn list_synonyms(
    State(app): State<AppState>,
    AdminUser(admin): AdminUser,
) -> ApiResult<axum::Json<Items<SynonymView>>> {
    Ok(axum::Json(Items {
        items: synonyms::list(&app.shop, &admin).await?,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SynonymRequest {
    /// `multi_way`: every phrase finds the others; `one_way`: `source` also finds `terms`.
    pub kind: String,
    pub source: Option<String>,
    /// Phrases of 1 to 3 words.
    pub terms: Vec<String>,
}

/// Add a synonym rule; it applies to searches at once.
#[utoipa::path(post, path = "/api/v1/admin/search/synonyms", tag = "search", security(("bearer" = [])),
    request_body = SynonymRequest,
    responses((status = 201, body = SynonymView), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_synonym(
    State(app): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(req): ApiJson<SynonymRequest>,
) -> ApiResult<(StatusCode, axum::Json<SynonymView>)> {
    let rule = synonyms::parse_rule(&req.kind, req.source.as_deref(), &req.terms)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(synonyms::create(&app.shop, &admin, rule).await?),
    ))
}

/// Delete a synonym rule.
#[utoipa::path(delete, path = "/api/v1/admin/search/synonyms/{id}", tag = "search", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 204, description = "deleted"), (status = 404, body = Problem)))]
async fn delete_synonym(
    State(app): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    synonyms::delete(&app.shop, &admin, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueryReportParams {
    /// `top` (default): most searched; `zero_results`: searches that found nothing.
    pub kind: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<i64>,
}

/// Search analytics: the most searched queries, or those that found nothing.
#[utoipa::path(get, path = "/api/v1/admin/search/queries", tag = "search", security(("bearer" = [])),
    params(QueryReportParams),
    responses((status = 200, body = Items<QueryStats>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn query_report(
    State(app): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiQuery(q): ApiQuery<QueryReportParams>,
) -> ApiResult<axum::Json<Items<QueryStats>>> {
    let which = match q.kind.as_deref() {
        None | Some("top") => QueryReport::Top,
        Some("zero_results") => QueryReport::ZeroResults,
        Some(_) => {
            return Err(emporium_domain::Invalid::new("kind", "top or zero_results").into());
        }
    };
    let limit = emporium_domain::paging::Limit::parse(q.limit)?.get();
    Ok(axum::Json(Items {
        items: analytics::report(&app.shop, &admin, which, limit).await?,
    }))
}
