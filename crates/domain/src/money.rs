//! Money: integer minor units plus an ISO 4217 currency. Never a float.

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// An ISO 4217 currency that Emporium knows, with its minor-unit exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(&'static str, u8);

impl utoipa::PartialSchema for Currency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("ISO 4217 currency code"))
            .examples(["GBP"])
            .into()
    }
}

impl utoipa::ToSchema for Currency {}

/// (code, minor-unit exponent). A short list on purpose: every entry is a currency a shop
/// may price in; adding one is a one-line change.
const KNOWN: &[(&str, u8)] = &[
    ("AUD", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CNY", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("JPY", 0),
    ("KWD", 3),
    ("NOK", 2),
    ("NZD", 2),
    ("PLN", 2),
    ("SEK", 2),
    ("USD", 2),
];

impl Currency {
    pub const GBP: Currency = Currency("GBP", 2);
    pub const EUR: Currency = Currency("EUR", 2);
    pub const USD: Currency = Currency("USD", 2);

    pub fn parse(code: &str) -> Result<Self, Invalid> {
        let upper = code.trim().to_ascii_uppercase();
        KNOWN
            .iter()
            .find(|(c, _)| *c == upper)
            .map(|(c, e)| Currency(c, *e))
            .ok_or_else(|| Invalid::new("currency", format!("unknown ISO 4217 currency {code:?}")))
    }

    pub fn code(self) -> &'static str {
        self.0
    }

    /// Every currency the shop knows, in code order (search keeps one price column each).
    pub fn known() -> impl Iterator<Item = Currency> {
        KNOWN.iter().map(|(c, e)| Currency(c, *e))
    }

    /// Digits after the decimal point: GBP 2, JPY 0, KWD 3.
    pub fn exponent(self) -> u8 {
        self.1
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl TryFrom<String> for Currency {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.0.to_owned()
    }
}

/// The largest amount accepted from outside: a trillion major units of a 3-exponent
/// currency. Keeps every sum of a realistic order far from `i64` overflow.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

/// An amount in minor units of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
pub struct Money {
    /// Minor units (pence, cents, yen).
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    /// A price: non-negative and within [`MAX_AMOUNT_MINOR`].
    pub fn price(amount_minor: i64, currency: Currency) -> Result<Self, Invalid> {
        if !(0..=MAX_AMOUNT_MINOR).contains(&amount_minor) {
            return Err(Invalid::new(
                "amount_minor",
                format!("must be between 0 and {MAX_AMOUNT_MINOR}"),
            ));
        }
        Ok(Self {
            amount_minor,
            currency,
        })
    }

    /// "12.34 GBP", "1200 JPY", "1.250 KWD".
    pub fn display(&self) -> String {
        let exp = u32::from(self.currency.exponent());
        if exp == 0 {
            return format!("{} {}", self.amount_minor, self.currency);
        }
        let unit = 10_i64.pow(exp);
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        let unit = unit.unsigned_abs();
        format!(
            "{sign}{}.{:0width$} {}",
            abs / unit,
            abs % unit,
            self.currency,
            width = exp as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_parse_case_insensitively_and_know_their_exponent() {
        assert_eq!(Currency::parse("gbp").map(Currency::exponent), Ok(2));
        assert_eq!(Currency::parse("JPY").map(Currency::exponent), Ok(0));
        assert_eq!(Currency::parse("KWD").map(Currency::exponent), Ok(3));
        assert!(Currency::parse("XYZ").is_err());
        assert!(Currency::parse("").is_err());
    }

    #[test]
    fn money_displays_with_the_currency_exponent() -> Result<(), Invalid> {
        assert_eq!(Money::price(1234, Currency::GBP)?.display(), "12.34 GBP");
        assert_eq!(
            Money::price(1200, Currency::parse("JPY")?)?.display(),
            "1200 JPY"
        );
        assert_eq!(
            Money::price(1250, Currency::parse("KWD")?)?.display(),
            "1.250 KWD"
        );
        assert_eq!(Money::price(5, Currency::EUR)?.display(), "0.05 EUR");
        Ok(())
    }

    #[test]
    fn prices_are_never_negative_or_absurd() {
        assert!(Money::price(-1, Currency::GBP).is_err());
        assert!(Money::price(MAX_AMOUNT_MINOR + 1, Currency::GBP).is_err());
        assert!(Money::price(i64::MAX, Currency::GBP).is_err());
    }
}
