//! The index of one node: opening (rebuilding when the schema version changed), writing,
//! committing with the outbox cursor, and the snapshot searches read.
//!
//! One writer behind a mutex (tantivy allows one); one reader with a manual reload policy,
//! reloaded right after each commit together with the word list, and swapped in as a new
//! [`Snapshot`] so a search never sees half of a change.

use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tantivy::{
    DocAddress, Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, Searcher, Term,
};

use crate::analysis;
use crate::cache::ResultCache;
use crate::document::ProductDoc;
use crate::query::{Analyzers, LiveFields};
use crate::ranking::RankingConfig;
use crate::schema::{self, Fields, SCHEMA_VERSION};
use crate::suggest::PopularQueries;
use crate::synonyms::Synonyms;
use crate::values::{self, SegmentValues};
use crate::vocab::{Typos, Vocabulary};

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index directory: {0}")]
    Directory(#[from] tantivy::directory::error::OpenDirectoryError),
    #[error("search index file: {0}")]
    Io(#[from] std::io::Error),
    #[error("search document: {0}")]
    Json(#[from] serde_json::Error),
}

/// What a commit records besides the documents.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Payload {
    version: u32,
    /// The last outbox event applied (its id); absent until the first rebuild finished.
    cursor: Option<String>,
}

/// What searches read: one consistent view of the index and its word list.
pub struct Snapshot {
    pub searcher: Searcher,
    pub vocab: Vocabulary,
    /// The text fields with any term (queries skip the others).
    pub live: LiveFields,
    /// The facet columns' values per segment ordinal.
    pub values: Vec<Arc<SegmentValues>>,
    /// Moves on every commit; caches keyed by it never serve stale results.
    pub generation: u64,
    /// Stored cards of products already shown from this snapshot: popular products come
    /// up in many searches, and reading one means decompressing a store block and parsing
    /// its JSON.
    pub(crate) cards: Cards,
}

/// Slots of the card cache.
const CARD_SLOTS: usize = 16_384;

/// Product cards by document address, in a fixed number of slots: a new card replaces
/// whichever card held its slot, so memory stays bounded without a pause to start over.
#[derive(Default)]
pub(crate) struct Cards(Mutex<Vec<CardSlot>>);

type CardSlot = Option<(DocAddress, Arc<ProductDoc>)>;

impl Cards {
    fn slot(address: DocAddress) -> usize {
        let mixed = u64::from(address.segment_ord).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ u64::from(address.doc_id).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        (mixed >> 32) as usize % CARD_SLOTS
    }

    pub(crate) fn get(&self, address: DocAddress) -> Option<Arc<ProductDoc>> {
        match self.0.lock().get(Self::slot(address)) {
            Some(Some((at, card))) if *at == address => Some(card.clone()),
            _ => None,
        }
    }

    pub(crate) fn put(&self, address: DocAddress, card: Arc<ProductDoc>) {
        let evicted = {
            let mut slots = self.0.lock();
            if slots.is_empty() {
                slots.resize(CARD_SLOTS, None);
            }
            slots[Self::slot(address)].replace((address, card))
        };
        drop(evicted);
    }
}

pub struct SearchIndex {
    pub(crate) fields: Fields,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    snapshot: RwLock<Arc<Snapshot>>,
    cursor: Mutex<Option<String>>,
    pub(crate) synonyms: RwLock<Arc<Synonyms>>,
    pub(crate) popular: RwLock<Arc<PopularQueries>>,
    pub(crate) typos: Typos,
    pub(crate) cache: ResultCache,
    /// Cloned per search (see `Analyzers`).
    pub(crate) analyzers: Analyzers,
    pub ranking: RankingConfig,
}

impl SearchIndex {
    /// Opens the index in `dir`, or creates it. An index of another schema version is
    /// deleted and created anew: [`SearchIndex::cursor`] is then `None` and the caller
    /// rebuilds it from the database.
    pub fn open(dir: &Path, ranking: RankingConfig) -> Result<Self, SearchError> {
        std::fs::create_dir_all(dir)?;
        let (schema, _) = schema::build();
        let existing = Index::open_in_dir(dir).ok().filter(|index| {
            let payload = read_payload(index);
            payload.version == SCHEMA_VERSION && index.schema() == schema
        });
        let index = match existing {
            Some(index) => index,
            None => {
                tracing::info!(version = SCHEMA_VERSION, "creating the search index");
                for entry in std::fs::read_dir(dir)? {
                    let path = entry?.path();
                    if path.is_dir() {
                        std::fs::remove_dir_all(&path)?;
                    } else {
                        std::fs::remove_file(&path)?;
                    }
                }
                Index::builder()
                    .schema(schema)
                    .settings(settings())
                    .create_in_dir(dir)?
            }
        };
        // Two indexing threads: one per core of the machine we size for.
        let writer = index.writer_with_num_threads(2, 128 * 1024 * 1024)?;
        Self::with(index, writer, ranking)
    }

    /// An index in memory (tests, evaluation).
    pub fn in_ram(ranking: RankingConfig) -> Result<Self, SearchError> {
        let (schema, _) = schema::build();
        let index = Index::builder()
            .schema(schema)
            .settings(settings())
            .create_in_ram()?;
        let writer = index.writer_with_num_threads(1, 32 * 1024 * 1024)?;
        Self::with(index, writer, ranking)
    }

    fn with(
        index: Index,
        writer: IndexWriter,
        ranking: RankingConfig,
    ) -> Result<Self, SearchError> {
        analysis::register(index.tokenizers());
        let (_, fields) = schema::build();
        let payload = read_payload(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let snapshot = Self::take_snapshot(&reader, &fields, 0, &[])?;
        Ok(Self {
            fields,
            writer: Mutex::new(writer),
            reader,
            snapshot: RwLock::new(Arc::new(snapshot)),
            cursor: Mutex::new(payload.cursor.filter(|_| payload.version == SCHEMA_VERSION)),
            synonyms: RwLock::default(),
            popular: RwLock::default(),
            typos: Typos::default(),
            cache: ResultCache::default(),
            analyzers: Analyzers::default(),
            ranking,
        })
    }

    /// `previous`: the segment values of the last snapshot, reused for unchanged segments.
    fn take_snapshot(
        reader: &IndexReader,
        fields: &Fields,
        generation: u64,
        previous: &[Arc<SegmentValues>],
    ) -> Result<Snapshot, SearchError> {
        let searcher = reader.searcher();
        let vocab = Vocabulary::build(&searcher, fields.words)?;
        let values = values::read_all(&searcher, previous)?;
        let live = live_fields(&searcher, fields)?;
        Ok(Snapshot {
            searcher,
            vocab,
            live,
            values,
            generation,
            cards: Cards::default(),
        })
    }

    /// The last outbox event the index has applied; `None`: rebuild from the database.
    pub fn cursor(&self) -> Option<String> {
        self.cursor.lock().clone()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().clone()
    }

    /// Products in the index.
    pub fn len(&self) -> u64 {
        self.snapshot().searcher.num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds or replaces a product (visible after the next commit).
    pub fn upsert(&self, doc: &ProductDoc) -> Result<(), SearchError> {
        let document = doc.to_document(&self.fields)?;
        let writer = self.writer.lock();
        writer.delete_term(Term::from_field_text(self.fields.id, &doc.id));
        writer.add_document(document)?;
        Ok(())
    }

    /// Removes a product (archived, draft, deleted), visible after the next commit.
    pub fn remove(&self, id: &str) {
        self.writer
            .lock()
            .delete_term(Term::from_field_text(self.fields.id, id));
    }

    /// Removes every product (before a rebuild), visible after the next commit.
    pub fn clear(&self) -> Result<(), SearchError> {
        self.writer.lock().delete_all_documents()?;
        Ok(())
    }

    /// Commits pending changes with the outbox position they reach, then swaps in a fresh
    /// snapshot. Durable on disk when this returns.
    pub fn commit(&self, cursor: Option<&str>) -> Result<(), SearchError> {
        let mut writer = self.writer.lock();
        let mut prepared = writer.prepare_commit()?;
        let payload = Payload {
            version: SCHEMA_VERSION,
            cursor: cursor.map(str::to_owned),
        };
        prepared.set_payload(&serde_json::to_string(&payload)?);
        prepared.commit()?;
        *self.cursor.lock() = payload.cursor;
        self.refresh()
    }

    /// Merges every segment into one (after a rebuild): each search pays its per-segment
    /// steps (term lookups, weights, facet arrays) once instead of once per segment.
    pub fn compact(&self) -> Result<(), SearchError> {
        let mut writer = self.writer.lock();
        let segments = writer.index().searchable_segment_ids()?;
        if segments.len() < 2 {
            return Ok(());
        }
        writer.merge(&segments).wait()?;
        drop(writer);
        self.refresh()
    }

    /// Swaps in a snapshot of what is committed now.
    fn refresh(&self) -> Result<(), SearchError> {
        self.reader.reload()?;
        let previous = self.snapshot();
        let snapshot = Self::take_snapshot(
            &self.reader,
            &self.fields,
            previous.generation + 1,
            &previous.values,
        )?;
        *self.snapshot.write() = Arc::new(snapshot);
        self.cache.clear();
        Ok(())
    }

    /// Segments searched (a merge after a rebuild leaves one).
    pub fn segments(&self) -> usize {
        self.snapshot().searcher.segment_readers().len()
    }

    pub fn set_synonyms(&self, synonyms: Synonyms) {
        *self.synonyms.write() = Arc::new(synonyms);
        self.cache.clear();
    }

    pub fn set_popular_queries(&self, popular: PopularQueries) {
        *self.popular.write() = Arc::new(popular);
        self.cache.clear();
    }
}

/// The searched text fields that hold a term in some segment.
fn live_fields(searcher: &Searcher, fields: &Fields) -> Result<LiveFields, SearchError> {
    let text = fields
        .title
        .values()
        .chain(fields.description.values())
        .chain([&fields.meta, &fields.other_text]);
    let mut live = LiveFields::new();
    for field in text {
        for segment in searcher.segment_readers() {
            if segment.inverted_index(*field)?.terms().num_terms() > 0 {
                live.insert(*field);
                break;
            }
        }
    }
    Ok(live)
}

/// Small document store blocks: a page of hits reads about 20 random cards, and each read
/// decompresses the card's whole block (16 KiB by default, 2 KiB here: a few cards).
fn settings() -> IndexSettings {
    IndexSettings {
        docstore_blocksize: 2048,
        ..IndexSettings::default()
    }
}

fn read_payload(index: &Index) -> Payload {
    index
        .load_metas()
        .ok()
        .and_then(|m| m.payload)
        .and_then(|p| serde_json::from_str(&p).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str) -> ProductDoc {
        ProductDoc {
            id: id.into(),
            title: "Oak Table".into(),
            ..ProductDoc::default()
        }
    }

    #[test]
    fn compacting_leaves_one_segment_with_every_product() {
        let index = SearchIndex::in_ram(RankingConfig::default()).unwrap();
        for id in ["a", "b", "c"] {
            index.upsert(&doc(id)).unwrap();
            index.commit(None).unwrap();
        }
        assert_eq!(index.segments(), 3, "one segment per commit");
        let req = crate::SearchRequest::text("oak table", 10);
        let before = index.search(&req).unwrap();
        index.compact().unwrap();
        assert_eq!(index.segments(), 1);
        let after = index.search(&req).unwrap();
        assert_eq!(after.total, 3);
        let ids = |r: &crate::SearchResults| {
            let mut ids: Vec<String> = r.hits.iter().map(|h| h.product.id.clone()).collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(&after), ids(&before));
    }

    #[test]
    fn a_card_is_kept_until_another_needs_its_slot() {
        let cards = Cards::default();
        let at = |doc_id| DocAddress::new(0, doc_id);
        assert!(cards.get(at(7)).is_none());
        cards.put(at(7), Arc::new(doc("a")));
        assert_eq!(cards.get(at(7)).unwrap().id, "a");
        let rival = (0..)
            .map(at)
            .find(|a| *a != at(7) && Cards::slot(*a) == Cards::slot(at(7)))
            .unwrap();
        assert!(
            cards.get(rival).is_none(),
            "a slot answers only for its own address"
        );
        cards.put(rival, Arc::new(doc("b")));
        assert!(cards.get(at(7)).is_none());
        assert_eq!(cards.get(rival).unwrap().id, "b");
    }

    #[test]
    fn the_cursor_survives_a_restart_and_another_schema_version_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        {
            let index = SearchIndex::open(dir.path(), RankingConfig::default()).unwrap();
            assert_eq!(index.cursor(), None, "a new index asks for a rebuild");
            index.upsert(&doc("a")).unwrap();
            index.commit(Some("cursor-1")).unwrap();
        }
        let index = SearchIndex::open(dir.path(), RankingConfig::default()).unwrap();
        assert_eq!(index.cursor().as_deref(), Some("cursor-1"));
        assert_eq!(index.len(), 1);
        drop(index);

        // An index written by an older version of the schema.
        let old = Index::open_in_dir(dir.path()).unwrap();
        let mut writer: IndexWriter = old.writer_with_num_threads(1, 15_000_000).unwrap();
        let mut prepared = writer.prepare_commit().unwrap();
        prepared.set_payload(r#"{"version":0,"cursor":"cursor-1"}"#);
        prepared.commit().unwrap();
        drop(writer);
        let index = SearchIndex::open(dir.path(), RankingConfig::default()).unwrap();
        assert_eq!(index.cursor(), None, "rebuilt from the database");
        assert_eq!(index.len(), 0);
    }
}
