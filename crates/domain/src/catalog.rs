//! Catalog rules: slugs, SKU codes, product status, locales, attributes, sort orders.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Invalid;
use crate::identity::text;

/// A URL-safe name: lowercase ASCII letters, digits and single hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let ok = !raw.is_empty()
            && raw.len() <= 120
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-')
            && !raw.contains("--");
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Invalid::new(
                "slug",
                "must be 1-120 lowercase letters, digits and single hyphens",
            ))
        }
    }

    /// A slug made from a title: "White Hanging Heart T-Light" → "white-hanging-heart-t-light".
    pub fn from_title(title: &str) -> Result<Self, Invalid> {
        let mut out = String::with_capacity(title.len());
        for c in title.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        let trimmed: String = out.trim_end_matches('-').chars().take(100).collect();
        Self::parse(trimmed.trim_end_matches('-'))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stock-keeping unit code: 1-64 characters of `A-Z 0-9 - _ .`, stored upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Sku(String);

impl Sku {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let code = raw.trim().to_ascii_uppercase();
        let ok = !code.is_empty()
            && code.len() <= 64
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if ok {
            Ok(Self(code))
        } else {
            Err(Invalid::new(
                "sku",
                "must be 1-64 characters of letters, digits, '-', '_' or '.'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a product is in its life. Only `active` products are public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    Draft,
    Active,
    Archived,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Draft => "draft",
            ProductStatus::Active => "active",
            ProductStatus::Archived => "archived",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "draft" => Ok(Self::Draft),
            "active" => Ok(Self::Active),
            "archived" => Ok(Self::Archived),
            _ => Err(Invalid::new(
                "status",
                format!("unknown product status {raw:?}"),
            )),
        }
    }
}

/// A BCP 47 language tag reduced to what the catalog needs: `en`, `fr`, `pt-BR`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Locale(String);

impl Locale {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let raw = raw.trim();
        let (lang, region) = match raw.split_once(['-', '_']) {
            Some((l, r)) => (l, Some(r)),
            None => (raw, None),
        };
        let lang_ok =
            (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_alphabetic());
        let region_ok =
            region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_alphabetic()));
        if !lang_ok || !region_ok {
            return Err(Invalid::new(
                "locale",
                "must be a language tag such as en or pt-BR",
            ));
        }
        let mut tag = lang.to_ascii_lowercase();
        if let Some(r) = region {
            tag.push('-');
            tag.push_str(&r.to_ascii_uppercase());
        }
        Ok(Self(tag))
    }

    /// The language without its region: `pt-BR` → `pt`.
    pub fn language(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The locales a request asks for, best first, from `Accept-Language` (q-values honoured,
    /// malformed entries skipped).
    pub fn from_accept_language(header: &str) -> Vec<Locale> {
        let mut tagged: Vec<(u16, usize, Locale)> = header
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut pieces = part.split(';');
                let tag = Locale::parse(pieces.next()?).ok()?;
                let q =
                    pieces
                        .find_map(|p| p.trim().strip_prefix("q="))
                        .map_or(Some(1000), |q| {
                            q.parse::<f32>()
                                .ok()
                                .filter(|q| (0.0..=1.0).contains(q))
                                .map(|q| (q * 1000.0) as u16)
                        })?;
                (q > 0).then_some((q, i, tag))
            })
            .collect();
        tagged.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        tagged.into_iter().map(|(_, _, l)| l).collect()
    }
}

/// Product attributes (name → value) with bounded size.
pub fn attributes(raw: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Invalid> {
    if raw.len() > 50 {
        return Err(Invalid::new("attributes", "at most 50 attributes"));
    }
    raw.into_iter()
        .map(|(k, v)| {
            Ok((
                text("attributes", &k, 1, 60)?.to_lowercase(),
                text("attributes", &v, 1, 200)?,
            ))
        })
        .collect()
}

/// Image URLs: absolute http(s) URLs without whitespace, at most 20 of them.
pub fn image_urls(raw: Vec<String>) -> Result<Vec<String>, Invalid> {
    if raw.len() > 20 {
        return Err(Invalid::new("images", "at most 20 images"));
    }
    raw.into_iter()
        .map(|u| {
            let ok = (u.starts_with("https://") || u.starts_with("http://"))
                && u.len() <= 2048
                && !u
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '<');
            if ok {
                Ok(u)
            } else {
                Err(Invalid::new(
                    "images",
                    "each image must be an absolute http(s) URL",
                ))
            }
        })
        .collect()
}

/// The order of a product listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductSort {
    #[default]
    Newest,
    PriceAsc,
    PriceDesc,
    Title,
}

impl ProductSort {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "newest" => Ok(Self::Newest),
            "price_asc" => Ok(Self::PriceAsc),
            "price_desc" => Ok(Self::PriceDesc),
            "title" => Ok(Self::Title),
            _ => Err(Invalid::new(
                "sort",
                "must be one of newest, price_asc, price_desc, title",
            )),
        }
    }

    /// Price sorts need a currency to compare prices in.
    pub fn needs_currency(self) -> bool {
        matches!(self, Self::PriceAsc | Self::PriceDesc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_made_from_titles() {
        assert_eq!(
            Slug::from_title("White Hanging Heart T-Light Holder!").map(|s| s.0),
            Ok("white-hanging-heart-t-light-holder".to_owned())
        );
        assert!(Slug::from_title("!!!").is_err());
        assert!(Slug::parse("Bad Slug").is_err());
        assert!(Slug::parse("a--b").is_err());
    }

    #[test]
    fn skus_are_upper_cased_and_restricted() {
        assert_eq!(Sku::parse(" 85123a ").map(|s| s.0), Ok("85123A".to_owned()));
        assert!(Sku::parse("'; DROP TABLE products; --").is_err());
        assert!(Sku::parse(&"A".repeat(65)).is_err());
    }

    #[test]
    fn accept_language_is_ordered_by_quality() {
        let got: Vec<String> =
            Locale::from_accept_language("fr;q=0.5, de-DE, en;q=0.8, xx-invalid-tag, *")
                .into_iter()
                .map(|l| l.0)
                .collect();
        assert_eq!(got, ["de-DE", "en", "fr"]);
        assert_eq!(
            Locale::parse("pt_br").map(|l| l.language().to_owned()),
            Ok("pt".to_owned())
        );
    }

    #[test]
    fn image_urls_must_be_http() {
        assert!(image_urls(vec!["javascript:alert(1)".into()]).is_err());
        assert!(image_urls(vec!["https://img.example/a.jpg".into()]).is_ok());
    }
}
