//! Pricing rules: currency conversion, coupons, tax and the totals of a cart or order.
//!
//! All arithmetic is on integer minor units (in `i128` where a product could overflow), and
//! every division rounds half away from zero, once, at a stated place. A total is always the
//! sum of its parts: discounts and tax are allocated to lines so that the lines add up to
//! the order exactly.

use serde::{Deserialize, Serialize};

use crate::Invalid;
use crate::money::Currency;

/// An exchange rate: units of the quote currency per unit of the base currency, as an
/// integer scaled by 10^9 (never a float).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FxRate(i64);

pub const FX_SCALE: i64 = 1_000_000_000;

impl FxRate {
    /// Parses a decimal such as `"1.1634"` or `"187.5"` (at most 9 decimals, 0 < rate < 10^9).
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let bad = || Invalid::new("rate", "must be a positive decimal with at most 9 decimals");
        let s = s.trim();
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if whole.is_empty()
            || whole.len() > 9
            || frac.len() > 9
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let whole: i64 = whole.parse().map_err(|_| bad())?;
        let frac_scaled: i64 = if frac.is_empty() {
            0
        } else {
            let digits: i64 = frac.parse().map_err(|_| bad())?;
            digits * 10_i64.pow(9 - u32::try_from(frac.len()).map_err(|_| bad())?)
        };
        let e9 = whole * FX_SCALE + frac_scaled;
        if e9 <= 0 {
            return Err(bad());
        }
        Ok(Self(e9))
    }

    pub fn from_e9(e9: i64) -> Result<Self, Invalid> {
        if e9 > 0 {
            Ok(Self(e9))
        } else {
            Err(Invalid::new("rate", "must be positive"))
        }
    }

    pub const ONE: FxRate = FxRate(FX_SCALE);

    pub fn e9(self) -> i64 {
        self.0
    }

    /// The rate as a decimal string, without trailing zeros.
    pub fn display(self) -> String {
        let whole = self.0 / FX_SCALE;
        let frac = self.0 % FX_SCALE;
        if frac == 0 {
            return whole.to_string();
        }
        let frac = format!("{frac:09}");
        format!("{whole}.{}", frac.trim_end_matches('0'))
    }
}

/// `numerator / denominator`, rounded half away from zero.
pub fn div_round(numerator: i128, denominator: i128) -> i128 {
    if denominator == 0 {
        return 0;
    }
    let (n, d) = if denominator < 0 {
        (-numerator, -denominator)
    } else {
        (numerator, denominator)
    };
    if n >= 0 {
        (n + d / 2) / d
    } else {
        -((-n + d / 2) / d)
    }
}

fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Converts an amount from one currency to another at `rate` (units of `to` per unit of
/// `from`), rounding to the minor unit of `to` (JPY 0 decimals, GBP 2, KWD 3).
pub fn convert(amount_minor: i64, from: Currency, to: Currency, rate: FxRate) -> i64 {
    let up = 10_i128.pow(u32::from(to.exponent()));
    let down = 10_i128.pow(u32::from(from.exponent())) * i128::from(FX_SCALE);
    clamp_i64(div_round(
        i128::from(amount_minor) * i128::from(rate.0) * up,
        down,
    ))
}

/// `amount × basis_points / 10,000`, rounded.
pub fn share(amount_minor: i64, basis_points: i64) -> i64 {
    clamp_i64(div_round(
        i128::from(amount_minor) * i128::from(basis_points),
        10_000,
    ))
}

/// Splits `total` over `weights` in proportion, largest remainder first, so the parts add
/// up to `total` exactly.
pub fn allocate(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if sum <= 0 || weights.is_empty() {
        let mut out = vec![0; weights.len()];
        if let Some(first) = out.first_mut() {
            *first = total;
        }
        return out;
    }
    let mut parts: Vec<(usize, i64, i128)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let exact = i128::from(total) * i128::from(*w);
            (i, clamp_i64(exact / sum), exact % sum)
        })
        .collect();
    let mut left = total - parts.iter().map(|p| p.1).sum::<i64>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|a, b| parts[*b].2.cmp(&parts[*a].2).then(a.cmp(b)));
    for i in order.into_iter().cycle().take(parts.len() * 2) {
        if left == 0 {
            break;
        }
        parts[i].1 += left.signum();
        left -= left.signum();
    }
    parts.into_iter().map(|p| p.1).collect()
}

/// What a coupon takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CouponValue {
    /// A share of the (remaining) subtotal, in basis points (1,000 = 10%).
    Percent(i64),
    /// A fixed amount in the cart's currency.
    Fixed(i64),
}

/// A coupon as it applies to one cart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponRule {
    pub code: String,
    pub value: CouponValue,
    /// The subtotal the cart must reach (in the cart's currency).
    pub min_subtotal_minor: i64,
    pub stackable: bool,
}

/// How a shop states its prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxMode {
    /// Prices include tax (UK and EU retail): tax is the part of the price that is tax.
    Inclusive,
    /// Prices exclude tax (US retail): tax is added on top.
    Exclusive,
}

/// The input of a quote, all amounts in one currency.
#[derive(Debug, Clone)]
pub struct QuoteInput<'a> {
    /// `unit price × quantity` per line.
    pub line_totals: &'a [i64],
    pub coupons: &'a [CouponRule],
    pub shipping_minor: i64,
    pub tax_basis_points: i64,
    pub tax_mode: TaxMode,
}

/// A priced cart or order. `total = subtotal - discount + shipping (+ tax when exclusive)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub subtotal_minor: i64,
    /// (code, amount) per applied coupon.
    pub discounts: Vec<(String, i64)>,
    pub discount_minor: i64,
    pub shipping_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
    /// Per line: its share of the discount and of the tax.
    pub line_discounts: Vec<i64>,
    pub line_taxes: Vec<i64>,
}

/// Why a coupon does not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CouponRefusal {
    BelowMinimum {
        code: String,
        min_subtotal_minor: i64,
    },
    NotStackable {
        code: String,
    },
}

/// Prices a cart: coupons in the given order (each on what is left after the previous),
/// then shipping, then tax on the discounted lines and on shipping.
pub fn quote(input: &QuoteInput<'_>) -> Result<Quote, CouponRefusal> {
    let subtotal: i64 = input.line_totals.iter().sum();
    if input.coupons.len() > 1
        && let Some(c) = input.coupons.iter().find(|c| !c.stackable)
    {
        return Err(CouponRefusal::NotStackable {
            code: c.code.clone(),
        });
    }
    let mut discounts = Vec::new();
    let mut remaining = subtotal;
    for c in input.coupons {
        if subtotal < c.min_subtotal_minor {
            return Err(CouponRefusal::BelowMinimum {
                code: c.code.clone(),
                min_subtotal_minor: c.min_subtotal_minor,
            });
        }
        let off = match c.value {
            CouponValue::Percent(bp) => share(remaining, bp),
            CouponValue::Fixed(amount) => amount,
        }
        .clamp(0, remaining);
        remaining -= off;
        discounts.push((c.code.clone(), off));
    }
    let discount = subtotal - remaining;
    let line_discounts = allocate(discount, input.line_totals);
    let taxable: Vec<i64> = input
        .line_totals
        .iter()
        .zip(&line_discounts)
        .map(|(t, d)| t - d)
        .collect();
    let tax_of = |amount: i64| match input.tax_mode {
        TaxMode::Exclusive => share(amount, input.tax_basis_points),
        TaxMode::Inclusive => {
            amount
                - clamp_i64(div_round(
                    i128::from(amount) * 10_000,
                    10_000 + i128::from(input.tax_basis_points),
                ))
        }
    };
    let line_taxes: Vec<i64> = taxable.iter().map(|a| tax_of(*a)).collect();
    let tax = line_taxes.iter().sum::<i64>() + tax_of(input.shipping_minor);
    let total = remaining
        + input.shipping_minor
        + match input.tax_mode {
            TaxMode::Exclusive => tax,
            TaxMode::Inclusive => 0,
        };
    Ok(Quote {
        subtotal_minor: subtotal,
        discounts,
        discount_minor: discount,
        shipping_minor: input.shipping_minor,
        tax_minor: tax,
        total_minor: total,
        line_discounts,
        line_taxes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn currency(code: &str) -> Currency {
        Currency::parse(code).unwrap_or(Currency::GBP)
    }

    #[test]
    fn conversion_rounds_to_the_minor_unit_of_the_target() {
        let rate = FxRate::parse("187.456").unwrap_or(FxRate::ONE);
        // £12.34 at 187.456 JPY/GBP = 2313.21 yen → 2313 (no minor unit).
        assert_eq!(convert(1234, currency("GBP"), currency("JPY"), rate), 2313);
        // £10.00 at 0.38125 KWD/GBP = 3.8125 KWD → 3.813 (3 decimals, half away from zero).
        let kwd = FxRate::parse("0.38125").unwrap_or(FxRate::ONE);
        assert_eq!(convert(1000, currency("GBP"), currency("KWD"), kwd), 3813);
        // ¥1000 at 0.0053 GBP/JPY = £5.30.
        let back = FxRate::parse("0.0053").unwrap_or(FxRate::ONE);
        assert_eq!(convert(1000, currency("JPY"), currency("GBP"), back), 530);
    }

    #[test]
    fn rates_parse_exactly_and_refuse_nonsense() {
        assert_eq!(FxRate::parse("1.1634").map(FxRate::e9), Ok(1_163_400_000));
        assert_eq!(FxRate::parse("2").map(FxRate::display), Ok("2".to_owned()));
        assert_eq!(
            FxRate::parse("0.000000001").map(FxRate::display),
            Ok("0.000000001".to_owned())
        );
        for bad in [
            "",
            "0",
            "-1.2",
            "1e3",
            "1.2.3",
            "abc",
            "1.0000000001",
            "NaN",
        ] {
            assert!(FxRate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn inclusive_tax_is_the_tax_part_of_the_price() {
        let q = quote(&QuoteInput {
            line_totals: &[1200],
            coupons: &[],
            shipping_minor: 0,
            tax_basis_points: 2000,
            tax_mode: TaxMode::Inclusive,
        });
        let q = q.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((q.tax_minor, q.total_minor), (200, 1200));
    }

    #[test]
    fn coupons_stack_only_when_all_allow_it() {
        let c = |code: &str, stackable| CouponRule {
            code: code.into(),
            value: CouponValue::Percent(1000),
            min_subtotal_minor: 0,
            stackable,
        };
        let input = |coupons: &[CouponRule]| {
            quote(&QuoteInput {
                line_totals: &[1000, 3000],
                coupons,
                shipping_minor: 500,
                tax_basis_points: 1000,
                tax_mode: TaxMode::Exclusive,
            })
        };
        assert!(matches!(
            input(&[c("A", true), c("B", false)]),
            Err(CouponRefusal::NotStackable { .. })
        ));
        let q = input(&[c("A", true), c("B", true)]).unwrap_or_else(|e| panic!("{e:?}"));
        // 10% of 4000 = 400, then 10% of 3600 = 360.
        assert_eq!(q.discount_minor, 760);
        assert_eq!(q.line_discounts.iter().sum::<i64>(), 760);
        assert_eq!(q.tax_minor, 324 + 50);
        assert_eq!(q.total_minor, 3240 + 500 + 374);
    }

    proptest! {
        #[test]
        fn allocation_adds_up_exactly(total in -1_000_000i64..1_000_000, weights in proptest::collection::vec(0i64..100_000, 1..20)) {
            let parts = allocate(total, &weights);
            prop_assert_eq!(parts.len(), weights.len());
            prop_assert_eq!(parts.iter().sum::<i64>(), total);
        }

        #[test]
        fn a_quote_is_the_sum_of_its_parts(
            lines in proptest::collection::vec(1i64..10_000_000, 1..10),
            percent in 0i64..=10_000,
            fixed in 0i64..100_000_000,
            shipping in 0i64..100_000,
            tax in 0i64..5_000,
            inclusive in any::<bool>(),
        ) {
            let coupons = [
                CouponRule { code: "P".into(), value: CouponValue::Percent(percent), min_subtotal_minor: 0, stackable: true },
                CouponRule { code: "F".into(), value: CouponValue::Fixed(fixed), min_subtotal_minor: 0, stackable: true },
            ];
            let mode = if inclusive { TaxMode::Inclusive } else { TaxMode::Exclusive };
            let q = quote(&QuoteInput { line_totals: &lines, coupons: &coupons, shipping_minor: shipping, tax_basis_points: tax, tax_mode: mode });
            let q = q.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert!(q.discount_minor >= 0 && q.discount_minor <= q.subtotal_minor);
            prop_assert_eq!(q.line_discounts.iter().sum::<i64>(), q.discount_minor);
            prop_assert!(q.tax_minor >= 0);
            let expected = q.subtotal_minor - q.discount_minor + q.shipping_minor + if inclusive { 0 } else { q.tax_minor };
            prop_assert_eq!(q.total_minor, expected);
            prop_assert!(q.total_minor >= 0);
        }
    }
}
