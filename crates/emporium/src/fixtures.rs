//! Data made directly in the database for benchmarks and process-level tests: accounts
//! with ready sessions (no password hashing) and a stocked SKU.

use anyhow::Context;
use chrono::{DateTime, Utc};
use emporium_domain::catalog::{ProductStatus, Sku, Slug};
use emporium_domain::identity::{Role, UserStatus};
use emporium_domain::ids::{SessionId, UserId};
use emporium_domain::money::Currency;
use emporium_shop::Shop;
use emporium_shop::catalog::{NewPrice, NewProduct, NewVariant};
use emporium_shop::identity::Actor;
use emporium_store::{Db, identity as users, inventory};
use uuid::Uuid;

/// Inserts `n` active accounts of `role` with a live session each; returns (id, token) pairs.
pub async fn accounts(
    db: &Db,
    n: usize,
    role: Role,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(Uuid, String)>> {
    let mut out = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let chunk = left.min(5_000);
        left -= chunk;
        let mut tx = db.begin().await?;
        for _ in 0..chunk {
            let id = Uuid::now_v7();
            let row = users::UserRow {
                id,
                email: format!("{}@bench.example.com", id.simple()),
                password_hash: None,
                name: "Shopper".into(),
                role: role.as_str().into(),
                status: "active".into(),
                created_at: now,
                updated_at: now,
            };
            users::insert_user(&mut tx, &row).await?;
            let (token, hash) = emporium_shop::identity::new_token(id);
            let session = users::SessionRow {
                user_id: id,
                id: Uuid::now_v7(),
                token_hash: hash,
                created_at: now,
                expires_at: now + chrono::Duration::days(1),
                revoked_at: None,
            };
            users::insert_session(&mut tx, &session).await?;
            out.push((id, token));
        }
        tx.commit().await?;
    }
    Ok(out)
}

/// An admin actor for operations run directly against the shop.
pub fn admin_actor(id: Uuid) -> Actor {
    Actor {
        user_id: UserId(id),
        session_id: SessionId::new(),
        role: Role::Admin,
        status: UserStatus::Active,
    }
}

/// An active product with one SKU priced in GBP and `units` received into "main"; returns
/// the variant id.
pub async fn stocked_sku(
    shop: &Shop,
    admin: &Actor,
    sku: &str,
    units: i64,
) -> anyhow::Result<Uuid> {
    let new = NewProduct {
        title: format!("Product {sku}"),
        slug: Slug::from_title(sku)?,
        description: String::new(),
        brand: None,
        category: None,
        attributes: Default::default(),
        images: Vec::new(),
        status: ProductStatus::Active,
        variants: vec![NewVariant {
            sku: Sku::parse(sku)?,
            options: Default::default(),
            prices: vec![NewPrice {
                currency: Currency::GBP,
                amount_minor: 49_900,
                compare_at_minor: None,
            }],
        }],
        seller: None,
    };
    let product = emporium_shop::catalog::create_product(shop, admin, new).await?;
    let variant = product.variants.first().context("no variant")?.id.0;
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let location = inventory::ensure_location(&mut tx, "main", "Main warehouse", now).await?;
    let movement = inventory::Movement {
        variant_id: variant,
        location_id: location,
        delta: units,
        kind: "receive",
        reason: Some("fixture"),
        actor_id: Some(admin.user_id.0),
        at: now,
    };
    inventory::apply_movement(&mut tx, &movement).await?;
    tx.commit().await?;
    Ok(variant)
}
