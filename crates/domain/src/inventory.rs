//! Reservation rules: how a request for several SKUs is allocated over stock locations.
//! All-or-nothing per request; requests are served first come, first served.

use std::collections::BTreeMap;

use uuid::Uuid;

/// Units a request wants of one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub variant: Uuid,
    pub quantity: i64,
}

/// Units taken from one location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    pub variant: Uuid,
    pub location: Uuid,
    pub quantity: i64,
}

/// Available units per variant and location, as read under lock.
#[derive(Debug, Clone, Default)]
pub struct Availability(BTreeMap<Uuid, Vec<(Uuid, i64)>>);

impl Availability {
    pub fn add(&mut self, variant: Uuid, location: Uuid, available: i64) {
        self.0
            .entry(variant)
            .or_default()
            .push((location, available.max(0)));
    }

    pub fn total(&self, variant: Uuid) -> i64 {
        self.0
            .get(&variant)
            .map_or(0, |l| l.iter().map(|(_, a)| a).sum())
    }

    /// Takes every want of one request, or nothing: on a shortage, returns the first short
    /// variant and what it has available, and leaves the availability unchanged. Each want is
    /// filled from the locations with the most units first, so lines split as little as
    /// possible.
    pub fn take_all(&mut self, wants: &[Want]) -> Result<Vec<Take>, (Uuid, i64)> {
        let mut needed: BTreeMap<Uuid, i64> = BTreeMap::new();
        for w in wants {
            *needed.entry(w.variant).or_default() += w.quantity;
        }
        if let Some((variant, _)) = needed.iter().find(|(v, q)| self.total(**v) < **q) {
            return Err((*variant, self.total(*variant)));
        }
        let mut takes = Vec::new();
        for (variant, mut quantity) in needed {
            let Some(locations) = self.0.get_mut(&variant) else {
                continue;
            };
            locations.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            for (location, available) in locations.iter_mut() {
                if quantity == 0 {
                    break;
                }
                let n = quantity.min(*available);
                if n > 0 {
                    *available -= n;
                    quantity -= n;
                    takes.push(Take {
                        variant,
                        location: *location,
                        quantity: n,
                    });
                }
            }
        }
        Ok(takes)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_line_is_split_over_locations_when_one_is_not_enough() {
        let (v, a, b) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut stock = Availability::default();
        stock.add(v, a, 3);
        stock.add(v, b, 5);
        let takes = stock
            .take_all(&[Want {
                variant: v,
                quantity: 7,
            }])
            .unwrap_or_default();
        assert_eq!(takes.iter().map(|t| t.quantity).sum::<i64>(), 7);
        assert_eq!(
            takes[0],
            Take {
                variant: v,
                location: b,
                quantity: 5
            }
        );
        assert_eq!(stock.total(v), 1);
    }

    #[test]
    fn a_short_line_takes_nothing_of_any_line() {
        let (v, w, loc) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut stock = Availability::default();
        stock.add(v, loc, 10);
        stock.add(w, loc, 1);
        let short = stock.take_all(&[
            Want {
                variant: v,
                quantity: 2,
            },
            Want {
                variant: w,
                quantity: 2,
            },
        ]);
        assert_eq!(short, Err((w, 1)));
        assert_eq!((stock.total(v), stock.total(w)), (10, 1));
    }

    proptest! {
        #[test]
        fn takes_never_exceed_what_is_available(
            stock in proptest::collection::vec(0i64..20, 1..4),
            requests in proptest::collection::vec(proptest::collection::vec((0usize..3, 1i64..8), 1..3), 1..30),
        ) {
            let variants: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
            let locations: Vec<Uuid> = stock.iter().map(|_| Uuid::now_v7()).collect();
            let mut avail = Availability::default();
            for v in &variants {
                for (l, s) in locations.iter().zip(&stock) {
                    avail.add(*v, *l, *s);
                }
            }
            let start: i64 = stock.iter().sum();
            let mut taken = BTreeMap::<Uuid, i64>::new();
            for r in requests {
                let wants: Vec<Want> = r.iter().map(|(v, q)| Want { variant: variants[*v], quantity: *q }).collect();
                let before: Vec<i64> = variants.iter().map(|v| avail.total(*v)).collect();
                match avail.take_all(&wants) {
                    Ok(takes) => {
                        for want in &wants {
                            let got: i64 = takes.iter().filter(|t| t.variant == want.variant).map(|t| t.quantity).sum();
                            let asked: i64 = wants.iter().filter(|w| w.variant == want.variant).map(|w| w.quantity).sum();
                            prop_assert_eq!(got, asked);
                        }
                        for t in takes {
                            prop_assert!(t.quantity > 0);
                            *taken.entry(t.variant).or_default() += t.quantity;
                        }
                    }
                    Err((v, available)) => {
                        prop_assert_eq!(available, avail.total(v));
                        let after: Vec<i64> = variants.iter().map(|v| avail.total(*v)).collect();
                        prop_assert_eq!(before, after);
                    }
                }
            }
            for v in &variants {
                let t = taken.get(v).copied().unwrap_or(0);
                prop_assert!(t <= start);
                prop_assert_eq!(avail.total(*v), start - t);
            }
        }
    }
}
