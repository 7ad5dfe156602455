//! Accounts, sessions and addresses.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Db, StoreError, Tx, on_pool, on_tx, shapes};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub password_hash: Option<String>,
    pub name: String,
    pub role: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const USER_COLUMNS: &str = "id, email, password_hash, name, role, status, created_at, updated_at";

/// Inserts a user and claims its email. The email's primary key makes a second account with
/// the same (normalized) email fail with [`crate::Constraint::EmailTaken`].
pub async fn insert_user(tx: &mut Tx, user: &UserRow) -> Result<(), StoreError> {
    on_tx!(tx, c => {
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, name, role, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(user.id)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(&user.name)
        .bind(&user.role)
        .bind(&user.status)
        .bind(user.created_at)
        .bind(user.updated_at)
        .execute(&mut *c)
        .await?;
        sqlx::query("INSERT INTO user_emails (email, user_id) VALUES ($1, $2)")
            .bind(&user.email)
            .bind(user.id)
            .execute(&mut *c)
            .await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

pub async fn find_user(db: &Db, id: Uuid) -> Result<Option<UserRow>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(p).await)?,
    )
}

/// The email of user `$1` alone (an order's snapshot needs nothing else of the account).
pub(crate) const USER_EMAIL: &str = "SELECT email FROM users WHERE id = $1";

pub async fn find_user_by_email(db: &Db, email: &str) -> Result<Option<UserRow>, StoreError> {
    let sql = format!(
        "SELECT {} FROM users u JOIN user_emails e ON e.user_id = u.id WHERE e.email = $1",
        prefixed("u", USER_COLUMNS)
    );
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(email).fetch_optional(p).await)?,
    )
}

/// Users, newest first, optionally of one role; keyset-paginated by id.
pub async fn list_users(
    db: &Db,
    role: Option<&str>,
    before: Option<Uuid>,
    limit: u32,
) -> Result<Vec<UserRow>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users \
         WHERE ($1 IS NULL OR role = $1) AND ($2 IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    );
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(role)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?,
    )
}

/// Sets role and status; returns false when there is no such user.
pub async fn update_user_access(
    tx: &mut Tx,
    id: Uuid,
    role: &str,
    status: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = on_tx!(tx, c => sqlx::query(
        "UPDATE users SET role = $2, status = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(role)
    .bind(status)
    .bind(now)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

pub async fn find_user_for_update(tx: &mut Tx, id: Uuid) -> Result<Option<UserRow>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    Ok(
        on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(c).await)?,
    )
}

pub async fn set_password_hash(
    tx: &mut Tx,
    id: Uuid,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub user_id: Uuid,
    pub id: Uuid,
    pub token_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn insert_session(tx: &mut Tx, s: &SessionRow) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO sessions (user_id, id, token_hash, created_at, expires_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(s.user_id)
    .bind(s.id)
    .bind(&s.token_hash)
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(s.revoked_at)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Revokes one session; returns false when it was unknown or already revoked.
pub async fn revoke_session(
    tx: &mut Tx,
    user_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = on_tx!(tx, c => sqlx::query(
        "UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 AND id = $2 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(id)
    .bind(now)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Revokes every live session of a user (on disable or password change).
pub async fn revoke_all_sessions(
    tx: &mut Tx,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let done = on_tx!(tx, c => sqlx::query(
        "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(now)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(done)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AddressRow {
    pub user_id: Uuid,
    pub id: Uuid,
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    pub country: String,
    pub phone: Option<String>,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
}

const ADDRESS_COLUMNS: &str = "user_id, id, name, line1, line2, city, region, postal_code, country, phone, is_default, created_at";

pub async fn list_addresses(db: &Db, user_id: Uuid) -> Result<Vec<AddressRow>, StoreError> {
    let sql = format!("SELECT {ADDRESS_COLUMNS} FROM addresses WHERE user_id = $1 ORDER BY id");
    Ok(
        on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(user_id).fetch_all(p).await)?,
    )
}

pub async fn find_address(
    tx: &mut Tx,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<AddressRow>, StoreError> {
    let sql = format!("SELECT {ADDRESS_COLUMNS} FROM addresses WHERE user_id = $1 AND id = $2");
    Ok(
        on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(user_id).bind(id).fetch_optional(c).await)?,
    )
}

pub async fn count_addresses(tx: &mut Tx, user_id: Uuid) -> Result<i64, StoreError> {
    Ok(
        on_tx!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM addresses WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(c)
        .await)?,
    )
}

/// Clears the default flag of every address of the user (before setting a new default).
pub async fn clear_default_address(tx: &mut Tx, user_id: Uuid) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query("UPDATE addresses SET is_default = FALSE WHERE user_id = $1 AND is_default")
        .bind(user_id)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Inserts or replaces an address (the primary key decides).
pub async fn upsert_address(tx: &mut Tx, a: &AddressRow) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO addresses (user_id, id, name, line1, line2, city, region, postal_code, country, phone, is_default, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (user_id, id) DO UPDATE SET name = excluded.name, line1 = excluded.line1, \
         line2 = excluded.line2, city = excluded.city, region = excluded.region, \
         postal_code = excluded.postal_code, country = excluded.country, phone = excluded.phone, \
         is_default = excluded.is_default",
    )
    .bind(a.user_id)
    .bind(a.id)
    .bind(&a.name)
    .bind(&a.line1)
    .bind(&a.line2)
    .bind(&a.city)
    .bind(&a.region)
    .bind(&a.postal_code)
    .bind(&a.country)
    .bind(&a.phone)
    .bind(a.is_default)
    .bind(a.created_at)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes an address; returns false when there was none.
pub async fn delete_address(tx: &mut Tx, user_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
    let done = on_tx!(tx, c => sqlx::query("DELETE FROM addresses WHERE user_id = $1 AND id = $2")
        .bind(user_id)
        .bind(id)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Makes the oldest remaining address the default when none is (after a delete).
pub async fn ensure_default_address(tx: &mut Tx, user_id: Uuid) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE addresses SET is_default = TRUE WHERE user_id = $1 AND id = \
         (SELECT id FROM addresses WHERE user_id = $1 ORDER BY id LIMIT 1) \
         AND NOT EXISTS (SELECT 1 FROM addresses WHERE user_id = $1 AND is_default)",
    )
    .bind(user_id)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

fn prefixed(alias: &str, columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What authentication needs of a session and its user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionActorRow {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub token_hash: Vec<u8>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub role: String,
    pub status: String,
}

/// Sessions with their users' role and status for many `(user id, token hash)` pairs at
/// once, whatever their state (the caller checks expiry, revocation and status, and looks
/// each pair up in the result).
pub async fn find_session_actors(
    db: &Db,
    pairs: &[(Uuid, Vec<u8>)],
) -> Result<Vec<SessionActorRow>, StoreError> {
    let mut found = Vec::with_capacity(pairs.len());
    // Longer VALUES lists make SQLite's planner scan every session instead of probing
    // (measured: about 70 ms at 200,000 sessions past roughly 200 pairs, under 1 ms below).
    for chunk in pairs.chunks(SESSION_PROBES_PER_QUERY) {
        let rows: Vec<SessionActorRow> = on_pool!(db, p => {
            // Pairs are joined from a VALUES list: each pair is one index probe (two IN lists
            // would make SQLite probe every user with every hash).
            let mut qb = sqlx::QueryBuilder::new("WITH wanted (user_id, token_hash) AS (");
            qb.push_values(shapes::padded(chunk), |mut b, (user, hash)| {
                b.push_bind(*user).push_bind(hash.clone());
            });
            qb.push(
                ") SELECT s.user_id, s.id AS session_id, s.token_hash, s.expires_at, s.revoked_at, u.role, u.status \
                 FROM wanted w JOIN sessions s ON s.user_id = w.user_id AND s.token_hash = w.token_hash \
                 JOIN users u ON u.id = s.user_id",
            );
            qb.build_query_as().fetch_all(p).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}

/// Most (user, token) pairs looked up by one query (a power of two: see [`shapes`]).
const SESSION_PROBES_PER_QUERY: usize = 128;
