//! The baselines: BM25 over titles with tantivy's default tokenizer (plain) or its English
//! stemming analyzer `en_stem`, queried through tantivy's `QueryParser` (lenient, OR of the
//! words). No typo tolerance, no synonyms.

use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value};
use tantivy::{Index, IndexReader, TantivyDocument, doc};

use super::{EvalData, EvalError};

pub struct Baseline {
    reader: IndexReader,
    parser: QueryParser,
    id: Field,
}

impl Baseline {
    pub fn build(data: &EvalData, stemmed: bool) -> Result<Self, EvalError> {
        let mut b = Schema::builder();
        let id = b.add_text_field("id", STRING | STORED);
        let tokenizer = if stemmed { "en_stem" } else { "default" };
        let title = b.add_text_field(
            "title",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(tokenizer)
                    .set_index_option(tantivy::schema::IndexRecordOption::WithFreqsAndPositions),
            ),
        );
        let index = Index::create_in_ram(b.build());
        let mut writer = index.writer_with_num_threads(1, 64 * 1024 * 1024)?;
        for (uid, text) in &data.titles {
            writer.add_document(doc!(id => uid.as_str(), title => text.as_str()))?;
        }
        writer.commit()?;
        let reader = index.reader()?;
        let parser = QueryParser::for_index(&index, vec![title]);
        Ok(Self { reader, parser, id })
    }

    pub fn top10(&self, text: &str) -> Result<Vec<String>, EvalError> {
        let (query, _) = self.parser.parse_query_lenient(text);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(10).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (_, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = doc.get_first(self.id).and_then(|v| v.as_str()) {
                out.push(id.to_owned());
            }
        }
        Ok(out)
    }
}
