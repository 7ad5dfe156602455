//! Accounts, sessions, roles and addresses.
//!
//! Passwords are hashed with Argon2id on the blocking pool. A session token is
//! `emp_<user id>_<32 random bytes, base64url>`: only its SHA-256 is stored, and the user id
//! inside it lets the lookup stay on the user's shard.

use std::net::IpAddr;
use std::time::Instant;

use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use chrono::{DateTime, Utc};
use emporium_domain::Invalid;
use emporium_domain::identity::{Email, Password, PersonName, PostalAddress, Role, UserStatus};
use emporium_domain::ids::{AddressId, SessionId, UserId};
use emporium_store::identity as store;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::throttle::Verdict;
use crate::{Shop, ShopError, events};

/// Argon2id cost. The default follows OWASP's minimum (19 MiB, 2 passes); tests may lower it.
#[derive(Debug, Clone, Copy)]
pub struct HashingCost {
    pub memory_kib: u32,
    pub passes: u32,
}

impl Default for HashingCost {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            passes: 2,
        }
    }
}

/// Who is calling: the authenticated user of a live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub role: Role,
    pub status: UserStatus,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// An approved seller, or an admin.
    pub fn can_sell(&self) -> bool {
        self.is_admin() || (self.role == Role::Seller && self.status == UserStatus::Active)
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub status: UserStatus,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<store::UserRow> for UserView {
    type Error = ShopError;
    fn try_from(row: store::UserRow) -> Result<Self, ShopError> {
        Ok(Self {
            id: UserId(row.id),
            email: row.email,
            name: row.name,
            role: Role::parse(&row.role).map_err(ShopError::internal)?,
            status: UserStatus::parse(&row.status).map_err(ShopError::internal)?,
            created_at: row.created_at,
        })
    }
}

/// What a new account asks for. A seller account waits for an admin's approval.
#[derive(Debug, Clone)]
pub struct Registration {
    pub email: Email,
    pub password: Password,
    pub name: PersonName,
    pub role: Role,
}

pub async fn register(shop: &Shop, reg: Registration) -> Result<UserView, ShopError> {
    let status = match reg.role {
        Role::Customer => UserStatus::Active,
        Role::Seller => UserStatus::Pending,
        Role::Admin => {
            return Err(ShopError::Forbidden(
                "role_not_allowed",
                "admin accounts cannot be registered",
            ));
        }
    };
    create_user(shop, &reg, status).await
}

/// Creates an account with the given status (also used by the demo loader and tests).
pub async fn create_user(
    shop: &Shop,
    reg: &Registration,
    status: UserStatus,
) -> Result<UserView, ShopError> {
    let hash = hash_password(reg.password.clone(), shop.config.password_hashing).await?;
    let now = shop.now();
    let row = store::UserRow {
        id: UserId::new().0,
        email: reg.email.as_str().to_owned(),
        password_hash: Some(hash),
        name: reg.name.as_str().to_owned(),
        role: reg.role.as_str().to_owned(),
        status: status.as_str().to_owned(),
        created_at: now,
        updated_at: now,
    };
    let mut tx = shop.db.begin().await?;
    store::insert_user(&mut tx, &row).await?;
    events::emit(
        &mut tx,
        row.id,
        events::USER_REGISTERED,
        serde_json::json!({ "user_id": row.id, "role": row.role }),
        now,
    )
    .await?;
    tx.commit().await?;
    UserView::try_from(row)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoginResult {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserView,
}

const BAD_LOGIN: ShopError =
    ShopError::Unauthenticated("invalid_credentials", "email or password is wrong");

/// Checks the password and opens a session. Failures are counted per account and per client
/// address; repeated failures are slowed and then refused.
pub async fn login(
    shop: &Shop,
    email: &str,
    password: &str,
    addr: Option<IpAddr>,
) -> Result<LoginResult, ShopError> {
    // An unparseable email can match no account; still count it against the address.
    let key = Email::parse(email)
        .map(|e| e.as_str().to_owned())
        .unwrap_or_else(|_| email.trim().to_lowercase());
    match shop.throttle.check(&key, addr, Instant::now()) {
        Verdict::Allow => {}
        Verdict::Delay(d) => tokio::time::sleep(d).await,
        Verdict::Refuse(d) => {
            return Err(ShopError::RateLimited {
                retry_after_secs: d.as_secs().max(1),
            });
        }
    }
    let user = store::find_user_by_email(&shop.db, &key).await?;
    // Without an account, verify against a fixed hash anyway so timing does not tell
    // which emails are registered.
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.to_owned());
    let ok = verify_password(password.to_owned(), hash).await?;
    let user = match user {
        Some(u) if ok => u,
        _ => {
            shop.throttle.record_failure(&key, addr, Instant::now());
            return Err(BAD_LOGIN);
        }
    };
    if user.status == UserStatus::Disabled.as_str() {
        return Err(ShopError::Forbidden(
            "account_disabled",
            "this account is disabled",
        ));
    }
    shop.throttle.record_success(&key);
    let now = shop.now();
    let (token, hash) = new_token(user.id);
    let session = store::SessionRow {
        user_id: user.id,
        id: SessionId::new().0,
        token_hash: hash,
        created_at: now,
        expires_at: now + shop.config.session_ttl,
        revoked_at: None,
    };
    let mut tx = shop.db.begin().await?;
    store::insert_session(&mut tx, &session).await?;
    tx.commit().await?;
    Ok(LoginResult {
        token,
        expires_at: session.expires_at,
        user: user.try_into()?,
    })
}

/// Recently verified sessions of this node, so that a hot path (a flash sale) does not read
/// the session table on every request. An entry lives at most [`SessionCache::TTL`]: a
/// session revoked on another node stops working here within that time; on this node,
/// logout and disabling an account drop the entries at once. Keyed by the token itself, so a
/// hit costs no SHA-256 (the hash is what the database stores; this map never leaves the
/// process, and its hasher is randomly seeded).
#[derive(Default)]
pub struct SessionCache(parking_lot::Mutex<std::collections::HashMap<Box<str>, CachedSession>>);

/// The actor, when its session expires, and when it was cached.
type CachedSession = (Actor, DateTime<Utc>, Instant);

impl SessionCache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(5);

    fn get(&self, token: &str, now: DateTime<Utc>) -> Option<Actor> {
        let map = self.0.lock();
        let (actor, expires_at, cached_at) = map.get(token)?;
        (cached_at.elapsed() < Self::TTL && *expires_at > now).then_some(*actor)
    }

    fn put(&self, token: &str, actor: Actor, expires_at: DateTime<Utc>) {
        let mut map = self.0.lock();
        if map.len() >= 100_000 {
            map.clear();
        }
        map.insert(token.into(), (actor, expires_at, Instant::now()));
    }

    fn forget(&self, keep: impl Fn(&Actor) -> bool) {
        self.0.lock().retain(|_, (actor, _, _)| keep(actor));
    }
}

const NO_SESSION: ShopError =
    ShopError::Unauthenticated("invalid_token", "the token is unknown, expired or revoked");

/// The actor behind a bearer token: the session must exist, be live, and belong to an
/// account that is not disabled.
pub async fn authenticate(shop: &Shop, token: &str) -> Result<Actor, ShopError> {
    let user_id = parse_token(token).ok_or(NO_SESSION)?;
    if let Some(actor) = shop.sessions.get(token, shop.now()) {
        return Ok(actor);
    }
    let hash = Sha256::digest(token.as_bytes()).to_vec();
    let session = shop
        .session_loader
        .load(user_id, hash)
        .await?
        .ok_or(NO_SESSION)?;
    if session.revoked_at.is_some() || session.expires_at <= shop.now() {
        return Err(NO_SESSION);
    }
    let status = UserStatus::parse(&session.status).map_err(ShopError::internal)?;
    if status == UserStatus::Disabled {
        return Err(ShopError::Unauthenticated(
            "account_disabled",
            "this account is disabled",
        ));
    }
    let actor = Actor {
        user_id: UserId(session.user_id),
        session_id: SessionId(session.session_id),
        role: Role::parse(&session.role).map_err(ShopError::internal)?,
        status,
    };
    shop.sessions.put(token, actor, session.expires_at);
    Ok(actor)
}

/// The actor behind a bearer token when this node's session cache vouches for it, without
/// touching the database; `None` when only [`authenticate`] can tell.
pub fn cached_actor(shop: &Shop, token: &str) -> Option<Actor> {
    parse_token(token)?;
    shop.sessions.get(token, shop.now())
}

pub async fn logout(shop: &Shop, actor: &Actor) -> Result<(), ShopError> {
    let mut tx = shop.db.begin().await?;
    store::revoke_session(&mut tx, actor.user_id.0, actor.session_id.0, shop.now()).await?;
    tx.commit().await?;
    shop.sessions.forget(|a| a.session_id != actor.session_id);
    Ok(())
}

pub async fn me(shop: &Shop, actor: &Actor) -> Result<UserView, ShopError> {
    store::find_user(&shop.db, actor.user_id.0)
        .await?
        .ok_or(ShopError::NotFound("user"))?
        .try_into()
}

/// Users for the admin, newest first.
pub async fn list_users(
    shop: &Shop,
    role: Option<Role>,
    before: Option<UserId>,
    limit: u32,
) -> Result<Vec<UserView>, ShopError> {
    store::list_users(&shop.db, role.map(Role::as_str), before.map(|u| u.0), limit)
        .await?
        .into_iter()
        .map(UserView::try_from)
        .collect()
}

/// What an admin does to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessChange {
    /// A pending seller becomes an active seller.
    ApproveSeller,
    /// The account can no longer log in; its sessions are revoked.
    Disable,
    Enable,
}

pub async fn change_access(
    shop: &Shop,
    admin: &Actor,
    user: UserId,
    change: AccessChange,
) -> Result<UserView, ShopError> {
    if !admin.is_admin() {
        return Err(ShopError::Forbidden(
            "forbidden",
            "only an admin may change accounts",
        ));
    }
    if user == admin.user_id && change == AccessChange::Disable {
        return Err(ShopError::conflict(
            "cannot_disable_self",
            "an admin cannot disable their own account",
        ));
    }
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    let mut row = store::find_user_for_update(&mut tx, user.0)
        .await?
        .ok_or(ShopError::NotFound("user"))?;
    let role = Role::parse(&row.role).map_err(ShopError::internal)?;
    let status = match change {
        AccessChange::ApproveSeller if role != Role::Seller => {
            return Err(ShopError::conflict(
                "not_a_seller",
                "only seller accounts can be approved",
            ));
        }
        AccessChange::ApproveSeller | AccessChange::Enable => UserStatus::Active,
        AccessChange::Disable => UserStatus::Disabled,
    };
    store::update_user_access(&mut tx, user.0, role.as_str(), status.as_str(), now).await?;
    if status == UserStatus::Disabled {
        store::revoke_all_sessions(&mut tx, user.0, now).await?;
    }
    events::emit(
        &mut tx,
        user.0,
        events::USER_ACCESS_CHANGED,
        serde_json::json!({ "user_id": user.0, "status": status.as_str(), "by": admin.user_id.0 }),
        now,
    )
    .await?;
    tx.commit().await?;
    shop.sessions.forget(|a| a.user_id != user);
    row.status = status.as_str().to_owned();
    row.updated_at = now;
    row.try_into()
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AddressView {
    pub id: AddressId,
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    pub country: String,
    pub phone: Option<String>,
    pub is_default: bool,
}

impl From<store::AddressRow> for AddressView {
    fn from(a: store::AddressRow) -> Self {
        Self {
            id: AddressId(a.id),
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country,
            phone: a.phone,
            is_default: a.is_default,
        }
    }
}

pub async fn list_addresses(shop: &Shop, actor: &Actor) -> Result<Vec<AddressView>, ShopError> {
    Ok(store::list_addresses(&shop.db, actor.user_id.0)
        .await?
        .into_iter()
        .map(AddressView::from)
        .collect())
}

/// At most this many addresses per account.
pub const MAX_ADDRESSES: i64 = 50;

/// Creates (`id` None) or replaces an address. The first address, or one saved with
/// `make_default`, becomes the one default.
pub async fn save_address(
    shop: &Shop,
    actor: &Actor,
    id: Option<AddressId>,
    address: PostalAddress,
    make_default: bool,
) -> Result<AddressView, ShopError> {
    let user = actor.user_id.0;
    let mut tx = shop.db.begin().await?;
    let existing = match id {
        Some(id) => Some(
            store::find_address(&mut tx, user, id.0)
                .await?
                .ok_or(ShopError::NotFound("address"))?,
        ),
        None => {
            if store::count_addresses(&mut tx, user).await? >= MAX_ADDRESSES {
                return Err(ShopError::conflict(
                    "too_many_addresses",
                    format!("at most {MAX_ADDRESSES} addresses"),
                ));
            }
            None
        }
    };
    let is_default = make_default
        || existing.as_ref().is_some_and(|a| a.is_default)
        || (existing.is_none() && store::count_addresses(&mut tx, user).await? == 0);
    if is_default {
        store::clear_default_address(&mut tx, user).await?;
    }
    let row = store::AddressRow {
        user_id: user,
        id: existing
            .as_ref()
            .map_or_else(|| AddressId::new().0, |a| a.id),
        name: address.name,
        line1: address.line1,
        line2: address.line2,
        city: address.city,
        region: address.region,
        postal_code: address.postal_code,
        country: address.country.as_str().to_owned(),
        phone: address.phone,
        is_default,
        created_at: existing.map_or_else(|| shop.now(), |a| a.created_at),
    };
    store::upsert_address(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(row.into())
}

pub async fn delete_address(shop: &Shop, actor: &Actor, id: AddressId) -> Result<(), ShopError> {
    let mut tx = shop.db.begin().await?;
    if !store::delete_address(&mut tx, actor.user_id.0, id.0).await? {
        return Err(ShopError::NotFound("address"));
    }
    store::ensure_default_address(&mut tx, actor.user_id.0).await?;
    tx.commit().await?;
    Ok(())
}

/// A hash of a random password nobody knows, verified when the account does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$JpYrP3m7hJ0U2w8vI9u6kq8mB0m2QbYk0cIh8cF0y8E";

async fn hash_password(password: Password, cost: HashingCost) -> Result<String, ShopError> {
    tokio::task::spawn_blocking(move || {
        let params =
            Params::new(cost.memory_kib, cost.passes, 1, None).map_err(ShopError::internal)?;
        let salt = SaltString::generate(&mut OsRng);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(ShopError::internal)
    })
    .await?
}

async fn verify_password(password: String, hash: String) -> Result<bool, ShopError> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(ShopError::internal)?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await?
}

/// A new session token for `user` and the SHA-256 that is stored for it.
pub fn new_token(user: Uuid) -> (String, Vec<u8>) {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = format!(
        "emp_{}_{}",
        user.simple(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let hash = Sha256::digest(token.as_bytes()).to_vec();
    (token, hash)
}

fn parse_token(token: &str) -> Option<Uuid> {
    let rest = token.strip_prefix("emp_")?;
    let (user, secret) = rest.split_once('_')?;
    if user.len() != 32 || secret.len() != 43 {
        return None;
    }
    Uuid::try_parse(user).ok()
}

/// Parses the optional role of a registration: customers by default, sellers on request.
pub fn registration_role(raw: Option<&str>) -> Result<Role, Invalid> {
    match raw {
        None | Some("customer") => Ok(Role::Customer),
        Some("seller") => Ok(Role::Seller),
        Some(other) => Err(Invalid::new(
            "account_type",
            format!("must be customer or seller, not {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_their_user_and_reject_forgeries() {
        let user = Uuid::now_v7();
        let (token, hash) = new_token(user);
        assert_eq!(parse_token(&token), Some(user));
        assert_eq!(hash.len(), 32);
        assert_eq!(parse_token("emp_nothex_x"), None);
        assert_eq!(parse_token(&token.replace("emp_", "emq_")), None);
        assert_eq!(parse_token(&format!("{token}x")), None);
    }

    #[test]
    fn the_dummy_hash_is_a_valid_argon2_hash() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
