//! The demo shop: an admin, a seller, and the catalog derived from the UCI Online Retail
//! dataset (Chen, 2015, CC BY 4.0; see `demo/README.md`). Loaded once, on the first start
//! of an empty database.

use std::collections::{BTreeMap, HashMap, HashSet};

use emporium_domain::catalog::{Sku, Slug};
use emporium_domain::identity::{Email, Password, PersonName, Role, UserStatus};
use emporium_domain::ids::{CategoryId, ProductId, UserId, VariantId};
use emporium_store::catalog::{self as store, Json};
use emporium_store::inventory;
use serde::Deserialize;

use crate::identity::{Registration, create_user};
use crate::{Shop, ShopError, events};

#[derive(Debug, Deserialize)]
struct DemoCatalog {
    categories: Vec<DemoCategory>,
    products: Vec<DemoProduct>,
}

#[derive(Debug, Deserialize)]
struct DemoCategory {
    slug: String,
    name: String,
    parent: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DemoProduct {
    sku: String,
    title: String,
    description: String,
    category: String,
    price_minor: i64,
    currency: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    options: BTreeMap<String, String>,
    stock: i64,
}

/// Email and password of a demo account; `generated` when the password was made up here
/// and must be shown once.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub email: String,
    pub password: String,
    pub generated: bool,
}

#[derive(Debug, Clone)]
pub struct DemoReport {
    pub admin: DemoAccount,
    pub seller: DemoAccount,
    pub categories: usize,
    pub products: usize,
}

/// Demo prices are in GBP, as in the dataset; EUR prices are derived at this fixed rate
/// (per mille) so that multi-currency listings have something to show.
const DEMO_EUR_PER_GBP_PERMILLE: i64 = 1150;

/// Loads the demo data unless the catalog already has products. Returns `None` when there
/// was nothing to do.
pub async fn load_if_empty(
    shop: &Shop,
    catalog_json: &[u8],
    admin: DemoAccount,
    seller: DemoAccount,
) -> Result<Option<DemoReport>, ShopError> {
    if store::count_products(&shop.db).await? > 0 {
        return Ok(None);
    }
    let catalog: DemoCatalog = serde_json::from_slice(catalog_json).map_err(ShopError::internal)?;
    create_account(shop, &admin, "Demo Admin", Role::Admin).await?;
    let seller_id = create_account(shop, &seller, "Demo Seller", Role::Seller).await?;
    let products = insert_catalog(shop, &catalog, seller_id).await?;
    checkout_setup(shop).await?;
    shop.catalog_changed();
    Ok(Some(DemoReport {
        admin,
        seller,
        categories: catalog.categories.len(),
        products,
    }))
}

async fn create_account(
    shop: &Shop,
    account: &DemoAccount,
    name: &str,
    role: Role,
) -> Result<UserId, ShopError> {
    let reg = Registration {
        email: Email::parse(&account.email)?,
        password: Password::parse(account.password.clone())?,
        name: PersonName::parse(name)?,
        role,
    };
    Ok(create_user(shop, &reg, UserStatus::Active).await?.id)
}

/// Inserts categories, products, variants, prices and stock in one transaction.
async fn insert_catalog(
    shop: &Shop,
    catalog: &DemoCatalog,
    seller: UserId,
) -> Result<usize, ShopError> {
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let mut ids: HashMap<&str, (CategoryId, String)> = HashMap::new();
    // Parents come before children in the file; a child of an unknown parent is a root.
    for (position, c) in catalog.categories.iter().enumerate() {
        let parent = c.parent.as_deref().and_then(|p| ids.get(p)).cloned();
        let path = match &parent {
            Some((_, parent_path)) => format!("{parent_path}/{}", c.slug),
            None => c.slug.clone(),
        };
        let id = CategoryId::new();
        store::insert_category(
            &mut tx,
            &store::CategoryRow {
                id: id.0,
                parent_id: parent.map(|p| p.0.0),
                slug: Slug::parse(&c.slug)?.as_str().to_owned(),
                name: c.name.clone(),
                path: path.clone(),
                position: i32::try_from(position).unwrap_or(i32::MAX),
                created_at: now,
            },
        )
        .await?;
        ids.insert(&c.slug, (id, path));
    }
    let location = inventory::ensure_location(&mut tx, "main", "Main warehouse", now).await?;
    let mut slugs = HashSet::new();
    for p in &catalog.products {
        let sku = Sku::parse(&p.sku)?;
        let mut slug = Slug::from_title(&p.title)?.as_str().to_owned();
        if !slugs.insert(slug.clone()) {
            slug = format!("{slug}-{}", sku.as_str().to_ascii_lowercase());
            slugs.insert(slug.clone());
        }
        let product = ProductId::new().0;
        store::insert_product(
            &mut tx,
            &store::ProductRow {
                id: product,
                seller_id: seller.0,
                category_id: ids.get(p.category.as_str()).map(|c| c.0.0),
                slug: Slug::parse(&slug)?.as_str().to_owned(),
                title: p.title.clone(),
                description: p.description.clone(),
                brand: None,
                attributes: Json(p.attributes.clone()),
                images: Json(Vec::new()),
                status: "active".to_owned(),
                created_at: now,
                updated_at: now,
            },
        )
        .await?;
        let variant = VariantId::new().0;
        store::insert_variant(
            &mut tx,
            &store::VariantRow {
                id: variant,
                product_id: product,
                sku: sku.as_str().to_owned(),
                options: Json(p.options.clone()),
                position: 0,
                created_at: now,
            },
        )
        .await?;
        let eur = (p.price_minor * DEMO_EUR_PER_GBP_PERMILLE + 500) / 1000;
        let prices =
            [(p.currency.as_str(), p.price_minor), ("EUR", eur)].map(|(currency, amount)| {
                store::PriceRow {
                    variant_id: variant,
                    currency: currency.to_owned(),
                    amount_minor: amount,
                    compare_at_minor: None,
                }
            });
        store::replace_prices(&mut tx, variant, &prices).await?;
        if p.stock > 0 {
            inventory::apply_movement(
                &mut tx,
                &inventory::Movement {
                    variant_id: variant,
                    location_id: location,
                    delta: p.stock,
                    kind: "receive",
                    reason: Some("demo data"),
                    actor_id: Some(seller.0),
                    at: now,
                },
            )
            .await?;
        }
    }
    events::emit(
        &mut tx,
        seller.0,
        events::PRODUCT_CREATED,
        serde_json::json!({ "demo": true, "products": catalog.products.len() }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(catalog.products.len())
}

/// Standard VAT rates (basis points) of the demo customers' main countries (the UCI
/// dataset's customers are mostly in the UK and the EU).
const DEMO_TAX_RATES: &[(&str, &str, i64)] = &[
    ("GB", "VAT", 2000),
    ("DE", "MwSt", 1900),
    ("FR", "TVA", 2000),
    ("ES", "IVA", 2100),
    ("BE", "BTW", 2100),
    ("CH", "MWST", 810),
    ("PT", "IVA", 2300),
    ("IT", "IVA", 2200),
    ("FI", "ALV", 2550),
    ("NO", "MVA", 2500),
    ("AT", "USt", 2000),
    ("AU", "GST", 1000),
    ("NL", "BTW", 2100),
    ("DK", "moms", 2500),
    ("SE", "moms", 2500),
    ("JP", "JCT", 1000),
    ("IE", "VAT", 2300),
    ("PL", "VAT", 2300),
    ("CY", "VAT", 1900),
    ("GR", "FPA", 2400),
    ("CA", "GST", 500),
    ("IS", "VSK", 2400),
    ("MT", "VAT", 1800),
    ("LT", "PVM", 2100),
    ("CZ", "DPH", 2100),
    ("IL", "VAT", 1800),
    ("SG", "GST", 900),
    ("AE", "VAT", 500),
    ("BH", "VAT", 1000),
    ("SA", "VAT", 1500),
    ("ZA", "VAT", 1500),
    ("BR", "ICMS", 1700),
    ("LB", "TVA", 1100),
];

const EU: &[&str] = &[
    "DE", "FR", "ES", "BE", "PT", "IT", "FI", "AT", "NL", "DK", "SE", "IE", "PL", "CY", "GR", "MT",
    "LT", "CZ",
];

/// Tax rates, shipping methods and FX rates for the demo customers' countries.
async fn checkout_setup(shop: &Shop) -> Result<(), ShopError> {
    use emporium_domain::identity::CountryCode;
    use emporium_domain::money::Currency;
    use emporium_domain::pricing::FxRate;

    use crate::pricing::{NewShippingMethod, set_fx_rate, set_shipping_method, set_tax_rate};
    for (country, name, bp) in DEMO_TAX_RATES {
        set_tax_rate(
            shop,
            CountryCode::parse(country)?,
            None,
            (*name).to_owned(),
            *bp,
        )
        .await?;
    }
    let methods = [
        (
            "uk-standard",
            "UK standard (2-3 days)",
            vec!["GB".to_owned()],
            395,
            Some(5000),
        ),
        (
            "uk-express",
            "UK express (next day)",
            vec!["GB".to_owned()],
            795,
            None,
        ),
        (
            "eu-standard",
            "Europe standard",
            EU.iter().map(|c| (*c).to_owned()).collect(),
            995,
            Some(15_000),
        ),
        (
            "international",
            "International",
            vec!["*".to_owned()],
            1995,
            None,
        ),
    ];
    for (code, name, countries, rate_minor, free_over_minor) in methods {
        let method = NewShippingMethod {
            code: code.to_owned(),
            name: name.to_owned(),
            countries,
            rate_minor,
            currency: Currency::GBP,
            free_over_minor,
        };
        set_shipping_method(shop, method).await?;
    }
    for (currency, rate) in [
        ("EUR", "1.15"),
        ("USD", "1.27"),
        ("JPY", "190"),
        ("CHF", "1.12"),
        ("SEK", "13.4"),
    ] {
        set_fx_rate(shop, Currency::parse(currency)?, FxRate::parse(rate)?).await?;
    }
    Ok(())
}
