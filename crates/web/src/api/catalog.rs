//! Catalog: categories, products, variants, translations. Public reads are served from the
//! read cache with ETags; writes need an approved seller (own products) or an admin.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, patch, post, put};
use emporium_domain::Invalid;
use emporium_domain::catalog::{self as rules, Locale, ProductSort, ProductStatus, Sku, Slug};
use emporium_domain::identity::text;
use emporium_domain::ids::{CategoryId, ProductId, UserId, VariantId};
use emporium_domain::money::{Currency, Money};
use emporium_domain::paging::{Cursor, Limit};
use emporium_shop::catalog::{
    self, CategoryNode, NewCategory, NewPrice, NewProduct, NewVariant, ProductFilter, ProductPage,
    ProductPatch, ProductView, Translation, VariantPatch,
};
use serde::{Deserialize, Deserializer};

use super::Items;
use crate::AppState;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AdminUser, ApiJson, ApiPath, ApiQuery, Locales, SellerUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/categories", get(list_categories).post(create_category))
        .route("/products", get(list_products).post(create_product))
        .route("/products/{key}", get(get_product).patch(update_product))
        .route("/products/{key}/variants", post(add_variant))
        .route(
            "/products/{key}/translations/{locale}",
            put(put_translation),
        )
        .route("/variants/{id}", patch(update_variant))
        .route("/seller/products", get(seller_products))
        .route("/seller/products/{id}", get(seller_product))
}

/// The category tree.
#[utoipa::path(get, path = "/api/v1/categories", tag = "catalog",
    responses((status = 200, body = Items<CategoryNode>), (status = 304, description = "not modified")))]
async fn list_categories(State(app): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    cached(&app, "categories".to_owned(), &headers, None, async {
        Ok(Items {
            items: catalog::list_categories(&app.shop).await?,
        })
    })
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryRequest {
    pub slug: String,
    pub name: String,
    pub parent_id: Option<CategoryId>,
}

/// Create a category (admin).
#[utoipa::path(post, path = "/api/v1/categories", tag = "catalog", security(("bearer" = [])), request_body = CategoryRequest,
    responses((status = 201, body = CategoryNode), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn create_category(
    State(app): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(req): ApiJson<CategoryRequest>,
) -> ApiResult<(StatusCode, axum::Json<CategoryNode>)> {
    let new = NewCategory {
        slug: Slug::parse(&req.slug)?,
        name: text("name", &req.name, 1, 120)?,
        parent: req.parent_id,
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(catalog::create_category(&app.shop, &admin, new).await?),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductListQuery {
    /// A category slug; products of its descendants are included.
    pub category: Option<String>,
    pub seller: Option<UserId>,
    pub brand: Option<String>,
    /// Currency of prices, filters and price sorts (default GBP).
    pub currency: Option<String>,
    /// Minor units.
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    /// newest (default), price_asc, price_desc, title.
    pub sort: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<i64>,
    /// Overrides Accept-Language.
    pub locale: Option<String>,
}

impl ProductListQuery {
    fn parse(
        self,
        locales: Vec<Locale>,
        status: Option<ProductStatus>,
    ) -> Result<ProductFilter, Invalid> {
        let nonneg = |field: &str, v: Option<i64>| match v {
            Some(n) if n < 0 => Err(Invalid::new(field, "must not be negative")),
            other => Ok(other),
        };
        Ok(ProductFilter {
            category: self.category.as_deref().map(Slug::parse).transpose()?,
            seller: self.seller,
            brand: self
                .brand
                .as_deref()
                .map(|b| text("brand", b, 1, 100))
                .transpose()?,
            currency: self
                .currency
                .as_deref()
                .map(Currency::parse)
                .transpose()?
                .unwrap_or(Currency::GBP),
            price_min: nonneg("price_min", self.price_min)?,
            price_max: nonneg("price_max", self.price_max)?,
            sort: self
                .sort
                .as_deref()
                .map(ProductSort::parse)
                .transpose()?
                .unwrap_or_default(),
            cursor: self.cursor.as_deref().map(Cursor::decode).transpose()?,
            limit: Limit::parse(self.limit)?,
            locales,
            status,
        })
    }
}

/// Active products, filtered, sorted and paginated by cursor.
#[utoipa::path(get, path = "/api/v1/products", tag = "catalog", params(ProductListQuery),
    responses((status = 200, body = ProductPage), (status = 304, description = "not modified"),
              (status = 400, body = Problem), (status = 422, body = Problem)))]
async fn list_products(
    State(app): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    locales: Locales,
    ApiQuery(q): ApiQuery<ProductListQuery>,
) -> ApiResult<Response> {
    let key = format!("list:{}|{}", uri.query().unwrap_or_default(), locales.key());
    let filter = q.parse(locales.0, Some(ProductStatus::Active))?;
    cached(&app, key, &headers, None, async {
        catalog::list_products(&app.shop, filter).await
    })
    .await
}

/// One active product by id or slug, with variants, prices and stock status.
#[utoipa::path(get, path = "/api/v1/products/{key}", tag = "catalog",
    params(("key" = String, Path, description = "product id or slug"), ("locale" = Option<String>, Query)),
    responses((status = 200, body = ProductView), (status = 304, description = "not modified"), (status = 404, body = Problem)))]
async fn get_product(
    State(app): State<AppState>,
    ApiPath(key): ApiPath<String>,
    headers: HeaderMap,
    locales: Locales,
) -> ApiResult<Response> {
    let cache_key = format!("product:{key}|{}", locales.key());
    let version = app.shop.catalog_version.get();
    if let Some(hit) = app.cache.get(&cache_key, version) {
        return Ok(hit.respond(&headers));
    }
    let product = catalog::get_product(&app.shop, &key, &locales.0, None).await?;
    let body = serde_json::to_vec(&product).map_err(|_| ApiError::internal())?;
    Ok(app
        .cache
        .put(cache_key, version, body, Some(&product.locale))
        .respond(&headers))
}

/// Serves `key` from the read cache, or builds, caches and serves it.
async fn cached<T: serde::Serialize>(
    app: &AppState,
    key: String,
    headers: &HeaderMap,
    language: Option<&str>,
    build: impl Future<Output = Result<T, emporium_shop::ShopError>>,
) -> ApiResult<Response> {
    let version = app.shop.catalog_version.get();
    if let Some(hit) = app.cache.get(&key, version) {
        return Ok(hit.respond(headers));
    }
    let value = build.await?;
    let body = serde_json::to_vec(&value).map_err(|_| ApiError::internal())?;
    Ok(app.cache.put(key, version, body, language).respond(headers))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceRequest {
    pub currency: String,
    /// Minor units (pence, cents, yen).
    pub amount_minor: i64,
    pub compare_at_minor: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantRequest {
    pub sku: String,
    /// Option values, e.g. {"size": "M", "colour": "Red"}.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub prices: Vec<PriceRequest>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductRequest {
    pub title: String,
    /// Made from the title when absent.
    pub slug: Option<String>,
    #[serde(default)]
    pub description: String,
    pub brand: Option<String>,
    pub category_id: Option<CategoryId>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub images: Vec<String>,
    /// draft (default), active or archived.
    pub status: Option<String>,
    #[serde(default)]
    pub variants: Vec<VariantRequest>,
    /// Admins may create a product for a seller.
    pub seller_id: Option<UserId>,
}

fn parse_title(raw: &str) -> Result<String, Invalid> {
    text("title", raw, 1, 200)
}

fn parse_description(raw: &str) -> Result<String, Invalid> {
    text("description", raw, 0, 20_000)
}

fn parse_prices(raw: &[PriceRequest]) -> Result<Vec<NewPrice>, Invalid> {
    if raw.len() > 20 {
        return Err(Invalid::new("prices", "at most 20 prices"));
    }
    let mut seen = std::collections::HashSet::new();
    raw.iter()
        .map(|p| {
            let currency = Currency::parse(&p.currency)?;
            if !seen.insert(currency) {
                return Err(Invalid::new("prices", format!("{currency} is given twice")));
            }
            let amount = Money::price(p.amount_minor, currency)?;
            let compare_at = p
                .compare_at_minor
                .map(|c| Money::price(c, currency))
                .transpose()?;
            Ok(NewPrice {
                currency,
                amount_minor: amount.amount_minor,
                compare_at_minor: compare_at.map(|m| m.amount_minor),
            })
        })
        .collect()
}

fn parse_variant(raw: &VariantRequest) -> Result<NewVariant, Invalid> {
    Ok(NewVariant {
        sku: Sku::parse(&raw.sku)?,
        options: rules::attributes(raw.options.clone())?,
        prices: parse_prices(&raw.prices)?,
    })
}

impl ProductRequest {
    fn parse(self) -> Result<NewProduct, Invalid> {
        let title = parse_title(&self.title)?;
        let slug = match &self.slug {
            Some(s) => Slug::parse(s)?,
            None => Slug::from_title(&title)?,
        };
        let mut skus = std::collections::HashSet::new();
        let variants = self
            .variants
            .iter()
            .map(|v| {
                let v = parse_variant(v)?;
                if !skus.insert(v.sku.clone()) {
                    return Err(Invalid::new(
                        "variants",
                        format!("SKU {} is given twice", v.sku.as_str()),
                    ));
                }
                Ok(v)
            })
            .collect::<Result<_, Invalid>>()?;
        Ok(NewProduct {
            title,
            slug,
            description: parse_description(&self.description)?,
            brand: self
                .brand
                .as_deref()
                .map(|b| text("brand", b, 1, 100))
                .transpose()?,
            category: self.category_id,
            attributes: rules::attributes(self.attributes)?,
            images: rules::image_urls(self.images)?,
            status: self
                .status
                .as_deref()
                .map(ProductStatus::parse)
                .transpose()?
                .unwrap_or(ProductStatus::Draft),
            variants,
            seller: self.seller_id,
        })
    }
}

/// Create a product with its variants (seller or admin).
#[utoipa::path(post, path = "/api/v1/products", tag = "catalog", security(("bearer" = [])), request_body = ProductRequest,
    responses((status = 201, body = ProductView), (status = 403, body = Problem), (status = 409, description = "slug_taken, sku_taken", body = Problem),
              (status = 422, body = Problem)))]
async fn create_product(
    State(app): State<AppState>,
    SellerUser(seller): SellerUser,
    ApiJson(req): ApiJson<ProductRequest>,
) -> ApiResult<(StatusCode, axum::Json<ProductView>)> {
    let product = catalog::create_product(&app.shop, &seller, req.parse()?).await?;
    Ok((StatusCode::CREATED, axum::Json(product)))
}

/// `Some(None)` when the field is present and null, `None` when absent.
fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatchRequest {
    pub title: Option<String>,
    pub slug: Option<String>,
    pub description: Option<String>,
    /// null clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub brand: Option<Option<String>>,
    /// null clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub category_id: Option<Option<CategoryId>>,
    pub attributes: Option<BTreeMap<String, String>>,
    pub images: Option<Vec<String>>,
    pub status: Option<String>,
}

impl ProductPatchRequest {
    fn parse(self) -> Result<ProductPatch, Invalid> {
        Ok(ProductPatch {
            title: self.title.as_deref().map(parse_title).transpose()?,
            slug: self.slug.as_deref().map(Slug::parse).transpose()?,
            description: self
                .description
                .as_deref()
                .map(parse_description)
                .transpose()?,
            brand: self
                .brand
                .map(|b| b.as_deref().map(|b| text("brand", b, 1, 100)).transpose())
                .transpose()?,
            category: self.category_id,
            attributes: self.attributes.map(rules::attributes).transpose()?,
            images: self.images.map(rules::image_urls).transpose()?,
            status: self
                .status
                .as_deref()
                .map(ProductStatus::parse)
                .transpose()?,
        })
    }
}

fn product_id(key: &str) -> Result<ProductId, ApiError> {
    key.parse().map_err(|_| ApiError::not_found("product"))
}

/// Change a product (its seller or an admin).
#[utoipa::path(patch, path = "/api/v1/products/{key}", tag = "catalog", security(("bearer" = [])), request_body = ProductPatchRequest,
    params(("key" = String, Path, format = Uuid, description = "product id")),
    responses((status = 200, body = ProductView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_product(
    State(app): State<AppState>,
    SellerUser(seller): SellerUser,
    ApiPath(key): ApiPath<String>,
    ApiJson(req): ApiJson<ProductPatchRequest>,
) -> ApiResult<axum::Json<ProductView>> {
    let id = product_id(&key)?;
    Ok(axum::Json(
        catalog::update_product(&app.shop, &seller, id, req.parse()?).await?,
    ))
}

/// Add a variant to a product.
#[utoipa::path(post, path = "/api/v1/products/{key}/variants", tag = "catalog", security(("bearer" = [])), request_body = VariantRequest,
    params(("key" = String, Path, format = Uuid, description = "product id")),
    responses((status = 201, body = ProductView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn add_variant(
    State(app): State<AppState>,
    SellerUser(seller): SellerUser,
    ApiPath(key): ApiPath<String>,
    ApiJson(req): ApiJson<VariantRequest>,
) -> ApiResult<(StatusCode, axum::Json<ProductView>)> {
    let id = product_id(&key)?;
    let product = catalog::add_variant(&app.shop, &seller, id, parse_variant(&req)?).await?;
    Ok((StatusCode::CREATED, axum::Json(product)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantPatchRequest {
    pub sku: Option<String>,
    pub options: Option<BTreeMap<String, String>>,
    /// Replaces all prices of the variant.
    pub prices: Option<Vec<PriceRequest>>,
}

/// Change a variant: SKU, options, prices.
#[utoipa::path(patch, path = "/api/v1/variants/{id}", tag = "catalog", security(("bearer" = [])), request_body = VariantPatchRequest,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = ProductView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn update_variant(
    State(app): State<AppState>,
    SellerUser(seller): SellerUser,
    ApiPath(id): ApiPath<VariantId>,
    ApiJson(req): ApiJson<VariantPatchRequest>,
) -> ApiResult<axum::Json<ProductView>> {
    let patch = VariantPatch {
        sku: req.sku.as_deref().map(Sku::parse).transpose()?,
        options: req.options.map(rules::attributes).transpose()?,
        prices: req.prices.as_deref().map(parse_prices).transpose()?,
    };
    Ok(axum::Json(
        catalog::update_variant(&app.shop, &seller, id, patch).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TranslationRequest {
    pub title: String,
    #[serde(default)]
    pub description: String,
}

/// Set the title and description of a product in one locale.
#[utoipa::path(put, path = "/api/v1/products/{key}/translations/{locale}", tag = "catalog", security(("bearer" = [])),
    request_body = TranslationRequest,
    params(("key" = String, Path, format = Uuid, description = "product id"), ("locale" = String, Path, example = "fr")),
    responses((status = 200, body = ProductView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn put_translation(
    State(app): State<AppState>,
    SellerUser(seller): SellerUser,
    ApiPath((key, locale)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<TranslationRequest>,
) -> ApiResult<axum::Json<ProductView>> {
    let id = product_id(&key)?;
    let translation = Translation {
        locale: Locale::parse(&locale)?,
        title: parse_title(&req.title)?,
        description: parse_description(&req.description)?,
    };
    Ok(axum::Json(
        catalog::set_translation(&app.shop, &seller, id, translation).await?,
    ))
}

/// The caller's own products, any status (admins: filter by `seller`).
#[utoipa::path(get, path = "/api/v1/seller/products", tag = "catalog", security(("bearer" = [])), params(ProductListQuery),
    responses((status = 200, body = ProductPage), (status = 403, body = Problem)))]
async fn seller_products(
    State(app): State<AppState>,
    SellerUser(seller): SellerUser,
    locales: Locales,
    ApiQuery(q): ApiQuery<ProductListQuery>,
) -> ApiResult<axum::Json<ProductPage>> {
    let mut filter = q.parse(locales.0, None)?;
    if !seller.is_admin() || filter.seller.is_none() {
        filter.seller = Some(seller.user_id);
    }
    Ok(axum::Json(catalog::list_products(&app.shop, filter).await?))
}

/// One of the caller's products, any status.
#[utoipa::path(get, path = "/api/v1/seller/products/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = ProductView), (status = 404, body = Problem)))]
async fn seller_product(
    State(app): State<AppState>,
    SellerUser(seller): SellerUser,
    ApiPath(id): ApiPath<ProductId>,
    locales: Locales,
) -> ApiResult<axum::Json<ProductView>> {
    let product =
        catalog::get_product(&app.shop, &id.to_string(), &locales.0, Some(&seller)).await?;
    Ok(axum::Json(product))
}
