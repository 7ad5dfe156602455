//! The transactional outbox: every side effect of an operation is a row written in the same
//! transaction; the worker delivers the rows afterwards.

use chrono::{DateTime, Utc};
pub use sqlx::types::Json;
use uuid::Uuid;

use crate::{Db, StoreError, Tx, Writes, on_pool, on_tx, shapes, values};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    /// The user the event belongs to (the actor for catalog events; nil for the system).
    pub user_id: Uuid,
    pub id: Uuid,
    pub topic: String,
    pub payload: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
}

pub async fn insert(tx: &mut Tx, e: &EventRow) -> Result<(), StoreError> {
    let mut w = Writes::new();
    queue_insert(&mut w, e);
    w.run(tx).await?;
    Ok(())
}

pub fn queue_insert(w: &mut Writes, e: &EventRow) {
    w.push(
        "INSERT INTO outbox (user_id, id, topic, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
        values![e.user_id, e.id, &e.topic, &e.payload, e.created_at],
    );
}

/// The oldest undelivered events (UUIDv7 ids are time-ordered).
pub async fn pending(db: &Db, limit: u32) -> Result<Vec<EventRow>, StoreError> {
    Ok(on_pool!(db, p => sqlx::query_as(
        "SELECT user_id, id, topic, payload, created_at, attempts FROM outbox \
         WHERE delivered_at IS NULL ORDER BY id LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(p)
    .await)?)
}

/// Marks these events (`(user_id, id)` pairs) delivered: one statement per 128, so the
/// dispatcher holds the writer for a few round trips, not one per event.
pub async fn mark_delivered(
    tx: &mut Tx,
    events: &[(Uuid, Uuid)],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for chunk in events.chunks(128) {
        on_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new("UPDATE outbox SET delivered_at = ");
            qb.push_bind(at)
                .push(", attempts = attempts + 1 WHERE (user_id, id) IN (");
            let mut list = qb.separated(", ");
            for (user, id) in shapes::padded(chunk) {
                list.push("(")
                    .push_bind_unseparated(*user)
                    .push_unseparated(", ")
                    .push_bind_unseparated(*id)
                    .push_unseparated(")");
            }
            qb.push(")");
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

pub async fn count_pending(db: &Db) -> Result<i64, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
        .fetch_one(p)
        .await)?,
    )
}

/// The id of the newest event of any of these topics.
pub async fn newest_of_topics(db: &Db, topics: &[&str]) -> Result<Option<Uuid>, StoreError> {
    Ok(on_pool!(db, p => {
        // ORDER BY ... LIMIT 1 rather than MAX(id): PostgreSQL has no max() for UUIDs.
        let mut qb = sqlx::QueryBuilder::new("SELECT id FROM outbox WHERE topic IN (");
        let mut list = qb.separated(", ");
        for topic in topics {
            list.push_bind(*topic);
        }
        qb.push(") ORDER BY id DESC LIMIT 1");
        qb.build_query_scalar().fetch_optional(p).await
    })?)
}

/// How many events of this topic were written, delivered or not.
pub async fn count_topic(db: &Db, topic: &str) -> Result<i64, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE topic = $1")
        .bind(topic)
        .fetch_one(p)
        .await)?,
    )
}

/// Events of these topics with ids above `after`, oldest first (a node's search feed reads
/// the outbox this way, independently of delivery).
pub async fn after_of_topics(
    db: &Db,
    topics: &[&str],
    after: Uuid,
    limit: u32,
) -> Result<Vec<EventRow>, StoreError> {
    Ok(on_pool!(db, p => {
        let mut qb = sqlx::QueryBuilder::new(
            "SELECT user_id, id, topic, payload, created_at, attempts FROM outbox WHERE id > ",
        );
        qb.push_bind(after).push(" AND topic IN (");
        let mut list = qb.separated(", ");
        for topic in topics {
            list.push_bind(*topic);
        }
        qb.push(") ORDER BY id LIMIT ").push_bind(i64::from(limit));
        qb.build_query_as().fetch_all(p).await
    })?)
}

/// The id of the newest event of any topic (PostgreSQL has no `MAX` of UUIDs).
pub async fn newest_id(db: &Db) -> Result<Option<Uuid>, StoreError> {
    Ok(
        on_pool!(db, p => sqlx::query_scalar("SELECT id FROM outbox ORDER BY id DESC LIMIT 1")
        .fetch_optional(p)
        .await)?,
    )
}
