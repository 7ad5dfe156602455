//! The index schema and its version.
//!
//! Text fields are searched; "column" fields are tantivy fast fields read by the collector
//! for filters, facets, sorting and business signals. A product's display data travels in
//! one stored JSON field (`card`), so a hit is answered from the index alone.

use std::collections::BTreeMap;

use emporium_domain::money::Currency;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};

use crate::analysis::{Lang, PLAIN};

/// Bump on any change to fields, analyzers, document building or index settings: an index
/// written with another version is rebuilt from the database on start. 2: small document
/// store blocks.
pub const SCHEMA_VERSION: u32 = 2;

/// Separates an attribute's name from its value in the `attrs` column.
pub const ATTR_SEP: char = '\u{1f}';

/// Handles of every field.
#[derive(Debug, Clone)]
pub struct Fields {
    pub id: Field,
    pub card: Field,
    /// Titles and descriptions per language (stemmed).
    pub title: BTreeMap<&'static str, Field>,
    pub description: BTreeMap<&'static str, Field>,
    /// Titles and descriptions in languages without their own analyzer.
    pub other_text: Field,
    /// Brand, category names, attribute values and SKU words.
    pub meta: Field,
    /// Whole SKU codes, lowercased.
    pub sku: Field,
    /// Unstemmed words of titles, brand, categories and attributes: the word list.
    pub words: Field,
    pub brand: Field,
    /// Every ancestor path of the product's category: `a`, `a/b`, `a/b/c`.
    pub category: Field,
    /// `name<US>value` per attribute.
    pub attrs: Field,
    /// Lowest price per currency code, in minor units.
    pub price: BTreeMap<&'static str, Field>,
    pub rating: Field,
    pub reviews: Field,
    pub sales: Field,
    pub in_stock: Field,
    pub created: Field,
}

impl Fields {
    pub fn title(&self, lang: Lang) -> Option<Field> {
        self.title.get(lang.code()).copied()
    }

    pub fn description(&self, lang: Lang) -> Option<Field> {
        self.description.get(lang.code()).copied()
    }
}

/// Name of the price column of a currency.
pub fn price_column(currency: Currency) -> String {
    format!("price_{}", currency.code().to_ascii_lowercase())
}

fn text(tokenizer: &str, positions: bool) -> TextOptions {
    let record = if positions {
        IndexRecordOption::WithFreqsAndPositions
    } else {
        IndexRecordOption::WithFreqs
    };
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(record),
    )
}

pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let id = b.add_text_field("id", STRING | STORED | FAST);
    let card = b.add_text_field("card", STORED);
    let mut title = BTreeMap::new();
    let mut description = BTreeMap::new();
    for lang in Lang::ALL {
        title.insert(
            lang.code(),
            b.add_text_field(
                &format!("title_{}", lang.code()),
                text(lang.tokenizer(), true),
            ),
        );
        description.insert(
            lang.code(),
            b.add_text_field(
                &format!("description_{}", lang.code()),
                text(lang.tokenizer(), false),
            ),
        );
    }
    let other_text = b.add_text_field("other_text", text(PLAIN, false));
    let meta = b.add_text_field("meta", text(PLAIN, false));
    let sku = b.add_text_field("sku", STRING);
    let words = b.add_text_field(
        "words",
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(PLAIN)
                .set_index_option(IndexRecordOption::Basic),
        ),
    );
    let column = || TextOptions::default().set_fast("raw");
    let brand = b.add_text_field("brand", column());
    let category = b.add_text_field("category", column());
    let attrs = b.add_text_field("attrs", column());
    let mut price = BTreeMap::new();
    for currency in Currency::known() {
        price.insert(
            currency.code(),
            b.add_u64_field(&price_column(currency), FAST),
        );
    }
    let fields = Fields {
        id,
        card,
        title,
        description,
        other_text,
        meta,
        sku,
        words,
        brand,
        category,
        attrs,
        price,
        rating: b.add_f64_field("rating", FAST),
        reviews: b.add_u64_field("reviews", FAST),
        sales: b.add_u64_field("sales", FAST),
        in_stock: b.add_u64_field("in_stock", FAST | INDEXED),
        created: b.add_i64_field("created", FAST),
    };
    (b.build(), fields)
}
