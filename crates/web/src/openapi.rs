//! The OpenAPI 3.1 document, generated from the handlers' annotations, served at
//! `/api/v1/openapi.json`, and the Swagger UI at `/api/docs` (its assets are compiled into
//! the binary: no external network access).

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::api::{admin, catalog, identity, reservations, search, stock};

#[derive(OpenApi)]
#[openapi(
    info(title = "Emporium API", description = "Headless e-commerce: catalog, accounts and more. Errors are RFC 9457 problem+json documents with a stable `code`."),
    paths(
        identity::register, identity::login, identity::logout, identity::me,
        identity::list_addresses, identity::create_address, identity::replace_address, identity::delete_address,
        catalog::list_categories, catalog::create_category, catalog::list_products, catalog::get_product,
        catalog::create_product, catalog::update_product, catalog::add_variant, catalog::update_variant,
        catalog::put_translation, catalog::seller_products, catalog::seller_product,
        admin::list_users, admin::approve, admin::disable, admin::enable,
        stock::list_locations, stock::create_location, stock::get_stock, stock::list_movements, stock::receive, stock::adjust, stock::transfer, stock::put_threshold,
        reservations::create, reservations::show, reservations::extend, reservations::release,
        reservations::create_sale, reservations::sale_status, reservations::reserve_sale,
        search::search_products, search::suggest, search::list_synonyms, search::create_synonym,
        search::delete_synonym, search::query_report,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "identity", description = "Accounts, sessions and addresses"),
        (name = "catalog", description = "Categories, products, variants and prices"),
        (name = "admin", description = "Administration"),
        (name = "stock", description = "Stock locations, levels, movements and low-stock thresholds"),
        (name = "inventory", description = "Reservations and flash sales"),
        (name = "search", description = "Product search, suggestions, synonyms and search analytics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", ApiDoc::openapi()))
}
