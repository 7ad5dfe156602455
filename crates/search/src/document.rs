//! What a product looks like to search, and how it becomes a tantivy document.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tantivy::TantivyDocument;

use crate::analysis::Lang;
use crate::schema::{ATTR_SEP, Fields};

/// Texts of a product in one locale other than the base one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalText {
    pub locale: String,
    pub title: String,
    pub description: String,
}

/// Everything search knows of one active product. Also its display card: hits are answered
/// from the index without a database read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductDoc {
    pub id: String,
    pub slug: String,
    /// Base locale (English) texts.
    pub title: String,
    pub description: String,
    pub translations: Vec<LocalText>,
    pub brand: Option<String>,
    /// Slugs from the root: `home-decor/clocks`.
    pub category_path: Option<String>,
    /// Names of the category and its ancestors, searched as text.
    pub category_names: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    pub skus: Vec<String>,
    /// Lowest price of the product's variants per currency code, minor units.
    pub prices: BTreeMap<String, i64>,
    /// Mean review rating, 0 when there are no reviews.
    pub rating: f64,
    pub review_count: u64,
    pub sales_count: u64,
    pub in_stock: bool,
    /// Unix seconds.
    pub created_at: i64,
    pub image: Option<String>,
}

impl ProductDoc {
    /// Title and description in the first wanted locale that has them, else the base texts:
    /// (locale, title, description).
    pub fn localized(&self, wanted: &[String]) -> (&str, &str, &str) {
        for locale in wanted {
            let language = locale.split(['-', '_']).next().unwrap_or_default();
            if language.eq_ignore_ascii_case("en") {
                break;
            }
            let found = self
                .translations
                .iter()
                .find(|t| t.locale.eq_ignore_ascii_case(locale))
                .or_else(|| {
                    self.translations.iter().find(|t| {
                        t.locale
                            .split(['-', '_'])
                            .next()
                            .is_some_and(|l| l.eq_ignore_ascii_case(language))
                    })
                });
            if let Some(t) = found {
                return (&t.locale, &t.title, &t.description);
            }
        }
        ("en", &self.title, &self.description)
    }

    pub(crate) fn to_document(&self, f: &Fields) -> Result<TantivyDocument, serde_json::Error> {
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, &self.id);
        doc.add_text(f.card, serde_json::to_string(self)?);
        let mut words = vec![self.title.clone()];
        if let Some(field) = f.title(Lang::En) {
            doc.add_text(field, &self.title);
        }
        if let Some(field) = f.description(Lang::En) {
            doc.add_text(field, &self.description);
        }
        for t in &self.translations {
            match Lang::of_locale(&t.locale) {
                Some(lang) => {
                    if let Some(field) = f.title(lang) {
                        doc.add_text(field, &t.title);
                    }
                    if let Some(field) = f.description(lang) {
                        doc.add_text(field, &t.description);
                    }
                }
                None => {
                    doc.add_text(f.other_text, &t.title);
                    doc.add_text(f.other_text, &t.description);
                }
            }
            words.push(t.title.clone());
        }
        if let Some(brand) = &self.brand {
            doc.add_text(f.brand, brand);
            doc.add_text(f.meta, brand);
            words.push(brand.clone());
        }
        if let Some(path) = &self.category_path {
            let mut prefix = String::new();
            for part in path.split('/') {
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(part);
                doc.add_text(f.category, &prefix);
            }
        }
        for name in &self.category_names {
            doc.add_text(f.meta, name);
            words.push(name.clone());
        }
        for (name, value) in &self.attributes {
            doc.add_text(f.attrs, format!("{name}{ATTR_SEP}{value}"));
            doc.add_text(f.meta, value);
            words.push(value.clone());
        }
        for sku in &self.skus {
            doc.add_text(f.sku, sku.to_lowercase());
            doc.add_text(f.meta, sku);
        }
        for (currency, field) in &f.price {
            if let Some(amount) = self.prices.get(*currency) {
                doc.add_u64(*field, u64::try_from(*amount).unwrap_or(0));
            }
        }
        doc.add_text(f.words, words.join(" \n "));
        doc.add_f64(f.rating, self.rating);
        doc.add_u64(f.reviews, self.review_count);
        doc.add_u64(f.sales, self.sales_count);
        doc.add_u64(f.in_stock, u64::from(self.in_stock));
        doc.add_i64(f.created, self.created_at);
        Ok(doc)
    }
}
