//! The search query string, parsed by hand: it repeats keys (`brand=a&brand=b`), has
//! dynamic ones (`attr.color=red`), and must refuse bytes that are not UTF-8 instead of
//! silently replacing them.

use axum::http::StatusCode;
use emporium_domain::Invalid;
use emporium_domain::money::Currency;
use emporium_domain::paging::Limit;
use emporium_shop::search::{SearchQuery, SearchSort, view};

use crate::error::ApiError;

/// More parameters than this is not a shopper.
const MAX_PARAMS: usize = 64;
const MAX_VALUE_CHARS: usize = 200;

/// `key=value` pairs of a query string, percent-decoded; non-UTF-8 → 400 `invalid_encoding`.
pub fn pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let raw = raw.unwrap_or_default();
    let mut out = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        if out.len() == MAX_PARAMS {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "too many query parameters",
            ));
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

fn decode(s: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_encoding",
            "the query string is not valid percent-encoded UTF-8",
        )
    };
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| bad())
}

fn number<T: std::str::FromStr>(field: &str, v: &str) -> Result<T, Invalid> {
    v.trim()
        .parse()
        .map_err(|_| Invalid::new(field, "is not a valid number in range"))
}

fn short(field: &str, v: &str) -> Result<String, Invalid> {
    if v.chars().count() > MAX_VALUE_CHARS {
        return Err(Invalid::new(field, "at most 200 characters"));
    }
    Ok(v.to_owned())
}

/// The search parameters; the locale list comes from the `Locales` extractor.
pub fn search_query(pairs: Vec<(String, String)>) -> Result<SearchQuery, ApiError> {
    let mut q = SearchQuery::default();
    let mut limit = None;
    for (k, v) in pairs {
        match k.as_str() {
            "q" => q.text = v,
            "category" if !v.is_empty() => q.category = Some(short("category", &v)?),
            "brand" if !v.is_empty() => q.brands.push(short("brand", &v)?),
            "price_min" => q.price_min = Some(number("price_min", &v)?),
            "price_max" => q.price_max = Some(number("price_max", &v)?),
            "currency" => q.currency = Some(Currency::parse(&v)?),
            "rating_min" => {
                let r: f64 = number("rating_min", &v)?;
                if !(0.0..=5.0).contains(&r) {
                    return Err(Invalid::new("rating_min", "must be between 0 and 5").into());
                }
                q.rating_min = Some(r);
            }
            "in_stock" => {
                q.in_stock = Some(match v.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(Invalid::new("in_stock", "must be true or false").into()),
                })
            }
            "sort" => q.sort = SearchSort::parse(&v)?,
            "cursor" => {
                q.offset = view::offset_of(&v)
                    .ok_or_else(|| Invalid::new("cursor", "is not a cursor this server issued"))?
            }
            "limit" => limit = Some(number::<i64>("limit", &v)?),
            other => {
                if let Some(name) = other.strip_prefix("attr.") {
                    if name.is_empty() || name.chars().count() > 60 {
                        return Err(
                            Invalid::new("attr", "attribute names are 1-60 characters").into()
                        );
                    }
                    if q.attributes.len() >= emporium_search::collect::MAX_ATTR_FILTERS
                        && !q.attributes.contains_key(name)
                    {
                        return Err(Invalid::new("attr", "at most 16 attribute filters").into());
                    }
                    q.attributes
                        .entry(name.to_owned())
                        .or_default()
                        .push(short("attr", &v)?);
                }
                // Other parameters (tracking tags, `locale`) do not change the search.
            }
        }
    }
    q.limit = Limit::parse(limit)?.get() as usize;
    q.brands.sort();
    q.brands.dedup();
    for values in q.attributes.values_mut() {
        values.sort();
        values.dedup();
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_dynamic_keys_are_collected() {
        let q = search_query(
            pairs(Some(
                "q=red+mug&brand=A&brand=B%20C&attr.color=red&attr.color=blue&limit=5",
            ))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(q.text, "red mug");
        assert_eq!(q.brands, ["A", "B C"]);
        assert_eq!(q.attributes["color"], ["blue", "red"]);
        assert_eq!(q.limit, 5);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused() {
        let err = pairs(Some("q=%FF%FE")).unwrap_err();
        assert_eq!(err.code, "invalid_encoding");
        assert_eq!(pairs(Some("q=%4")).unwrap_err().code, "invalid_encoding");
    }
}
