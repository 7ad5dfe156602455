//! The model: what the shop should hold after each operation, and what each answer should
//! be. Reserved units and holds are derived from the active reservations.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use emporium_shop::ShopError;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{LOCATIONS, SKUS};

/// What an operation comes to: done, or which error.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    /// A conflict's code and details (`{}` when it has none).
    Conflict(&'static str, Value),
    NotFound(&'static str),
}

/// Compares the answer with the prediction; `what` describes the operation.
pub fn answered_as<T>(
    what: &str,
    result: &Result<T, ShopError>,
    predicted: &Outcome,
) -> Result<(), String> {
    let got = match result {
        Ok(_) => Outcome::Done,
        Err(ShopError::ConflictDetails { code, details, .. }) => {
            Outcome::Conflict(code, Value::Object(details.clone()))
        }
        Err(ShopError::Conflict { code, .. }) => Outcome::Conflict(code, json!({})),
        Err(ShopError::NotFound(what)) => Outcome::NotFound(what),
        Err(other) => return Err(format!("{what}: unexpected error {other:?}")),
    };
    if got == *predicted {
        Ok(())
    } else {
        Err(format!("{what}: predicted {predicted:?}, got {got:?}"))
    }
}

/// Units of one SKU at one location (indexes into `SKUS` and `LOCATIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Line {
    pub sku: usize,
    pub loc: usize,
    pub qty: i64,
}

/// A reservation the shop granted.
#[derive(Debug, Clone)]
pub struct Known {
    pub id: Uuid,
    pub user: usize,
    /// active, released, committed or expired.
    pub status: &'static str,
    pub expires_at: DateTime<Utc>,
    pub lines: Vec<Line>,
}

#[derive(Debug, Default)]
pub struct Model {
    pub on_hand: BTreeMap<(usize, usize), i64>,
    /// In the order they were granted: `r0`, `r1`, ... in traces.
    pub reservations: Vec<Known>,
}

impl Model {
    pub fn active(&self) -> impl Iterator<Item = &Known> {
        self.reservations.iter().filter(|r| r.status == "active")
    }

    pub fn on_hand(&self, sku: usize, loc: usize) -> i64 {
        self.on_hand.get(&(sku, loc)).copied().unwrap_or(0)
    }

    pub fn add_on_hand(&mut self, sku: usize, loc: usize, delta: i64) {
        *self.on_hand.entry((sku, loc)).or_default() += delta;
    }

    pub fn reserved(&self, sku: usize, loc: usize) -> i64 {
        self.active()
            .flat_map(|r| &r.lines)
            .filter(|l| (l.sku, l.loc) == (sku, loc))
            .map(|l| l.qty)
            .sum()
    }

    pub fn available(&self, sku: usize, loc: usize) -> i64 {
        self.on_hand(sku, loc) - self.reserved(sku, loc)
    }

    /// The active reservation of `user` that holds `sku`.
    pub fn hold(&self, user: usize, sku: usize) -> Option<&Known> {
        self.active()
            .find(|r| r.user == user && r.lines.iter().any(|l| l.sku == sku))
    }

    /// A reservation is refused first when a SKU is held (the first such line in request
    /// order), then when a SKU is short: the one with the lowest variant id is named, with
    /// what is available of it.
    pub fn predict_reserve(
        &self,
        user: usize,
        lines: &[(usize, i64)],
        variants: &[Uuid],
    ) -> Outcome {
        if let Some((sku, held)) = lines
            .iter()
            .find_map(|(s, _)| self.hold(user, *s).map(|r| (*s, r.id)))
        {
            let details = json!({"sku": SKUS[sku], "reservation_id": held});
            return Outcome::Conflict("already_reserved", details);
        }
        let mut by_variant = lines.to_vec();
        by_variant.sort_by_key(|(s, _)| variants[*s]);
        for (sku, qty) in by_variant {
            let available: i64 = (0..LOCATIONS.len())
                .map(|loc| self.available(sku, loc))
                .sum();
            if available < qty {
                let details = json!({"sku": SKUS[sku], "available": available});
                return Outcome::Conflict("out_of_stock", details);
            }
        }
        Outcome::Done
    }

    /// Checks how a granted line of `qty` units of `sku` was allocated, as `(location,
    /// units)`: at distinct locations, each within what is available there, the fullest
    /// location first and split only when no location has enough. Compared as (available,
    /// taken) pairs, so a tie between locations may go either way.
    pub fn check_allocation(
        &self,
        sku: usize,
        qty: i64,
        taken: &[(usize, i64)],
    ) -> Result<(), String> {
        let mut got: Vec<(i64, i64)> = taken
            .iter()
            .map(|(loc, n)| (self.available(sku, *loc), *n))
            .collect();
        let mut available: Vec<i64> = (0..LOCATIONS.len())
            .map(|loc| self.available(sku, loc))
            .collect();
        available.sort_unstable_by(|a, b| b.cmp(a));
        let mut rule = Vec::new();
        let mut left = qty;
        for a in available.into_iter().filter(|a| *a > 0) {
            if left > 0 {
                rule.push((a, a.min(left)));
                left -= a.min(left);
            }
        }
        got.sort_unstable();
        rule.sort_unstable();
        let mut locations: Vec<usize> = taken.iter().map(|(loc, _)| *loc).collect();
        locations.sort_unstable();
        locations.dedup();
        if got != rule || locations.len() != taken.len() {
            return Err(format!(
                "{qty} {} allocated as {taken:?}, i.e. (available, taken) {got:?}; the rule gives {rule:?}",
                SKUS[sku]
            ));
        }
        Ok(())
    }

    /// Reservation `i` as `caller` should see a change of it: only its owner may, and only
    /// an active one changes.
    pub fn predict_change(&self, i: usize, caller: usize) -> Outcome {
        let r = &self.reservations[i];
        if caller != r.user {
            Outcome::NotFound("reservation")
        } else if r.status != "active" {
            Outcome::Conflict(
                "reservation_not_active",
                json!({"reservation_status": r.status}),
            )
        } else {
            Outcome::Done
        }
    }
}
