//! Carts and their items. A guest cart belongs to the nil user id until it is merged into a
//! customer's cart at login.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::reads::Reads;
use crate::{Db, StoreError, Tx, Writes, on_pool, on_tx, shapes, values};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CartRow {
    pub user_id: Uuid,
    pub id: Uuid,
    pub token_hash: Vec<u8>,
    pub status: String,
    pub currency: String,
    pub fx_rate_e9: i64,
    pub prices_locked_until: DateTime<Utc>,
    pub coupon_codes: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// One more with every change to the cart or its lines (by the statements that write
    /// it; the value here is the one read or inserted).
    pub version: i64,
}

const CART_COLUMNS: &str = "user_id, id, token_hash, status, currency, fx_rate_e9, prices_locked_until, coupon_codes, created_at, updated_at, version";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CartItemRow {
    pub user_id: Uuid,
    pub cart_id: Uuid,
    pub id: Uuid,
    pub variant_id: Uuid,
    pub quantity: i64,
    pub unit_price_minor: i64,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_cart(tx: &mut Tx, c: &CartRow) -> Result<(), StoreError> {
    // Through `Writes`: as a transaction's first statement it takes one round trip.
    let mut w = Writes::new();
    w.push_expect(
        1,
        "cart inserted",
        format!(
            "INSERT INTO carts ({CART_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ),
        values![
            c.user_id,
            c.id,
            &c.token_hash,
            &c.status,
            &c.currency,
            c.fx_rate_e9,
            c.prices_locked_until,
            &c.coupon_codes,
            c.created_at,
            c.updated_at,
            c.version,
        ],
    );
    w.run(tx).await?;
    Ok(())
}

/// A cart by id alone (guests know only the id and the token).
pub async fn find_cart(db: &Db, id: Uuid) -> Result<Option<CartRow>, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CART_COLUMNS} FROM carts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(p)
    .await)?,
    )
}

/// The cart, read inside a write transaction (which on PostgreSQL also locks it).
pub async fn lock_cart(tx: &mut Tx, id: Uuid) -> Result<Option<CartRow>, StoreError> {
    let lock = if tx.backend() == crate::Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    Ok(on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CART_COLUMNS} FROM carts WHERE id = $1{lock}"
    )))
    .bind(id)
    .fetch_optional(c)
    .await)?)
}

/// A cart by id, locked, with its lines: one round trip on SQLite.
pub async fn lock_cart_with_items(
    tx: &mut Tx,
    id: Uuid,
) -> Result<Option<(CartRow, Vec<CartItemRow>)>, StoreError> {
    let lock = if tx.backend() == crate::Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let (reads, cart, items) = cart_with_items(id, lock);
    cart_and_items(&reads.run(tx).await?, cart, items)
}

/// A cart by id with its lines, as of one snapshot, read without a lock (one round trip to
/// a read connection on SQLite). A change computed from it is written with
/// [`queue_update_unchanged_cart`].
pub async fn find_cart_with_items(
    db: &Db,
    id: Uuid,
) -> Result<Option<(CartRow, Vec<CartItemRow>)>, StoreError> {
    let (reads, cart, items) = cart_with_items(id, "");
    cart_and_items(&reads.run_on(db).await?, cart, items)
}

/// The reads of cart `id` (its row read with `lock` appended) and of its lines, with their
/// indexes.
fn cart_with_items(id: Uuid, lock: &str) -> (Reads, usize, usize) {
    let mut reads = Reads::new();
    let cart = reads.push(
        format!("SELECT {CART_COLUMNS} FROM carts WHERE id = $1{lock}"),
        values![id],
    );
    let items = reads.push(
        format!(
            "SELECT {ITEM_COLUMNS} FROM cart_items \
             WHERE user_id = (SELECT user_id FROM carts WHERE id = $1) AND cart_id = $1 ORDER BY id"
        ),
        values![id],
    );
    (reads, cart, items)
}

fn cart_and_items(
    rows: &crate::reads::Rows,
    cart: usize,
    items: usize,
) -> Result<Option<(CartRow, Vec<CartItemRow>)>, StoreError> {
    rows.one::<CartRow>(cart)?
        .map(|cart| rows.decode(items).map(|items| (cart, items)))
        .transpose()
}

/// The customer's newest open cart.
pub async fn open_cart_of(tx: &mut Tx, user: Uuid) -> Result<Option<CartRow>, StoreError> {
    Ok(on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CART_COLUMNS} FROM carts WHERE user_id = $1 AND status = 'open' ORDER BY updated_at DESC LIMIT 1"
    )))
    .bind(user)
    .fetch_optional(c)
    .await)?)
}

pub async fn update_cart(tx: &mut Tx, c: &CartRow) -> Result<(), StoreError> {
    let mut w = Writes::new();
    queue_update_cart(&mut w, c);
    w.run(tx).await?;
    Ok(())
}

/// Queues storing the header of a cart the transaction has locked.
pub fn queue_update_cart(w: &mut Writes, c: &CartRow) {
    queue_cart_header(w, c, None);
}

/// Queues storing the header of an open cart read without a lock, only if it is still open
/// and at the version read: otherwise [`Writes::run`] fails with
/// [`StoreError::Unexpected`] and the caller drops the transaction (and what it queued
/// with this).
pub fn queue_update_unchanged_cart(w: &mut Writes, c: &CartRow) {
    queue_cart_header(w, c, Some(c.version));
}

fn queue_cart_header(w: &mut Writes, c: &CartRow, read_at: Option<i64>) {
    const UPDATE: &str = "UPDATE carts SET status = $3, currency = $4, fx_rate_e9 = $5, \
         prices_locked_until = $6, coupon_codes = $7, updated_at = $8, version = version + 1 \
         WHERE user_id = $1 AND id = $2";
    let mut values = values![
        c.user_id,
        c.id,
        &c.status,
        &c.currency,
        c.fx_rate_e9,
        c.prices_locked_until,
        &c.coupon_codes,
        c.updated_at,
    ];
    match read_at {
        None => w.push_expect(1, "cart", UPDATE, values),
        Some(version) => {
            values.push(crate::writes::Value::from(version));
            w.push_expect(
                1,
                "an open cart unchanged since it was read",
                format!("{UPDATE} AND version = $9 AND status = 'open'"),
                values,
            );
        }
    }
}

/// Queues checking out an open cart at `version` (the one its order was made from); its
/// count is 0 when the cart was not open any more, or changed since.
pub fn queue_close_cart(
    w: &mut Writes,
    user: Uuid,
    id: Uuid,
    version: i64,
    at: DateTime<Utc>,
) -> usize {
    w.push(CLOSE_OPEN_CART, values![user, id, at, version])
}

/// [`queue_close_cart`] for a cart known to be open at `version` (read under a lock the
/// transaction holds): touching no row is then an error of the whole transaction.
pub fn queue_close_locked_cart(
    w: &mut Writes,
    user: Uuid,
    id: Uuid,
    version: i64,
    at: DateTime<Utc>,
) {
    w.push_expect(
        1,
        "an open cart locked by the transaction",
        CLOSE_OPEN_CART,
        values![user, id, at, version],
    );
}

/// Cart `$2` of user `$1` checked out at `$3`, if it is open at version `$4`.
const CLOSE_OPEN_CART: &str = "UPDATE carts SET status = 'checked_out', updated_at = $3, version = version + 1 \
     WHERE user_id = $1 AND id = $2 AND status = 'open' AND version = $4";

pub async fn reopen_cart(
    tx: &mut Tx,
    user: Uuid,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE carts SET status = 'open', updated_at = $3, version = version + 1 WHERE user_id = $1 AND id = $2 AND status = 'checked_out'",
    )
    .bind(user)
    .bind(id)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

const ITEM_COLUMNS: &str =
    "user_id, cart_id, id, variant_id, quantity, unit_price_minor, created_at";

/// The lines of cart `$2` of user `$1`.
fn items_of_cart() -> String {
    format!("SELECT {ITEM_COLUMNS} FROM cart_items WHERE user_id = $1 AND cart_id = $2 ORDER BY id")
}

/// What a checkout starts from, read as of one snapshot.
#[derive(Debug, Clone)]
pub struct CheckoutStart {
    pub cart: CartRow,
    pub items: Vec<CartItemRow>,
    /// The customer's email, for the order.
    pub email: String,
}

/// Customer `user`'s cart `id` with its lines and the customer's email (one round trip on
/// SQLite); `None` when the cart is not the customer's.
pub async fn checkout_start(
    db: &Db,
    user: Uuid,
    id: Uuid,
) -> Result<Option<CheckoutStart>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Email {
        email: String,
    }
    let mut reads = Reads::new();
    let cart = reads.push(
        format!("SELECT {CART_COLUMNS} FROM carts WHERE user_id = $1 AND id = $2"),
        values![user, id],
    );
    let items = reads.push(items_of_cart(), values![user, id]);
    let email = reads.push(crate::identity::USER_EMAIL, values![user]);
    let rows = reads.run_on(db).await?;
    let Some(cart) = rows.one::<CartRow>(cart)? else {
        return Ok(None);
    };
    Ok(Some(CheckoutStart {
        cart,
        items: rows.decode(items)?,
        email: rows
            .one::<Email>(email)?
            .map(|e| e.email)
            .unwrap_or_default(),
    }))
}

pub async fn items(db: &Db, user: Uuid, cart: Uuid) -> Result<Vec<CartItemRow>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        sqlx::AssertSqlSafe(items_of_cart()),
    )
    .bind(user)
    .bind(cart)
    .fetch_all(p)
    .await)?)
}

pub async fn items_in_tx(
    tx: &mut Tx,
    user: Uuid,
    cart: Uuid,
) -> Result<Vec<CartItemRow>, StoreError> {
    Ok(on_tx!(tx, c => sqlx::query_as(
        sqlx::AssertSqlSafe(items_of_cart()),
    )
    .bind(user)
    .bind(cart)
    .fetch_all(c)
    .await)?)
}

/// Queues adding an item, or adding its quantity to the line of the same variant.
pub fn queue_add_item(w: &mut Writes, i: &CartItemRow) {
    w.push(
        "INSERT INTO cart_items (user_id, cart_id, id, variant_id, quantity, unit_price_minor, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (user_id, cart_id, variant_id) DO UPDATE SET quantity = cart_items.quantity + excluded.quantity",
        values![
            i.user_id, i.cart_id, i.id, i.variant_id, i.quantity, i.unit_price_minor, i.created_at,
        ],
    );
}

pub async fn set_item_quantity(
    tx: &mut Tx,
    user: Uuid,
    cart: Uuid,
    item: Uuid,
    quantity: i64,
) -> Result<bool, StoreError> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE cart_items SET quantity = $4 WHERE user_id = $1 AND cart_id = $2 AND id = $3",
    )
    .bind(user)
    .bind(cart)
    .bind(item)
    .bind(quantity)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn set_item_price(
    tx: &mut Tx,
    user: Uuid,
    cart: Uuid,
    item: Uuid,
    unit_price_minor: i64,
) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE cart_items SET unit_price_minor = $4 WHERE user_id = $1 AND cart_id = $2 AND id = $3",
    )
    .bind(user)
    .bind(cart)
    .bind(item)
    .bind(unit_price_minor)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn remove_item(
    tx: &mut Tx,
    user: Uuid,
    cart: Uuid,
    item: Uuid,
) -> Result<bool, StoreError> {
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM cart_items WHERE user_id = $1 AND cart_id = $2 AND id = $3")
        .bind(user)
        .bind(cart)
        .bind(item)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Open carts with items not touched since `before`: (count, value per currency).
pub async fn abandoned(
    db: &Db,
    before: DateTime<Utc>,
) -> Result<Vec<(String, i64, i64)>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT c.currency, COUNT(DISTINCT c.id), CAST(COALESCE(SUM(i.quantity * i.unit_price_minor), 0) AS BIGINT) \
         FROM carts c JOIN cart_items i ON i.user_id = c.user_id AND i.cart_id = c.id \
         WHERE c.status = 'open' AND c.updated_at < $1 GROUP BY c.currency ORDER BY c.currency",
    )
    .bind(before)
    .fetch_all(p)
    .await)?)
}

/// What a cart needs to know about a variant: (variant, product, seller, sku, title,
/// product status) and its prices per currency.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SellableRow {
    pub variant_id: Uuid,
    pub product_id: Uuid,
    pub seller_id: Uuid,
    pub sku: String,
    pub title: String,
    pub status: String,
}

const SELLABLE: &str = "SELECT v.id AS variant_id, p.id AS product_id, p.seller_id, v.sku, \
     p.title, p.status FROM variants v JOIN products p ON p.id = v.product_id WHERE ";

pub async fn sellable(db: &Db, variants: &[Uuid]) -> Result<Vec<SellableRow>, StoreError> {
    if variants.is_empty() {
        return Ok(Vec::new());
    }
    Ok(on_pool!(db, p => {
        let mut qb = sqlx::QueryBuilder::new(SELLABLE);
        qb.push("v.id IN (");
        let mut list = qb.separated(", ");
        for v in shapes::padded(variants) {
            list.push_bind(*v);
        }
        qb.push(")");
        qb.build_query_as().fetch_all(p).await
    })?)
}

/// What a cart needs to know of the variant with this SKU.
pub async fn sellable_by_sku(db: &Db, sku: &str) -> Result<Option<SellableRow>, StoreError> {
    let sql = format!("{SELLABLE}v.sku = $1");
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(sku)
        .fetch_optional(p)
        .await)?,
    )
}

/// (variant, currency, amount) for these variants.
pub async fn prices(db: &Db, variants: &[Uuid]) -> Result<Vec<(Uuid, String, i64)>, StoreError> {
    if variants.is_empty() {
        return Ok(Vec::new());
    }
    Ok(on_pool!(db, p => {
        let mut qb = sqlx::QueryBuilder::new(
            "SELECT variant_id, currency, amount_minor FROM variant_prices WHERE variant_id IN (",
        );
        let mut list = qb.separated(", ");
        for v in shapes::padded(variants) {
            list.push_bind(*v);
        }
        qb.push(")");
        qb.build_query_as().fetch_all(p).await
    })?)
}
