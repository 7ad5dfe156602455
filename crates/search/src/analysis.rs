//! Analyzers: how text becomes index terms, per language, and how a query becomes words.
//!
//! Every language analyzer splits on non-alphanumerics, lowercases, drops the language's stop
//! words, stems, and folds accents last (so the stemmer still sees "häuser"). The plain
//! analyzer does the same without stop words or stemming: brands, categories, attributes,
//! SKUs and the word list that typo tolerance, prefixes and suggestions are built from.

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer, TokenizerManager,
};

/// Tokenizer name of the plain analyzer.
pub const PLAIN: &str = "em_plain";

/// Languages with their own stemmed fields. Texts in other languages are searched through
/// the plain analyzer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    De,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::De, Lang::Fr];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Fr => "fr",
        }
    }

    /// The language of a locale such as `de-AT`, when it has its own fields.
    pub fn of_locale(locale: &str) -> Option<Lang> {
        let language = locale.split(['-', '_']).next().unwrap_or_default();
        Lang::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(language))
    }

    pub fn tokenizer(self) -> &'static str {
        match self {
            Lang::En => "em_en",
            Lang::De => "em_de",
            Lang::Fr => "em_fr",
        }
    }

    fn stemmer_language(self) -> Language {
        match self {
            Lang::En => Language::English,
            Lang::De => Language::German,
            Lang::Fr => Language::French,
        }
    }
}

/// The analyzer of a language's fields.
pub fn language(lang: Lang) -> TextAnalyzer {
    let stop_words = StopWordFilter::new(lang.stemmer_language())
        .unwrap_or_else(|| StopWordFilter::remove(Vec::<String>::new()));
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(stop_words)
        .filter(Stemmer::new(lang.stemmer_language()))
        .filter(AsciiFoldingFilter)
        .build()
}

/// The analyzer of words: no stop words, no stemming.
pub fn plain() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// Registers Emporium's analyzers with an index.
pub fn register(manager: &TokenizerManager) {
    for lang in Lang::ALL {
        manager.register(lang.tokenizer(), language(lang));
    }
    manager.register(PLAIN, plain());
}

/// The terms an analyzer makes of a text.
pub fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// Lowercased, accent-folded words of a text: the unit of typo tolerance, prefixes and
/// synonyms.
pub fn words(text: &str) -> Vec<String> {
    terms(&mut plain(), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_stems_and_drops_stop_words() {
        assert_eq!(
            terms(&mut language(Lang::En), "The Running Shoes"),
            ["run", "shoe"]
        );
    }

    #[test]
    fn german_stems_before_folding_accents() {
        let mut de = language(Lang::De);
        assert_eq!(terms(&mut de, "die Häuser"), terms(&mut de, "das Haus"));
    }

    #[test]
    fn words_are_lowercased_and_folded() {
        assert_eq!(words("Crème BRÛLÉE, 2x4"), ["creme", "brulee", "2x4"]);
    }
}
