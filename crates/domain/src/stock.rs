//! Stock rules (the stock half of inventory; reservation rules live in `inventory`): location
//! codes, quantities and adjustments within bounds, reasons, low-stock thresholds, the kinds
//! of ledger entries, and when a change crosses into low stock.

use serde::Serialize;

use crate::Invalid;
use crate::identity::text;

/// No single quantity, adjustment or threshold may exceed this many units.
pub const MAX_UNITS: i64 = 1_000_000_000;

/// A stock location's code: 1-32 characters of `a-z 0-9 - _`, stored lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct LocationCode(String);

impl LocationCode {
    /// The location stock goes to when a request names none.
    pub const MAIN: &str = "main";
    /// The name the main location gets when it is created on demand.
    pub const MAIN_NAME: &str = "Main warehouse";

    pub fn parse(field: &str, raw: &str) -> Result<Self, Invalid> {
        let code = raw.trim().to_ascii_lowercase();
        let ok = !code.is_empty()
            && code.len() <= 32
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b));
        if ok {
            Ok(Self(code))
        } else {
            Err(Invalid::new(
                field,
                "must be 1-32 characters of letters, digits, '-' or '_'",
            ))
        }
    }

    pub fn main() -> Self {
        Self(Self::MAIN.to_owned())
    }

    pub fn is_main(&self) -> bool {
        self.0 == Self::MAIN
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A positive number of units: 1 to [`MAX_UNITS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(i64);

impl Quantity {
    pub fn parse(field: &str, raw: i64) -> Result<Self, Invalid> {
        if (1..=MAX_UNITS).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(Invalid::new(
                field,
                format!("must be between 1 and {MAX_UNITS}"),
            ))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A signed, non-zero correction of on-hand units: at most [`MAX_UNITS`] either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adjustment(i64);

impl Adjustment {
    pub fn parse(field: &str, raw: i64) -> Result<Self, Invalid> {
        if raw != 0 && (-MAX_UNITS..=MAX_UNITS).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(Invalid::new(
                field,
                format!("must be non-zero and between -{MAX_UNITS} and {MAX_UNITS}"),
            ))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// Why stock changed, for the ledger: 1-500 characters of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        text("reason", raw, 1, 500).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// At or below this many available units a SKU is low on stock: 0 to [`MAX_UNITS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold(i64);

impl Threshold {
    pub fn parse(raw: i64) -> Result<Self, Invalid> {
        if (0..=MAX_UNITS).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(Invalid::new(
                "low_stock_threshold",
                format!("must be between 0 and {MAX_UNITS}, or null"),
            ))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// Whether a SKU is low on stock: it has a threshold and at most that many units available.
pub fn is_low(available: i64, threshold: Option<Threshold>) -> bool {
    threshold.is_some_and(|t| available <= t.0)
}

/// Whether a change runs a SKU low: low after it and not before, as `(available,
/// threshold)` pairs. Staying low is not a new crossing, so a SKU is reported once each time
/// it runs low. With the threshold unchanged this is available units falling from above the
/// threshold to at or below it; a threshold raised above what is available also counts.
pub fn runs_low(before: (i64, Option<Threshold>), after: (i64, Option<Threshold>)) -> bool {
    !is_low(before.0, before.1) && is_low(after.0, after.1)
}

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovementKind {
    /// Goods arrived.
    Receive,
    /// A correction after a count, damage or loss.
    Adjust,
    /// The leaving half of a transfer between locations.
    TransferOut,
    /// The arriving half of a transfer between locations.
    TransferIn,
}

impl MovementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receive => "receive",
            Self::Adjust => "adjust",
            Self::TransferOut => "transfer_out",
            Self::TransferIn => "transfer_in",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_positive_and_bounded() {
        assert_eq!(Quantity::parse("q", 1).map(Quantity::get), Ok(1));
        assert!(Quantity::parse("q", MAX_UNITS).is_ok());
        for bad in [0, -1, MAX_UNITS + 1, i64::MIN, i64::MAX] {
            assert!(Quantity::parse("q", bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn adjustments_are_signed_non_zero_and_bounded() {
        assert_eq!(Adjustment::parse("q", -3).map(Adjustment::get), Ok(-3));
        for bad in [0, -MAX_UNITS - 1, MAX_UNITS + 1, i64::MIN] {
            assert!(Adjustment::parse("q", bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn location_codes_are_normalized_and_restricted() {
        assert_eq!(
            LocationCode::parse("location", " Leeds-2 ").map(|c| c.0),
            Ok("leeds-2".to_owned())
        );
        for bad in ["", "a b", "x'; --", &"a".repeat(33), "ü"] {
            assert!(
                LocationCode::parse("location", bad).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn a_sku_runs_low_only_when_crossing_from_above() {
        let t = Some(Threshold(5));
        assert!(runs_low((6, t), (5, t)));
        assert!(runs_low((100, t), (0, t)));
        assert!(!runs_low((5, t), (4, t)), "already low");
        assert!(!runs_low((3, t), (8, t)), "going up");
        assert!(!runs_low((9, t), (6, t)), "still above");
        assert!(!runs_low((9, None), (0, None)), "no threshold");
        assert!(
            runs_low((3, None), (3, t)),
            "a threshold set above what is available"
        );
        assert!(!runs_low((3, Some(Threshold(4))), (3, t)), "already low");
    }
}
