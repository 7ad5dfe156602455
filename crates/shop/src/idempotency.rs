//! Idempotent requests: a client names a mutating request with an `Idempotency-Key`, and a
//! retry with the same key gets the first answer instead of a second effect.
//!
//! The record lives in the database, not in memory, so it holds across nodes sharing one
//! PostgreSQL and across restarts. A request first [`claim`]s its key (a short write of its
//! own, outside the operation's transaction); the operation runs; then the response is
//! stored with [`complete`], or the claim is dropped with [`abandon`] so a retry can run.
//! A claim whose holder died (a crash, `kill -9`) is taken over once its lock passes
//! [`IdempotencyConfig::in_flight_lease`].
//!
//! The fingerprint of a request is the SHA-256 of its method, path and body. When the body
//! carries a password, a fast hash of it kept for a day would be a cracking oracle, so such
//! bodies get a salted Argon2id hash instead (at the password hashing cost).

use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use emporium_domain::idempotency::IdempotencyKey;
use emporium_domain::ids::UserId;
use emporium_store::idempotency::{self as store, KeyRow, NewClaim};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::identity::HashingCost;
use crate::{Shop, ShopError};

pub use emporium_store::idempotency::StoredResponse;

/// How long keys are kept and how long an in-flight claim is trusted.
#[derive(Debug, Clone)]
pub struct IdempotencyConfig {
    /// A key can be replayed (and not reused for another request) this long.
    pub retention: chrono::Duration,
    /// An in-flight claim older than this is presumed dead and may be taken over by a
    /// retry. It must exceed the longest a request may run (the HTTP request timeout).
    pub in_flight_lease: chrono::Duration,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            retention: chrono::Duration::hours(24),
            in_flight_lease: chrono::Duration::minutes(5),
        }
    }
}

/// Whose keys these are: keys of different users never meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    User(UserId),
    /// Requests without a valid session share one namespace (the nil user id), so keys
    /// must be random; a collision with another body answers 422, never someone's data.
    Anonymous,
}

impl Scope {
    fn user_id(self) -> Uuid {
        match self {
            Scope::User(id) => id.0,
            Scope::Anonymous => Uuid::nil(),
        }
    }
}

/// The request a key names.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Path and query.
    pub path: &'a str,
    pub body: &'a [u8],
}

impl Request<'_> {
    fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for part in [self.method.as_bytes(), self.path.as_bytes(), self.body] {
            // Length-prefixed, so no two different requests hash the same bytes.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hasher.finalize().into()
    }

    fn carries_secret(&self) -> bool {
        let has = |needle: &[u8]| self.body.windows(needle.len()).any(|w| w == needle);
        has(b"password\"") || has(b"secret\"")
    }
}

/// One request's claim on a key, made before the claim is written, so whoever holds the
/// ticket can [`abandon`] the claim even if writing it was interrupted half-way.
#[derive(Debug, Clone)]
pub struct Ticket {
    scope: Scope,
    key: IdempotencyKey,
    claim_id: Uuid,
}

impl Ticket {
    pub fn new(scope: Scope, key: IdempotencyKey) -> Self {
        Self {
            scope,
            key,
            claim_id: Uuid::now_v7(),
        }
    }
}

/// What a claim found.
#[derive(Debug)]
pub enum Claim {
    /// This request holds the key: run it.
    Acquired,
    /// The key finished before with the same request: answer this.
    Replay(StoredResponse),
    /// The same request holds the key right now.
    InFlight,
    /// The key was used for a different request.
    Mismatch,
}

/// Claims the ticket's key for `request`, or says why not.
pub async fn claim(shop: &Shop, ticket: &Ticket, request: Request<'_>) -> Result<Claim, ShopError> {
    let fingerprint = fingerprint(&request, shop.config.password_hashing).await?;
    let key = ticket.key.as_str();
    // A few rounds at most: each lost race means another request changed the row meanwhile.
    for _ in 0..3 {
        let now = shop.now();
        let config = &shop.config.idempotency;
        let claim = NewClaim {
            user_id: ticket.scope.user_id(),
            key,
            fingerprint: &fingerprint,
            claim_id: ticket.claim_id,
            locked_until: now + config.in_flight_lease,
            created_at: now,
            expires_at: now + config.retention,
        };
        let mut tx = shop.db.begin().await?;
        if store::insert_claim(&mut tx, &claim).await? {
            tx.commit().await?;
            return Ok(Claim::Acquired);
        }
        let existing = store::find(&mut tx, claim.user_id, key).await?;
        tx.commit().await?;
        let Some(row) = existing else { continue };
        // Expired but not purged yet: the key is free again, whatever it named before.
        if row.expires_at <= now {
            if take_over(shop, row.claim_id, &claim).await? {
                return Ok(Claim::Acquired);
            }
            continue;
        }
        // Compared outside the transaction: the Argon2 case is slow and SQLite has one writer.
        if !matches(&row.fingerprint, &request).await? {
            return Ok(Claim::Mismatch);
        }
        if row.status == "done" {
            return stored(row).map(Claim::Replay);
        }
        if row.locked_until > now {
            return Ok(Claim::InFlight);
        }
        tracing::warn!(key, "taking over an abandoned in-flight claim");
        if take_over(shop, row.claim_id, &claim).await? {
            return Ok(Claim::Acquired);
        }
    }
    Ok(Claim::InFlight)
}

async fn take_over(shop: &Shop, previous: Uuid, claim: &NewClaim<'_>) -> Result<bool, ShopError> {
    let mut tx = shop.db.begin().await?;
    let replaced = store::take_over(&mut tx, previous, claim).await?;
    tx.commit().await?;
    Ok(replaced)
}

fn stored(row: KeyRow) -> Result<StoredResponse, ShopError> {
    match (row.response_status, row.response_headers, row.response_body) {
        (Some(status), Some(headers), Some(body)) => Ok(StoredResponse {
            status,
            headers: headers.0,
            body,
        }),
        _ => Err(ShopError::internal(anyhow::anyhow!(
            "a finished idempotency record has no response"
        ))),
    }
}

/// Stores the answer of the ticket's request, for replays.
pub async fn complete(
    shop: &Shop,
    ticket: &Ticket,
    response: &StoredResponse,
) -> Result<(), ShopError> {
    let mut tx = shop.db.begin().await?;
    let stored = store::complete(
        &mut tx,
        ticket.scope.user_id(),
        ticket.key.as_str(),
        ticket.claim_id,
        response,
    )
    .await?;
    tx.commit().await?;
    if !stored {
        tracing::warn!(
            key = ticket.key.as_str(),
            "the idempotency claim was taken over before the response was stored"
        );
    }
    Ok(())
}

/// Drops the ticket's claim, so a retry runs the request afresh.
pub async fn abandon(shop: &Shop, ticket: &Ticket) -> Result<(), ShopError> {
    let mut tx = shop.db.begin().await?;
    store::abandon(
        &mut tx,
        ticket.scope.user_id(),
        ticket.key.as_str(),
        ticket.claim_id,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes up to `batch` expired keys. Returns how many.
pub async fn purge_expired(shop: &Shop, batch: u32) -> Result<u64, ShopError> {
    let mut tx = shop.db.begin().await?;
    let purged = store::purge_expired(&mut tx, shop.now(), batch).await?;
    tx.commit().await?;
    Ok(purged)
}

const SHA256: &str = "sha256:";
const ARGON2: &str = "argon2:";

async fn fingerprint(request: &Request<'_>, cost: HashingCost) -> Result<String, ShopError> {
    let digest = request.digest();
    if !request.carries_secret() {
        return Ok(format!("{SHA256}{}", hex::encode(digest)));
    }
    tokio::task::spawn_blocking(move || {
        let params =
            Params::new(cost.memory_kib, cost.passes, 1, None).map_err(ShopError::internal)?;
        let salt = SaltString::generate(&mut OsRng);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(&digest, &salt)
            .map(|h| format!("{ARGON2}{h}"))
            .map_err(ShopError::internal)
    })
    .await?
}

async fn matches(stored: &str, request: &Request<'_>) -> Result<bool, ShopError> {
    let digest = request.digest();
    if let Some(hex) = stored.strip_prefix(SHA256) {
        return Ok(hex == hex::encode(digest));
    }
    let Some(phc) = stored.strip_prefix(ARGON2).map(str::to_owned) else {
        return Err(ShopError::internal(anyhow::anyhow!(
            "unknown idempotency fingerprint"
        )));
    };
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&phc).map_err(ShopError::internal)?;
        Ok(Argon2::default().verify_password(&digest, &parsed).is_ok())
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &'static [u8]) -> Request<'static> {
        Request {
            method: "POST",
            path: "/api/v1/auth/register",
            body,
        }
    }

    #[test]
    fn method_path_and_body_all_count_in_the_digest() {
        let base = request(b"{}");
        let other_path = Request {
            path: "/api/v1/auth/login",
            ..base
        };
        let other_method = Request {
            method: "PUT",
            ..base
        };
        assert_ne!(base.digest(), other_path.digest());
        assert_ne!(base.digest(), other_method.digest());
        assert_ne!(base.digest(), request(b"{ }").digest());
        assert_eq!(base.digest(), request(b"{}").digest());
    }

    #[tokio::test]
    async fn bodies_with_a_password_get_a_salted_slow_fingerprint() {
        let cost = HashingCost {
            memory_kib: 256,
            passes: 1,
        };
        let secret = request(br#"{"email":"a@b.c","password":"hunter2hunter2"}"#);
        let first = fingerprint(&secret, cost).await.unwrap();
        let second = fingerprint(&secret, cost).await.unwrap();
        assert!(first.starts_with(ARGON2), "{first}");
        assert_ne!(first, second, "salted");
        assert!(matches(&first, &secret).await.unwrap());
        let other = request(br#"{"email":"a@b.c","password":"hunter3hunter3"}"#);
        assert!(!matches(&first, &other).await.unwrap());

        let plain = request(br#"{"title":"Bowl"}"#);
        let fp = fingerprint(&plain, cost).await.unwrap();
        assert!(fp.starts_with(SHA256), "{fp}");
        assert!(matches(&fp, &plain).await.unwrap());
    }
}
