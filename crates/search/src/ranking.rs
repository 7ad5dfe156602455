//! The ranking blend and its knobs. Every product's score is
//!
//! ```text
//! text  = Σ over query words of   word_weight × how(word)        (coverage, typo-aware)
//!       + Σ over matched terms of BM25(term, field) × field boost × how(word)
//! score = text + in_stock_boost × in_stock
//!              + rating_weight × (bayesian_rating − 3) / 2
//!              + popularity_weight × ln(1 + sales)
//! ```
//!
//! `how(word)` is 1 for an exact word, `synonym`, `prefix`, `one_typo` or `two_typos` for
//! the other ways a word can match, taking the best way per word. A word found only in the
//! description counts `description_word` of a full word. `word_weight` is large against
//! BM25, so products that contain more of the query's words come first, then those with
//! fewer typos, then BM25 decides; business signals separate products of the same text
//! quality and lift in-stock products above out-of-stock ones of similar relevance.

/// Tunable weights of the ranking; the defaults are the shipped ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct RankingConfig {
    /// Score of a query word found in a title, brand, category or attribute value.
    pub word_weight: f32,
    /// Share of `word_weight` for a word found in the description only.
    pub description_word: f32,
    pub synonym: f32,
    pub prefix: f32,
    pub one_typo: f32,
    pub two_typos: f32,
    /// BM25 boosts per field.
    pub title_boost: f32,
    pub meta_boost: f32,
    pub description_boost: f32,
    /// Extra score when the query words appear next to each other in the title.
    pub phrase_boost: f32,
    /// Words shorter than this (in characters) get no typo tolerance.
    pub one_typo_min_chars: usize,
    /// Words at least this long tolerate two typos.
    pub two_typos_min_chars: usize,
    /// Typo candidates per query word, best first.
    pub max_typo_candidates: usize,
    /// A word found in more products than this is taken as meant: it gets no typo variants
    /// (its neighbours are other real words, and their long posting lists cost time).
    pub typo_max_known_count: u64,
    /// Completions of the last query word.
    pub max_prefix_completions: usize,
    pub in_stock_boost: f32,
    pub rating_weight: f32,
    pub popularity_weight: f32,
    /// Bayesian rating: the prior mean and how many reviews it weighs.
    pub rating_prior: f64,
    pub rating_prior_reviews: f64,
    /// Fewer results than this offer "did you mean".
    pub did_you_mean_below: u64,
    /// When fewer products than this match every word, products matching any word count.
    pub relax_below: u64,
    /// ... except that a word found in more than this share of the products then only ranks
    /// (see `query::Matching`).
    pub relax_common_share: f64,
}

impl Default for RankingConfig {
    fn default() -> Self {
        Self {
            word_weight: 10.0,
            description_word: 0.3,
            synonym: 0.9,
            prefix: 0.8,
            one_typo: 0.6,
            two_typos: 0.4,
            title_boost: 1.0,
            meta_boost: 0.7,
            description_boost: 0.2,
            phrase_boost: 0.0,
            one_typo_min_chars: 5,
            two_typos_min_chars: 9,
            max_typo_candidates: 6,
            typo_max_known_count: 3,
            max_prefix_completions: 10,
            in_stock_boost: 5.0,
            rating_weight: 1.0,
            popularity_weight: 0.3,
            rating_prior: 3.0,
            rating_prior_reviews: 5.0,
            did_you_mean_below: 3,
            relax_below: 10,
            relax_common_share: 0.02,
        }
    }
}

impl RankingConfig {
    /// Typos a word of this many characters tolerates.
    pub fn max_typos(&self, chars: usize) -> u8 {
        if chars >= self.two_typos_min_chars {
            2
        } else if chars >= self.one_typo_min_chars {
            1
        } else {
            0
        }
    }

    /// The business part of a product's score.
    pub fn business(&self, in_stock: bool, rating: f64, reviews: u64, sales: u64) -> f32 {
        let n = reviews as f64;
        let bayes = (rating * n + self.rating_prior * self.rating_prior_reviews)
            / (n + self.rating_prior_reviews);
        let stock = if in_stock { self.in_stock_boost } else { 0.0 };
        stock
            + self.rating_weight * ((bayes - 3.0) / 2.0) as f32
            + self.popularity_weight * (sales as f64).ln_1p() as f32
    }

    /// Bayesian rating, for the rating sort.
    pub fn bayes_rating(&self, rating: f64, reviews: u64) -> f64 {
        let n = reviews as f64;
        (rating * n + self.rating_prior * self.rating_prior_reviews)
            / (n + self.rating_prior_reviews)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_budget_grows_with_word_length() {
        let r = RankingConfig::default();
        assert_eq!(r.max_typos(4), 0);
        assert_eq!(r.max_typos(5), 1);
        assert_eq!(r.max_typos(8), 1);
        assert_eq!(r.max_typos(9), 2);
    }

    #[test]
    fn in_stock_outweighs_rating_and_sales_of_similar_products() {
        let r = RankingConfig::default();
        assert!(r.business(true, 0.0, 0, 0) > r.business(false, 5.0, 100, 50));
        assert!(r.business(true, 5.0, 100, 0) > r.business(true, 5.0, 1, 0));
    }
}
