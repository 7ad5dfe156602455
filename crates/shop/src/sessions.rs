//! Session lookups, batched: authentications that miss the session cache at the same
//! moment share one query. Under light load each lookup is its own query at once; under a
//! flood (a flash sale of fresh shoppers) the lookups waiting while one query runs go
//! together in the next, so the database sees one query per batch instead of per request.

use std::collections::HashMap;
use std::sync::OnceLock;

use emporium_store::Db;
use emporium_store::identity::{self as store, SessionActorRow};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::ShopError;

type Found = Result<Option<SessionActorRow>, ShopError>;

struct Lookup {
    user: Uuid,
    hash: Vec<u8>,
    reply: oneshot::Sender<Found>,
}

pub struct SessionLoader {
    db: Db,
    sender: OnceLock<mpsc::UnboundedSender<Lookup>>,
}

/// Most lookups in one query.
const MAX_BATCH: usize = 256;

impl SessionLoader {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            sender: OnceLock::new(),
        }
    }

    pub async fn load(&self, user: Uuid, hash: Vec<u8>) -> Found {
        let sender = self.sender.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(self.db.clone(), rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        if sender.send(Lookup { user, hash, reply }).is_err() {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> ShopError {
    ShopError::internal(anyhow::anyhow!("the session loader stopped"))
}

/// Ends when the loader is dropped.
async fn run(db: Db, mut rx: mpsc::UnboundedReceiver<Lookup>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(lookup) => batch.push(lookup),
                Err(_) => break,
            }
        }
        let pairs: Vec<(Uuid, Vec<u8>)> = batch.iter().map(|l| (l.user, l.hash.clone())).collect();
        let started = std::time::Instant::now();
        let result = store::find_session_actors(&db, &pairs).await;
        tracing::debug!(
            batch.size = pairs.len(),
            query_ms = started.elapsed().as_secs_f64() * 1e3,
            "session lookups"
        );
        match result {
            Ok(rows) => {
                let found: HashMap<(Uuid, Vec<u8>), SessionActorRow> = rows
                    .into_iter()
                    .map(|s| ((s.user_id, s.token_hash.clone()), s))
                    .collect();
                // Cloned, not removed: concurrent requests with one token share a batch.
                for lookup in batch {
                    let _ = lookup
                        .reply
                        .send(Ok(found.get(&(lookup.user, lookup.hash)).cloned()));
                }
            }
            Err(e) => {
                let message = format!("{e:#}");
                for lookup in batch {
                    let _ = lookup.reply.send(Err(ShopError::internal(anyhow::anyhow!(
                        "session lookup failed: {message}"
                    ))));
                }
            }
        }
    }
}
