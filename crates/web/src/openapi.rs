//! The OpenAPI 3.1 document, generated from the handlers' annotations, served at
//! `/api/v1/openapi.json`, and the Swagger UI at `/api/docs` (its assets are compiled into
//! the binary: no external network access).
//!
//! Modifiers add what every operation shares: the bearer scheme, and on every mutating
//! operation the `Idempotency-Key` header, the `Idempotent-Replayed` response header and
//! the idempotency problems (409 in flight, 422 reused).

use axum::Router;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::api::{admin, carts, catalog, identity, orders, pricing, reservations, search, stock};

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
        carts::create, carts::show, carts::add_item, carts::update_item, carts::remove_item,
        carts::apply_coupon, carts::remove_coupon, carts::merge,
        orders::checkout_cart, orders::my_orders, orders::show, orders::cancel, orders::request_return,
        orders::seller_orders, orders::ship, orders::deliver, orders::admin_orders, orders::refund,
        orders::decide_return, orders::confirm, orders::webhook,
        pricing::currencies, pricing::shipping_methods, pricing::set_fx_rate, pricing::remove_fx_rate,
        pricing::tax_rates, pricing::set_tax_rate, pricing::set_shipping_method, pricing::create_coupon,
        pricing::create_batch, pricing::coupons, pricing::abandoned,
        search::search_products, search::suggest, search::list_synonyms, search::create_synonym,
        search::delete_synonym, search::query_report,
    ),
    modifiers(&BearerAuth, &Idempotency),
    tags(
        (name = "identity", description = "Accounts, sessions and addresses"),
        (name = "catalog", description = "Categories, products, variants and prices"),
        (name = "admin", description = "Administration"),
        (name = "stock", description = "Stock locations, levels, movements and low-stock thresholds"),
        (name = "inventory", description = "Reservations and flash sales"),
        (name = "cart", description = "Guest and customer carts, coupons, price and FX locks"),
        (name = "checkout", description = "Checkout, payments and provider webhooks"),
        (name = "orders", description = "Order history, fulfilment per seller, refunds and returns"),
        (name = "pricing", description = "Currencies and FX rates, tax rates, shipping methods, coupons"),
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

struct Idempotency;

const KEY_PARAMETER: &str = "IdempotencyKey";
const REPLAYED_HEADER: &str = "IdempotentReplayed";

impl Modify for Idempotency {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .parameters
            .insert(KEY_PARAMETER.to_owned(), RefOr::T(key_parameter()));
        let replayed = HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::Boolean)))
            .description(Some(
                "`true` when this is the stored answer to an earlier request with the same \
                 Idempotency-Key, method, path and body.",
            ))
            .build();
        components
            .headers
            .insert(REPLAYED_HEADER.to_owned(), RefOr::T(replayed));
        for item in openapi.paths.paths.values_mut() {
            let mutating = [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in mutating.into_iter().flatten() {
                document_idempotency(operation);
            }
        }
    }
}

fn key_parameter() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes a retry safe: the same key with the same method, path and body replays \
             the stored answer (with `Idempotent-Replayed: true`) instead of running again; \
             with another request it is 422 `idempotency_key_reused`; while the first request \
             runs it is 409 `idempotency_key_in_flight`. Keys are kept 24 hours, per user \
             (anonymous callers share one namespace, so use a random UUID). Answers of 5xx \
             and 429 are not stored, so a retry runs again.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255)),
        ))
        .build()
}

fn document_idempotency(operation: &mut Operation) {
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .push(RefOr::Ref(Ref::new(format!(
            "#/components/parameters/{KEY_PARAMETER}"
        ))));
    let responses = &mut operation.responses.responses;
    // 5xx and 429 answers are never stored, so never replayed.
    let replayable = responses
        .iter_mut()
        .filter(|(status, _)| !status.starts_with('5') && status.as_str() != "429");
    for (_, response) in replayable {
        if let RefOr::T(response) = response {
            response.headers.insert(
                "Idempotent-Replayed".to_owned(),
                RefOr::Ref(Ref::new(format!("#/components/headers/{REPLAYED_HEADER}"))),
            );
        }
    }
    for (status, code) in [
        ("409", "idempotency_key_in_flight (with Retry-After)"),
        ("422", "idempotency_key_reused"),
    ] {
        match responses.get_mut(status) {
            Some(RefOr::T(response)) if response.description.is_empty() => {
                response.description = code.to_owned();
            }
            Some(RefOr::T(response)) => {
                response.description = format!("{}; {code}", response.description);
            }
            Some(RefOr::Ref(_)) => {}
            None => {
                let problem = ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build();
                let response = ResponseBuilder::new()
                    .description(code)
                    .content("application/problem+json", problem)
                    .build();
                responses.insert(status.to_owned(), RefOr::T(response));
            }
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", ApiDoc::openapi()))
}
