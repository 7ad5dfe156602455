//! Synonyms, as an admin manages them: multi-way (every phrase of the group finds the
//! others) and one-way (`tv` finds `television`, not the other way round). A phrase is one
//! to three words; matching is on normalized words.

use std::collections::HashMap;

use crate::analysis::words;

/// Longest synonym phrase, in words.
pub const MAX_PHRASE_WORDS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SynonymRule {
    MultiWay(Vec<String>),
    OneWay { from: String, to: Vec<String> },
}

/// Alternatives per phrase (the phrase's words joined by one space).
#[derive(Debug, Clone, Default)]
pub struct Synonyms {
    map: HashMap<String, Vec<Vec<String>>>,
}

impl Synonyms {
    pub fn new(rules: &[SynonymRule]) -> Self {
        let mut s = Self::default();
        for rule in rules {
            match rule {
                SynonymRule::MultiWay(group) => {
                    let phrases: Vec<Vec<String>> = group.iter().map(|p| words(p)).collect();
                    for (i, from) in phrases.iter().enumerate() {
                        for (j, to) in phrases.iter().enumerate() {
                            if i != j {
                                s.add(from, to);
                            }
                        }
                    }
                }
                SynonymRule::OneWay { from, to } => {
                    let from = words(from);
                    for target in to {
                        s.add(&from, &words(target));
                    }
                }
            }
        }
        s
    }

    fn add(&mut self, from: &[String], to: &[String]) {
        if from.is_empty()
            || to.is_empty()
            || from.len() > MAX_PHRASE_WORDS
            || to.len() > MAX_PHRASE_WORDS
            || from == to
        {
            return;
        }
        let list = self.map.entry(from.join(" ")).or_default();
        if !list.iter().any(|t| t == to) {
            list.push(to.to_vec());
        }
    }

    /// Alternatives of a phrase of normalized words.
    pub fn lookup(&self, phrase: &[String]) -> &[Vec<String>] {
        if self.map.is_empty() {
            return &[];
        }
        self.map
            .get(&phrase.join(" "))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        words(s)
    }

    #[test]
    fn multi_way_groups_find_each_other() {
        let s = Synonyms::new(&[SynonymRule::MultiWay(vec![
            "sofa".into(),
            "couch".into(),
            "Settee".into(),
        ])]);
        assert_eq!(s.lookup(&w("couch")), [w("sofa"), w("settee")]);
        assert_eq!(s.lookup(&w("settee")).len(), 2);
    }

    #[test]
    fn one_way_rules_do_not_go_back() {
        let s = Synonyms::new(&[SynonymRule::OneWay {
            from: "tv".into(),
            to: vec!["television".into(), "flat screen".into()],
        }]);
        assert_eq!(s.lookup(&w("tv")), [w("television"), w("flat screen")]);
        assert!(s.lookup(&w("television")).is_empty());
    }
}
