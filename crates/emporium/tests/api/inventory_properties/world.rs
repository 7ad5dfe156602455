//! The shop under test, its fixtures, and one operation against it: each predicts its
//! answer from the model, runs, compares, then moves the model along.

use chrono::Duration;
use emporium_domain::catalog::Sku;
use emporium_domain::ids::UserId;
use emporium_domain::stock::{Adjustment, LocationCode, Quantity, Reason};
use emporium_shop::identity::{Actor, authenticate};
use emporium_shop::inventory::reservations::{self, ReservationView};
use emporium_shop::inventory::stock::{self, Correction, NewLocation, Receipt};
use emporium_store::inventory as inventory_store;
use serde_json::json;
use uuid::Uuid;

use super::model::{Known, Line, Model, Outcome, answered_as};
use super::{LOCATIONS, Op, Pick, SKUS, USERS};
use crate::helpers::TestApp;

pub struct World {
    pub app: TestApp,
    admin: Actor,
    pub users: Vec<UserId>,
    /// By SKU index.
    pub variants: Vec<Uuid>,
    /// By location index.
    pub locations: Vec<Uuid>,
    pub model: Model,
}

fn sku(index: usize) -> Sku {
    Sku::parse(SKUS[index]).unwrap()
}

/// None for the main location, as a request that names no location.
fn location(index: usize) -> Option<LocationCode> {
    (index > 0).then(|| LocationCode::parse("location", LOCATIONS[index]).unwrap())
}

impl World {
    /// An admin (who manages stock), `skus` products, both locations, `USERS` customers.
    pub async fn new(app: TestApp, skus: usize) -> Self {
        let token = app.admin().await;
        let admin = authenticate(&app.shop, &token).await.unwrap();
        let mut variants = Vec::new();
        for code in &SKUS[..skus] {
            let product = app.product(&token, code, code, 500).await;
            variants.push(
                product["variants"][0]["id"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
            );
        }
        stock::list_locations(&app.shop).await.unwrap(); // creates the main location
        let north = NewLocation {
            code: LocationCode::parse("code", LOCATIONS[1]).unwrap(),
            name: "North depot".to_owned(),
        };
        stock::create_location(&app.shop, &admin, north)
            .await
            .unwrap();
        let rows = inventory_store::list_locations(&app.shop.db).await.unwrap();
        let locations = LOCATIONS
            .iter()
            .map(|code| rows.iter().find(|r| r.code == *code).unwrap().id)
            .collect();
        let users = app.bulk_users(USERS).await;
        Self {
            app,
            admin,
            users,
            variants,
            locations,
            model: Model::default(),
        }
    }

    /// Runs one operation and checks its answer against the prediction; returns what
    /// happened, for the trace.
    pub async fn apply(&mut self, op: &Op) -> Result<String, String> {
        match op {
            Op::Receive { sku, loc, qty } => self.receive(*sku, *loc, *qty).await,
            Op::Adjust { sku, loc, delta } => self.adjust(*sku, *loc, *delta).await,
            Op::Reserve { user, lines, ttl } => self.reserve(*user, lines, *ttl).await,
            Op::Extend { pick, ttl } => match self.pick(pick) {
                Some((i, caller)) => self.extend(i, caller, *ttl).await,
                None => Ok("extend: nothing to pick".to_owned()),
            },
            Op::Release { pick } => match self.pick(pick) {
                Some((i, caller)) => self.end(i, caller, "released").await,
                None => Ok("release: nothing to pick".to_owned()),
            },
            Op::Commit { pick } => match self.pick(pick) {
                Some((i, caller)) => self.end(i, caller, "committed").await,
                None => Ok("commit: nothing to pick".to_owned()),
            },
            Op::Advance { secs } => self.advance(*secs).await,
        }
    }

    async fn receive(&mut self, sku: usize, loc: usize, qty: i64) -> Result<String, String> {
        let what = format!("receive {qty} {} at {}", SKUS[sku], LOCATIONS[loc]);
        let receipt = Receipt {
            quantity: Quantity::parse("quantity", qty).unwrap(),
            location: location(loc),
            reason: None,
        };
        let result = stock::receive(&self.app.shop, &self.admin, &self::sku(sku), receipt).await;
        answered_as(&what, &result, &Outcome::Done)?;
        self.model.add_on_hand(sku, loc, qty);
        Ok(what)
    }

    async fn adjust(&mut self, sku: usize, loc: usize, delta: i64) -> Result<String, String> {
        let what = format!("adjust {} at {} by {delta}", SKUS[sku], LOCATIONS[loc]);
        let available = self.model.available(sku, loc);
        let predicted = if delta < 0 && available < -delta {
            let details =
                json!({"sku": SKUS[sku], "location": LOCATIONS[loc], "available": available});
            Outcome::Conflict("insufficient_stock", details)
        } else {
            Outcome::Done
        };
        let correction = Correction {
            delta: Adjustment::parse("quantity", delta).unwrap(),
            location: location(loc),
            reason: Reason::parse("cycle count").unwrap(),
        };
        let result = stock::adjust(&self.app.shop, &self.admin, &self::sku(sku), correction).await;
        answered_as(&what, &result, &predicted)?;
        if predicted == Outcome::Done {
            self.model.add_on_hand(sku, loc, delta);
        }
        Ok(format!("{what}: {predicted:?}"))
    }

    async fn reserve(
        &mut self,
        user: usize,
        lines: &[(usize, i64)],
        ttl: i64,
    ) -> Result<String, String> {
        let asked: Vec<String> = lines
            .iter()
            .map(|(s, q)| format!("{q} {}", SKUS[*s]))
            .collect();
        let what = format!("user {user} reserves {} for {ttl} s", asked.join(" + "));
        let predicted = self.model.predict_reserve(user, lines, &self.variants);
        let wants = lines.iter().map(|(s, q)| (sku(*s), *q)).collect();
        let ttl = Duration::seconds(ttl);
        let result =
            reservations::reserve(&self.app.shop, self.users[user], wants, Some(ttl)).await;
        answered_as(&what, &result, &predicted)?;
        let Ok(view) = result else {
            return Ok(format!("{what}: {predicted:?}"));
        };
        let expires_at = self.app.shop.now() + ttl;
        if view.status != "active" || view.expires_at != expires_at {
            return Err(format!(
                "{what}: granted {view:?}, expected active until {expires_at}"
            ));
        }
        let lines = self
            .allocation(lines, &view)
            .map_err(|e| format!("{what}: {e}"))?;
        let id = view.id;
        self.model.reservations.push(Known {
            id,
            user,
            status: "active",
            expires_at,
            lines,
        });
        Ok(format!("{what}: r{}", self.model.reservations.len() - 1))
    }

    /// The lines of a grant, by location, once the model has checked the allocation.
    fn allocation(
        &self,
        asked: &[(usize, i64)],
        view: &ReservationView,
    ) -> Result<Vec<Line>, String> {
        if view.lines.len() != asked.len() {
            return Err(format!("granted {view:?}"));
        }
        let mut lines = Vec::new();
        for &(sku, qty) in asked {
            let line = view
                .lines
                .iter()
                .find(|l| l.sku == SKUS[sku] && l.quantity == qty)
                .ok_or_else(|| format!("no line of {qty} {} in {view:?}", SKUS[sku]))?;
            let mut taken = Vec::new();
            for a in &line.allocations {
                taken.push((self.location_index(a.location_id)?, a.quantity));
            }
            self.model.check_allocation(sku, qty, &taken)?;
            lines.extend(taken.into_iter().map(|(loc, qty)| Line { sku, loc, qty }));
        }
        Ok(lines)
    }

    /// The reservation picked (its index) and the caller.
    fn pick(&self, pick: &Pick) -> Option<(usize, usize)> {
        let all = 0..self.model.reservations.len();
        let active: Vec<usize> = all
            .clone()
            .filter(|i| self.model.reservations[*i].status == "active")
            .collect();
        let candidates: Vec<usize> = if pick.ended_too || active.is_empty() {
            all.collect()
        } else {
            active
        };
        if candidates.is_empty() {
            return None;
        }
        let i = candidates[pick.index.index(candidates.len())];
        let owner = self.model.reservations[i].user;
        Some((
            i,
            if pick.stranger {
                (owner + 1) % USERS
            } else {
                owner
            },
        ))
    }

    async fn extend(&mut self, i: usize, caller: usize, ttl: i64) -> Result<String, String> {
        let what = format!("user {caller} extends r{i} by {ttl} s from now");
        let predicted = self.model.predict_change(i, caller);
        let (id, ttl) = (self.model.reservations[i].id, Duration::seconds(ttl));
        let result = reservations::extend(&self.app.shop, self.users[caller], id, ttl).await;
        answered_as(&what, &result, &predicted)?;
        if let Ok(view) = result {
            let expires_at = self.app.shop.now() + ttl;
            if view.expires_at != expires_at {
                return Err(format!(
                    "{what}: due at {}, expected {expires_at}",
                    view.expires_at
                ));
            }
            self.model.reservations[i].expires_at = expires_at;
        }
        Ok(format!("{what}: {predicted:?}"))
    }

    /// Releases (`released`) or commits (`committed`) reservation `i`.
    async fn end(
        &mut self,
        i: usize,
        caller: usize,
        status: &'static str,
    ) -> Result<String, String> {
        let what = format!("user {caller} ends r{i} as {status}");
        let predicted = self.model.predict_change(i, caller);
        let (shop, user, id) = (
            &self.app.shop,
            self.users[caller],
            self.model.reservations[i].id,
        );
        let result = match status {
            "released" => reservations::release(shop, user, id).await,
            _ => reservations::commit(shop, user, id).await,
        };
        answered_as(&what, &result, &predicted)?;
        if let Ok(view) = result {
            if view.status != status {
                return Err(format!("{what}: answered status {}", view.status));
            }
            self.model.reservations[i].status = status;
            if status == "committed" {
                for l in self.model.reservations[i].lines.clone() {
                    self.model.add_on_hand(l.sku, l.loc, -l.qty);
                }
            }
        }
        Ok(format!("{what}: {predicted:?}"))
    }

    async fn advance(&mut self, secs: i64) -> Result<String, String> {
        self.app.clock.advance(Duration::seconds(secs));
        let now = self.app.shop.now();
        let due: Vec<usize> = (0..self.model.reservations.len())
            .filter(|i| {
                let r = &self.model.reservations[*i];
                r.status == "active" && r.expires_at <= now
            })
            .collect();
        let what = format!("advance {secs} s, expiring {due:?}");
        match reservations::expire_overdue(&self.app.shop, 1000).await {
            Ok(n) if n == due.len() => {}
            other => return Err(format!("{what}: the reaper answered {other:?}")),
        }
        for i in due {
            self.model.reservations[i].status = "expired";
        }
        Ok(what)
    }

    pub fn location_index(&self, id: Uuid) -> Result<usize, String> {
        self.locations
            .iter()
            .position(|l| *l == id)
            .ok_or_else(|| format!("unknown location {id}"))
    }
}
