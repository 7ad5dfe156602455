//! The benchmark catalog: real Home Depot titles (read at run time) plus generated
//! variation up to the wanted size, with brands, categories, attributes, prices, stock and
//! ratings derived deterministically from each product's number. Written straight into the
//! database through the store (no events): the index is then built by `emporium reindex`.

use std::collections::{BTreeMap, HashMap};

use emporium_store::catalog::{self as store, CategoryRow, Json, PriceRow, ProductRow, VariantRow};
use emporium_store::{Db, identity, inventory, search};
use uuid::Uuid;

const VARIATIONS: &[&str] = &[
    "(2-Pack)",
    "in White",
    "in Black",
    "Contractor Pack",
    "- Value Bundle",
    "(Case of 6)",
    "with Hardware Kit",
    "in Satin Nickel",
    "Pro Series",
    "Outdoor Edition",
];
const COLOURS: &[&str] = &[
    "white", "black", "grey", "brown", "silver", "red", "blue", "green",
];
const MATERIALS: &[&str] = &["steel", "wood", "plastic", "aluminum", "brass", "vinyl"];
const ROOTS: &[&str] = &[
    "building",
    "electrical",
    "plumbing",
    "tools",
    "outdoors",
    "decor",
];
const LEAVES: &[&str] = &["basics", "pro", "repair", "install", "storage"];
/// Products written per transaction.
const CHUNK: usize = 2_000;

/// A well-mixed number from a product number (splitmix64).
pub fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub struct BenchCatalog {
    /// Most common brands, most common first (the load filters by them).
    pub brands: Vec<String>,
    /// Leaf category slugs.
    pub categories: Vec<String>,
}

/// Writes `n` products made from `titles` into the database.
pub async fn write(db: &Db, titles: &[String], n: usize) -> anyhow::Result<BenchCatalog> {
    anyhow::ensure!(!titles.is_empty(), "no titles to build the catalog from");
    let now = chrono::Utc::now();
    let seller = Uuid::now_v7();
    let mut tx = db.begin().await?;
    identity::insert_user(
        &mut tx,
        &identity::UserRow {
            id: seller,
            email: "bench-seller@example.com".into(),
            password_hash: None,
            name: "Bench Seller".into(),
            role: "seller".into(),
            status: "active".into(),
            created_at: now,
            updated_at: now,
        },
    )
    .await?;
    let mut leaves = Vec::new();
    for root in ROOTS {
        let root_id = Uuid::now_v7();
        store::insert_category(
            &mut tx,
            &category(root_id, None, root, root.to_string(), now),
        )
        .await?;
        for leaf in LEAVES {
            let slug = format!("{root}-{leaf}");
            let id = Uuid::now_v7();
            store::insert_category(
                &mut tx,
                &category(id, Some(root_id), &slug, format!("{root}/{slug}"), now),
            )
            .await?;
            leaves.push((id, slug));
        }
    }
    let location = inventory::ensure_location(&mut tx, "main", "Main", now).await?;
    tx.commit().await?;
    let mut brand_counts: HashMap<String, usize> = HashMap::new();
    for start in (0..n).step_by(CHUNK) {
        let mut tx = db.begin().await?;
        for i in start..(start + CHUNK).min(n) {
            let brand = insert_one(&mut tx, i, titles, &leaves, (seller, location), now).await?;
            *brand_counts.entry(brand).or_default() += 1;
        }
        tx.commit().await?;
    }
    let mut brands: Vec<(String, usize)> = brand_counts.into_iter().collect();
    brands.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(BenchCatalog {
        brands: brands.into_iter().take(50).map(|(b, _)| b).collect(),
        categories: leaves.into_iter().map(|(_, slug)| slug).collect(),
    })
}

/// Writes product number `i`; returns its brand.
async fn insert_one(
    tx: &mut emporium_store::Tx,
    i: usize,
    titles: &[String],
    leaves: &[(Uuid, String)],
    (seller, location): (Uuid, Uuid),
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<String> {
    let h = mix(i as u64);
    let base = &titles[i % titles.len()];
    let title = if i < titles.len() {
        base.clone()
    } else {
        format!(
            "{base} {}",
            VARIATIONS[(i / titles.len() + i) % VARIATIONS.len()]
        )
    };
    let brand = base
        .split_whitespace()
        .next()
        .unwrap_or("Generic")
        .to_owned();
    let (category_id, _) = &leaves[(h % leaves.len() as u64) as usize];
    let attributes = BTreeMap::from([
        (
            "colour".to_owned(),
            COLOURS[(h >> 8) as usize % COLOURS.len()].to_owned(),
        ),
        (
            "material".to_owned(),
            MATERIALS[(h >> 16) as usize % MATERIALS.len()].to_owned(),
        ),
    ]);
    let product = ProductRow {
        id: Uuid::now_v7(),
        seller_id: seller,
        category_id: Some(*category_id),
        slug: format!("p{i}"),
        title,
        description: String::new(),
        brand: Some(brand.clone()),
        attributes: Json(attributes),
        images: Json(Vec::new()),
        status: "active".into(),
        created_at: now - chrono::Duration::seconds((h % 10_000_000) as i64),
        updated_at: now,
    };
    store::insert_product(tx, &product).await?;
    let variant = Uuid::now_v7();
    let row = VariantRow {
        id: variant,
        product_id: product.id,
        sku: format!("HD-{i:06}"),
        options: Json(BTreeMap::new()),
        position: 0,
        created_at: now,
    };
    store::insert_variant(tx, &row).await?;
    let gbp = 100 + ((h >> 24) % 50_000) as i64;
    let prices = [
        price(variant, "GBP", gbp),
        price(variant, "USD", gbp * 127 / 100),
    ];
    store::replace_prices(tx, variant, &prices).await?;
    // Four products in five are in stock; half have reviews.
    if !(h >> 40).is_multiple_of(5) {
        let movement = inventory::Movement {
            variant_id: variant,
            location_id: location,
            delta: 1 + ((h >> 44) % 50) as i64,
            kind: "receive",
            reason: None,
            actor_id: None,
            at: now,
        };
        inventory::apply_movement(tx, &movement).await?;
    }
    if (h >> 50).is_multiple_of(2) {
        let rating = 1.0 + ((h >> 52) % 41) as f64 / 10.0;
        search::set_rating(tx, product.id, rating, ((h >> 56) % 200) as i64, now).await?;
    }
    Ok(brand)
}

fn category(
    id: Uuid,
    parent: Option<Uuid>,
    slug: &str,
    path: String,
    now: chrono::DateTime<chrono::Utc>,
) -> CategoryRow {
    CategoryRow {
        id,
        parent_id: parent,
        slug: slug.to_owned(),
        name: slug.replace('-', " "),
        path,
        position: 0,
        created_at: now,
    }
}

fn price(variant: Uuid, currency: &str, amount_minor: i64) -> PriceRow {
    PriceRow {
        variant_id: variant,
        currency: currency.to_owned(),
        amount_minor,
        compare_at_minor: None,
    }
}
