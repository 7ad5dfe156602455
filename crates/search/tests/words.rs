//! Query words scored as one union each (`word`): intersections seek through them, a word's
//! exact form outranks its completions, and the description counts less than the title.
#![expect(clippy::unwrap_used, reason = "tests")]

use emporium_search::{ProductDoc, RankingConfig, SearchIndex, SearchRequest};

fn product(id: &str, title: &str, description: &str) -> ProductDoc {
    ProductDoc {
        id: id.into(),
        slug: id.into(),
        title: title.into(),
        description: description.into(),
        ..ProductDoc::default()
    }
}

fn ids(index: &SearchIndex, text: &str) -> Vec<String> {
    let found = index.search(&SearchRequest::text(text, 10)).unwrap();
    found.hits.iter().map(|h| h.product.id.clone()).collect()
}

#[test]
fn words_intersect_and_rank_exact_before_completions_and_titles_before_descriptions() {
    let index = SearchIndex::in_ram(RankingConfig::default()).unwrap();
    let mut products = vec![
        product("lamp", "Desk lamp", ""),
        product("lamps", "Desk lampshade", ""),
        product("in-description", "Desk light", "A lamp for the desk"),
    ];
    // Enough products with both words that the search does not relax to any word.
    for i in 0..12 {
        products.push(product(&format!("lamp{i}"), "Desk lamp stand", ""));
    }
    // Many products with one of the words: the intersection has to seek past them.
    for i in 0..300 {
        products.push(product(&format!("desk{i}"), "Oak desk", ""));
        products.push(product(&format!("chair{i}"), "Chair", "lamp not included"));
    }
    for p in &products {
        index.upsert(p).unwrap();
    }
    index.commit(None).unwrap();

    let found = ids(&index, "desk lamp");
    assert_eq!(found[0], "lamp", "exact title words first: {found:?}");
    let page = index.search(&SearchRequest::text("desk lamp", 20)).unwrap();
    assert_eq!(
        page.total, 15,
        "only products with both words (or a completion)"
    );
    let position = |id: &str| page.hits.iter().position(|h| h.product.id == id).unwrap();
    assert!(
        position("lamps") > position("lamp11"),
        "a completion after exact words"
    );
    assert!(
        position("in-description") > position("lamps"),
        "description after titles"
    );
}

#[test]
fn a_relaxed_search_needs_a_rare_word_and_ranks_common_words_only() {
    let index = SearchIndex::in_ram(RankingConfig::default()).unwrap();
    // "white" is in most products, "mailbox" in a few, and only one has both.
    let mut products = vec![product("both", "White mailbox", "")];
    for i in 0..3 {
        products.push(product(&format!("mailbox{i}"), "Black mailbox", ""));
    }
    for i in 0..200 {
        products.push(product(&format!("white{i}"), "White paint", ""));
    }
    for p in &products {
        index.upsert(p).unwrap();
    }
    index.commit(None).unwrap();

    let page = index
        .search(&SearchRequest::text("white mailbox", 10))
        .unwrap();
    assert_eq!(page.total, 4, "products with the rare word only");
    assert_eq!(page.hits[0].product.id, "both");
}

#[test]
fn a_repeated_search_is_answered_from_the_cache_until_the_next_commit() {
    let index = SearchIndex::in_ram(RankingConfig::default()).unwrap();
    index.upsert(&product("lamp", "Desk lamp", "")).unwrap();
    index.commit(None).unwrap();
    let req = SearchRequest::text("lamp", 10);
    assert!(index.cached_search(&req).is_none());
    let first = index.search(&req).unwrap();
    let cached = index.cached_search(&req).unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &cached));
    assert!(index.cached_suggest("lam", &[], 8).is_none());
    index.suggest("lam", &[], 8).unwrap();
    assert!(index.cached_suggest("lam", &[], 8).is_some());
    index.upsert(&product("lamp2", "Floor lamp", "")).unwrap();
    index.commit(None).unwrap();
    assert!(
        index.cached_search(&req).is_none(),
        "a commit drops cached answers"
    );
    assert_eq!(index.search(&req).unwrap().total, 2);
}
