//! The invariants, checked against the database after every operation.

use std::collections::{BTreeMap, BTreeSet};

use emporium_store::{inventory as inventory_store, reservations as reservation_store};
use uuid::Uuid;

use super::model::Line;
use super::world::World;
use super::{LOCATIONS, SKUS};

impl World {
    /// Every invariant; the first broken one, described.
    pub async fn check(&self) -> Result<(), String> {
        self.check_levels().await?;
        self.check_reservations().await?;
        self.check_holds().await?;
        let db = &self.app.shop.db;
        let mismatches = inventory_store::ledger_mismatches(db).await.unwrap();
        if !mismatches.is_empty() {
            return Err(format!("on hand differs from the ledger: {mismatches:?}"));
        }
        self.app.assert_stock_equation().await;
        Ok(())
    }

    /// Per level: never negative, never less on hand than reserved, and as the model says.
    async fn check_levels(&self) -> Result<(), String> {
        for (sku, variant) in self.variants.iter().enumerate() {
            let mut found = BTreeMap::new();
            for row in inventory_store::levels(&self.app.shop.db, *variant)
                .await
                .unwrap()
            {
                if row.on_hand < 0 || row.reserved < 0 || row.reserved > row.on_hand {
                    return Err(format!("{} at {}: level {row:?}", SKUS[sku], row.code));
                }
                let loc = self.location_index(row.location_id)?;
                found.insert(loc, (row.on_hand, row.reserved));
            }
            for (loc, code) in LOCATIONS.iter().enumerate() {
                let db = found.get(&loc).copied().unwrap_or((0, 0));
                let model = (self.model.on_hand(sku, loc), self.model.reserved(sku, loc));
                if db != model {
                    return Err(format!(
                        "{} at {code}: (on hand, reserved) is {db:?}, the model says {model:?}",
                        SKUS[sku]
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every reservation as the model has it (status, deadline, lines by location); at most
    /// one active per customer and SKU; and no other reservation holds units (active lines
    /// add up to the model's).
    async fn check_reservations(&self) -> Result<(), String> {
        let db = &self.app.shop.db;
        let mut active = BTreeSet::new();
        for (i, r) in self.model.reservations.iter().enumerate() {
            let (row, lines) = reservation_store::find_reservation(db, self.users[r.user].0, r.id)
                .await
                .unwrap()
                .ok_or_else(|| format!("r{i} is missing"))?;
            let mut stored = Vec::new();
            for l in &lines {
                let sku = self.variants.iter().position(|v| *v == l.variant_id);
                let sku =
                    sku.ok_or_else(|| format!("r{i} holds unknown variant {}", l.variant_id))?;
                let loc = self.location_index(l.location_id)?;
                stored.push(Line {
                    sku,
                    loc,
                    qty: l.quantity,
                });
            }
            let mut expected = r.lines.clone();
            stored.sort_unstable();
            expected.sort_unstable();
            if row.status != r.status || row.expires_at != r.expires_at || stored != expected {
                return Err(format!(
                    "r{i} is {row:?} with {stored:?}, the model has {r:?}"
                ));
            }
            let skus: BTreeSet<usize> = stored.iter().map(|l| l.sku).collect();
            for sku in skus.into_iter().filter(|_| row.status == "active") {
                if !active.insert((r.user, sku)) {
                    return Err(format!(
                        "user {} holds two active reservations of {}",
                        r.user, SKUS[sku]
                    ));
                }
            }
        }
        let (_, _, held, earmarked) = reservation_store::stock_totals(db).await.unwrap();
        let model: i64 = self
            .model
            .active()
            .flat_map(|r| &r.lines)
            .map(|l| l.qty)
            .sum();
        if (held, earmarked) != (model, 0) {
            return Err(format!(
                "active lines hold {held} units (sales {earmarked}), the model {model}"
            ));
        }
        Ok(())
    }

    /// A hold exists exactly for each (customer, SKU) of an active reservation, naming it.
    async fn check_holds(&self) -> Result<(), String> {
        let pairs: Vec<(Uuid, Uuid)> = self
            .users
            .iter()
            .flat_map(|u| self.variants.iter().map(|v| (u.0, *v)))
            .collect();
        // A write transaction only because the engine's query takes one; dropped, it rolls back.
        let mut tx = self.app.shop.db.begin().await.unwrap();
        let holds = reservation_store::find_holds(&mut tx, &pairs)
            .await
            .unwrap();
        drop(tx);
        let found: BTreeSet<(Uuid, Uuid, Uuid)> = holds
            .iter()
            .map(|h| (h.user_id, h.variant_id, h.reservation_id))
            .collect();
        let expected: BTreeSet<(Uuid, Uuid, Uuid)> = self
            .model
            .active()
            .flat_map(|r| {
                r.lines
                    .iter()
                    .map(|l| (self.users[r.user].0, self.variants[l.sku], r.id))
            })
            .collect();
        if found != expected || holds.len() != found.len() {
            return Err(format!(
                "holds are {holds:?}, the model expects {expected:?}"
            ));
        }
        Ok(())
    }
}
