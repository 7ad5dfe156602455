//! Idempotency records: one row per (caller, key), claimed `in_flight` before a request runs
//! and `done` with its stored response afterwards. Every write names the `claim_id` it
//! expects, so a claim taken over after its holder died can no longer be completed or
//! abandoned by that holder.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{StoreError, Tx, on_tx};

/// A new in-flight claim.
#[derive(Debug, Clone)]
pub struct NewClaim<'a> {
    pub user_id: Uuid,
    pub key: &'a str,
    pub fingerprint: &'a str,
    pub claim_id: Uuid,
    pub locked_until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub fingerprint: String,
    /// `in_flight` or `done`.
    pub status: String,
    pub claim_id: Uuid,
    pub locked_until: DateTime<Utc>,
    pub response_status: Option<i32>,
    pub response_headers: Option<Json<Vec<(String, String)>>>,
    pub response_body: Option<Vec<u8>>,
    pub expires_at: DateTime<Utc>,
}

/// Inserts the claim unless the key exists. Returns whether it was inserted.
pub async fn insert_claim(tx: &mut Tx, claim: &NewClaim<'_>) -> Result<bool, StoreError> {
    let inserted = on_tx!(tx, c => sqlx::query(
        "INSERT INTO idempotency_keys \
         (user_id, idem_key, fingerprint, status, claim_id, locked_until, created_at, expires_at) \
         VALUES ($1, $2, $3, 'in_flight', $4, $5, $6, $7) \
         ON CONFLICT (user_id, idem_key) DO NOTHING",
    )
    .bind(claim.user_id)
    .bind(claim.key)
    .bind(claim.fingerprint)
    .bind(claim.claim_id)
    .bind(claim.locked_until)
    .bind(claim.created_at)
    .bind(claim.expires_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}

pub async fn find(tx: &mut Tx, user_id: Uuid, key: &str) -> Result<Option<KeyRow>, StoreError> {
    Ok(on_tx!(tx, c => sqlx::query_as(
        "SELECT fingerprint, status, claim_id, locked_until, response_status, response_headers, \
         response_body, expires_at FROM idempotency_keys WHERE user_id = $1 AND idem_key = $2",
    )
    .bind(user_id)
    .bind(key)
    .fetch_optional(c)
    .await)?)
}

/// Replaces the row held by `previous` with a fresh in-flight claim, but only while it is
/// expired, or in flight past its lock (its holder died). Returns whether it was replaced.
pub async fn take_over(
    tx: &mut Tx,
    previous: Uuid,
    claim: &NewClaim<'_>,
) -> Result<bool, StoreError> {
    let replaced = on_tx!(tx, c => sqlx::query(
        "UPDATE idempotency_keys SET fingerprint = $3, status = 'in_flight', claim_id = $4, \
         locked_until = $5, created_at = $6, expires_at = $7, response_status = NULL, \
         response_headers = NULL, response_body = NULL \
         WHERE user_id = $1 AND idem_key = $2 AND claim_id = $8 \
         AND (expires_at <= $6 OR (status = 'in_flight' AND locked_until <= $6))",
    )
    .bind(claim.user_id)
    .bind(claim.key)
    .bind(claim.fingerprint)
    .bind(claim.claim_id)
    .bind(claim.locked_until)
    .bind(claim.created_at)
    .bind(claim.expires_at)
    .bind(previous)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(replaced == 1)
}

/// The response of a finished request.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub status: i32,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Stores the response of the claim `claim_id`. Returns false when the claim is gone.
pub async fn complete(
    tx: &mut Tx,
    user_id: Uuid,
    key: &str,
    claim_id: Uuid,
    response: &StoredResponse,
) -> Result<bool, StoreError> {
    let done = on_tx!(tx, c => sqlx::query(
        "UPDATE idempotency_keys SET status = 'done', response_status = $4, \
         response_headers = $5, response_body = $6 \
         WHERE user_id = $1 AND idem_key = $2 AND claim_id = $3 AND status = 'in_flight'",
    )
    .bind(user_id)
    .bind(key)
    .bind(claim_id)
    .bind(response.status)
    .bind(Json(&response.headers))
    .bind(&response.body)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Deletes the in-flight claim `claim_id`, so a retry runs the request afresh.
pub async fn abandon(
    tx: &mut Tx,
    user_id: Uuid,
    key: &str,
    claim_id: Uuid,
) -> Result<bool, StoreError> {
    let deleted = on_tx!(tx, c => sqlx::query(
        "DELETE FROM idempotency_keys \
         WHERE user_id = $1 AND idem_key = $2 AND claim_id = $3 AND status = 'in_flight'",
    )
    .bind(user_id)
    .bind(key)
    .bind(claim_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(deleted == 1)
}

/// Deletes up to `limit` rows that expired at `now`. Returns how many.
pub async fn purge_expired(tx: &mut Tx, now: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
    // Row-value IN works on both backends and keeps each purge transaction short.
    Ok(on_tx!(tx, c => sqlx::query(
        "DELETE FROM idempotency_keys WHERE (user_id, idem_key) IN \
         (SELECT user_id, idem_key FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)",
    )
    .bind(now)
    .bind(i64::from(limit))
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}
