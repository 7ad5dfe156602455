//! Lists bound into SQL text come in a few lengths only.
//!
//! A statement with a placeholder per value (`IN ($1, $2, …)`, a multi-row `VALUES`) has
//! another text for every length of its list, and every new text is parsed and planned
//! again: sqlx keeps prepared statements by their text, a hundred per connection. The
//! engine's batches and the session lookups of a flash sale come in every length from one
//! to a few hundred, so their statements were prepared anew on nearly every batch, on the
//! writer while it held the write lock. Padded up to the next power of two, a statement has a
//! handful of texts, and they stay prepared.
//!
//! The padding changes no result: an `IN` list repeats its last value, and padded `VALUES`
//! rows are all NULL and filtered out before they reach the table ([`padded_rows`]).

/// The length a list of `n` values is sent as.
pub(crate) fn padded_len(n: usize) -> usize {
    n.next_power_of_two()
}

/// `items`, then their last item repeated up to [`padded_len`]: for `IN` lists.
pub(crate) fn padded<T>(items: &[T]) -> impl Iterator<Item = &T> {
    let pad = padded_len(items.len()) - items.len();
    items
        .iter()
        .chain(std::iter::repeat_n(items.last(), pad).flatten())
}

/// `rows` as `Some`, then `None` up to [`padded_len`]: for `VALUES` lists whose padding rows
/// bind NULL in every column and are dropped by [`VALUES_KEPT`].
pub(crate) fn padded_rows<T>(rows: &[T]) -> impl Iterator<Item = Option<&T>> {
    let pad = padded_len(rows.len()) - rows.len();
    rows.iter().map(Some).chain(std::iter::repeat_n(None, pad))
}

/// Opens `INSERT INTO table (columns) SELECT * FROM (VALUES …`: push the padded rows
/// after it, then [`VALUES_KEPT`].
pub(crate) fn insert_from_values(table: &str, columns: &str) -> String {
    format!("INSERT INTO {table} ({columns}) SELECT * FROM (")
}

/// Closes [`insert_from_values`]: keeps the rows whose first column is not NULL (the `WHERE`
/// also tells SQLite that an `ON CONFLICT` after it belongs to the `INSERT`).
pub(crate) const VALUES_KEPT: &str = ") AS v WHERE v.column1 IS NOT NULL";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_powers_of_two_and_never_shorter() {
        assert_eq!(padded_len(0), 1);
        assert_eq!(padded_len(1), 1);
        assert_eq!(padded_len(2), 2);
        assert_eq!(padded_len(3), 4);
        assert_eq!(padded_len(100), 128);
        assert_eq!(padded_len(128), 128);
        assert_eq!(padded_len(129), 256);
    }

    #[test]
    fn lists_repeat_their_last_item() {
        assert_eq!(padded(&[1, 2, 3]).collect::<Vec<_>>(), [&1, &2, &3, &3]);
        assert_eq!(padded(&[7]).collect::<Vec<_>>(), [&7]);
        assert_eq!(padded::<u8>(&[]).count(), 0);
    }

    #[test]
    fn rows_are_padded_with_none() {
        let rows = ["a", "b", "c", "d", "e"];
        let padded: Vec<_> = padded_rows(&rows).collect();
        assert_eq!(padded.len(), 8);
        assert_eq!(padded.iter().flatten().count(), 5);
        assert!(padded[5..].iter().all(Option::is_none));
    }
}
