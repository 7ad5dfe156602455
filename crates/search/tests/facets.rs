//! Facet counts and filters read from the per-segment values the snapshot keeps: exact on a
//! small catalog, across several segments, and current after updates.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;

use emporium_search::{ProductDoc, RankingConfig, SearchIndex, SearchRequest, Sort};

fn product(i: usize, brand: &str, colour: &str, gbp: i64, in_stock: bool) -> ProductDoc {
    ProductDoc {
        id: format!("id{i}"),
        slug: format!("p{i}"),
        title: format!("Oak table number {i}"),
        brand: Some(brand.into()),
        category_path: Some(
            if i.is_multiple_of(2) {
                "home/tables"
            } else {
                "home/desks"
            }
            .into(),
        ),
        attributes: BTreeMap::from([("colour".into(), colour.into())]),
        prices: BTreeMap::from([("GBP".into(), gbp)]),
        in_stock,
        ..ProductDoc::default()
    }
}

fn count(values: &[emporium_search::ValueCount], value: &str) -> u64 {
    values
        .iter()
        .find(|v| v.value == value)
        .map_or(0, |v| v.count)
}

fn facets_of(index: &SearchIndex, brands: &[&str]) -> emporium_search::SearchResults {
    let mut req = SearchRequest::text("oak table", 10);
    req.facets = true;
    req.filters.brands = brands.iter().map(|b| b.to_string()).collect();
    (*index.search(&req).unwrap()).clone()
}

#[test]
fn facet_counts_are_exact_across_segments_and_follow_updates() {
    let index = SearchIndex::in_ram(RankingConfig::default()).unwrap();
    // Three commits: three segments.
    for (i, brand, colour, price) in [
        (0, "acme", "red", 500),
        (1, "acme", "blue", 1_500),
        (2, "birch", "red", 3_000),
    ] {
        index
            .upsert(&product(i, brand, colour, price, true))
            .unwrap();
        index.commit(None).unwrap();
    }
    let all = facets_of(&index, &[]);
    assert_eq!(all.total, 3);
    assert_eq!(count(&all.facets.brands, "acme"), 2);
    assert_eq!(count(&all.facets.brands, "birch"), 1);
    assert_eq!(count(&all.facets.attributes["colour"], "red"), 2);
    let home = &all.facets.categories[0];
    assert_eq!((home.path.as_str(), home.count), ("home", 3));
    assert_eq!(all.facets.price.iter().map(|b| b.count).sum::<u64>(), 3);

    // Disjunctive: filtering on a brand keeps the other brand's count.
    let acme = facets_of(&index, &["acme"]);
    assert_eq!(acme.total, 2);
    assert_eq!(count(&acme.facets.brands, "birch"), 1);
    assert_eq!(count(&acme.facets.attributes["colour"], "blue"), 1);
    assert_eq!(count(&acme.facets.attributes["colour"], "red"), 1);

    // An update replaces the product in a new segment; the old values no longer count.
    index
        .upsert(&product(2, "acme", "blue", 3_000, false))
        .unwrap();
    index.commit(None).unwrap();
    let updated = facets_of(&index, &[]);
    assert_eq!(updated.total, 3);
    assert_eq!(count(&updated.facets.brands, "acme"), 3);
    assert_eq!(count(&updated.facets.brands, "birch"), 0);
    assert_eq!(count(&updated.facets.attributes["colour"], "blue"), 2);

    // Filters and sorts read the same values.
    let mut req = SearchRequest::text("oak table", 10);
    req.filters.in_stock = Some(true);
    req.sort = Sort::PriceDesc;
    let found = index.search(&req).unwrap();
    let ids: Vec<&str> = found.hits.iter().map(|h| h.product.id.as_str()).collect();
    assert_eq!(ids, ["id1", "id0"]);
}
