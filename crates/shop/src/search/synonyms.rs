//! Synonyms, managed by admins, stored in the database and applied by every node's index
//! (this node at once, others when their feed reads `search.synonyms_changed`).

use chrono::{DateTime, Utc};
use emporium_domain::Invalid;
use emporium_search::{SynonymRule, Synonyms, analysis};
use emporium_store::search::{self as store, Json, SynonymRow};
use serde::Serialize;
use uuid::Uuid;

use crate::identity::Actor;
use crate::{Shop, ShopError, events};

const MAX_PHRASES: usize = 20;
const MAX_PHRASE_CHARS: usize = 60;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SynonymView {
    pub id: Uuid,
    /// `multi_way` or `one_way`.
    pub kind: String,
    /// One-way rules: the phrase that also finds `terms`.
    pub source: Option<String>,
    pub terms: Vec<String>,
    pub created_at: DateTime<Utc>,
}

fn phrase(field: &str, raw: &str) -> Result<String, Invalid> {
    let words = analysis::words(raw);
    if words.is_empty()
        || words.len() > emporium_search::synonyms::MAX_PHRASE_WORDS
        || raw.chars().count() > MAX_PHRASE_CHARS
    {
        return Err(Invalid::new(
            field,
            "each phrase is 1 to 3 words and at most 60 characters",
        ));
    }
    Ok(words.join(" "))
}

/// Parses an admin's rule: `multi_way` with 2 or more `terms`, or `one_way` from `source`
/// to 1 or more `terms`.
pub fn parse_rule(
    kind: &str,
    source: Option<&str>,
    terms: &[String],
) -> Result<SynonymRule, Invalid> {
    if terms.len() > MAX_PHRASES {
        return Err(Invalid::new("terms", "at most 20 phrases"));
    }
    let terms = terms
        .iter()
        .map(|t| phrase("terms", t))
        .collect::<Result<Vec<_>, _>>()?;
    match (kind, source) {
        ("multi_way", None) if terms.len() >= 2 => Ok(SynonymRule::MultiWay(terms)),
        ("multi_way", None) => Err(Invalid::new("terms", "a group needs at least 2 phrases")),
        ("multi_way", Some(_)) => Err(Invalid::new("source", "only one-way rules have a source")),
        ("one_way", Some(s)) if !terms.is_empty() => Ok(SynonymRule::OneWay {
            from: phrase("source", s)?,
            to: terms,
        }),
        ("one_way", Some(_)) => Err(Invalid::new("terms", "name at least one target")),
        ("one_way", None) => Err(Invalid::new("source", "a one-way rule needs a source")),
        _ => Err(Invalid::new("kind", "must be multi_way or one_way")),
    }
}

fn rule_of(row: &SynonymRow) -> Option<SynonymRule> {
    match (row.kind.as_str(), &row.source) {
        ("multi_way", _) => Some(SynonymRule::MultiWay(row.terms.0.clone())),
        ("one_way", Some(from)) => Some(SynonymRule::OneWay {
            from: from.clone(),
            to: row.terms.0.clone(),
        }),
        _ => None,
    }
}

fn view(row: SynonymRow) -> SynonymView {
    SynonymView {
        id: row.id,
        kind: row.kind,
        source: row.source,
        terms: row.terms.0,
        created_at: row.created_at,
    }
}

fn admin_only(actor: &Actor) -> Result<(), ShopError> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(ShopError::Forbidden(
            "forbidden",
            "only admins manage synonyms",
        ))
    }
}

pub async fn list(shop: &Shop, actor: &Actor) -> Result<Vec<SynonymView>, ShopError> {
    admin_only(actor)?;
    Ok(store::list_synonyms(&shop.db)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

pub async fn create(
    shop: &Shop,
    actor: &Actor,
    rule: SynonymRule,
) -> Result<SynonymView, ShopError> {
    admin_only(actor)?;
    let now = shop.now();
    let (kind, source, terms) = match rule {
        SynonymRule::MultiWay(terms) => ("multi_way", None, terms),
        SynonymRule::OneWay { from, to } => ("one_way", Some(from), to),
    };
    let row = SynonymRow {
        id: Uuid::now_v7(),
        kind: kind.to_owned(),
        source,
        terms: Json(terms),
        created_at: now,
    };
    let mut tx = shop.db.begin().await?;
    store::insert_synonym(&mut tx, &row).await?;
    changed(&mut tx, actor, now).await?;
    tx.commit().await?;
    reload(shop).await?;
    Ok(view(row))
}

pub async fn delete(shop: &Shop, actor: &Actor, id: Uuid) -> Result<(), ShopError> {
    admin_only(actor)?;
    let now = shop.now();
    let mut tx = shop.db.begin().await?;
    if !store::delete_synonym(&mut tx, id).await? {
        return Err(ShopError::NotFound("synonym"));
    }
    changed(&mut tx, actor, now).await?;
    tx.commit().await?;
    reload(shop).await
}

async fn changed(
    tx: &mut emporium_store::Tx,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), ShopError> {
    events::emit(
        tx,
        actor.user_id.0,
        events::SYNONYMS_CHANGED,
        serde_json::json!({}),
        now,
    )
    .await?;
    Ok(())
}

/// Loads every rule into this node's index.
pub async fn reload(shop: &Shop) -> Result<(), ShopError> {
    let rules: Vec<SynonymRule> = store::list_synonyms(&shop.db)
        .await?
        .iter()
        .filter_map(rule_of)
        .collect();
    shop.search.index()?.set_synonyms(Synonyms::new(&rules));
    Ok(())
}
