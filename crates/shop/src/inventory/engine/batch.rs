//! One batch of the engine: lock, decide in memory, write, commit.
//!
//! [`grant`] locks the stock rows of the batch's SKUs and its sales and reads the buyers'
//! holds ([`Batch::lock`]), grants first come first served in memory ([`Batch::decide`]),
//! then writes one conditional update per SKU and location and per sale and every new row at
//! once ([`Batch::write`]), and commits.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use emporium_domain::inventory::{Availability, Want};
use emporium_store::reservations::batch::Statements;
use emporium_store::reservations::{self as store, FlashSaleRow, LineRow, ReservationRow};
use emporium_store::{Commit, Db, Writes};
use uuid::Uuid;

use super::{Attempt, EngineMode, Memory, Reply};
use crate::ShopError;
use crate::inventory::reservations::view;

/// The state of the batch's flash sales while it is granted.
struct SaleState {
    row: FlashSaleRow,
    /// Units each buyer holds of the sale, this batch's included.
    purchased: HashMap<Uuid, i64>,
    /// Units this batch granted, per buyer.
    granted: HashMap<Uuid, i64>,
}

/// A batch written and handed to the store's commit, not yet known durable.
pub(super) struct Granted {
    answers: Vec<Reply>,
    commit: Commit,
    /// Sales this batch sold out.
    sold_out: Vec<Uuid>,
    /// The earliest expiry among this batch's reservations.
    first_deadline: Option<DateTime<Utc>>,
}

impl Granted {
    /// The answers once the batch is durable; if it is lost, every attempt fails (none was
    /// granted).
    pub(super) async fn finish(self, memory: &Memory) -> Result<Vec<Reply>, ShopError> {
        self.commit.await?;
        for sale in self.sold_out {
            memory.mark_sold_out(sale);
        }
        if let Some(first) = self.first_deadline {
            memory.deadline(first);
        }
        Ok(self.answers)
    }
}

/// Locks, decides and writes one batch, and hands it to the store's commit: on SQLite the
/// writer's connection is free for the next batch before this one is durable.
pub(super) async fn grant(
    db: &Db,
    now: DateTime<Utc>,
    attempts: &[Attempt],
    mode: EngineMode,
) -> Result<Granted, ShopError> {
    // The naive design commits every attempt on its own; the engine's batches share the
    // store's group commit with the node's other writes.
    let mut tx = match mode {
        EngineMode::Naive => db.begin_solo().await?,
        EngineMode::Batched => db.begin().await?,
    };
    // Batches wait on every round trip under their locks and fold their statements; the
    // naive design's one-attempt transactions run faster with one statement per table.
    let statements = match mode {
        EngineMode::Naive => Statements::PerTable,
        EngineMode::Batched => Statements::Folded,
    };
    let mut batch = Batch::lock(&mut tx, statements, attempts, now).await?;
    let answers = attempts.iter().map(|a| batch.decide(a)).collect();
    batch.write(&mut tx, statements).await?;
    let commit = tx.hand_over().await?;
    Ok(Granted {
        answers,
        commit,
        sold_out: batch
            .sales
            .values()
            .filter(|s| s.row.remaining == 0)
            .map(|s| s.row.id)
            .collect(),
        first_deadline: batch.reservations.iter().map(|r| r.expires_at).min(),
    })
}

/// One batch between its locks and its commit: what it read under lock, what it has
/// granted so far in memory, and the rows it will write.
struct Batch {
    now: DateTime<Utc>,
    /// Available units per SKU and location, less what this batch granted.
    stock: Availability,
    /// Available units per SKU when the batch began, to tell when it took the last ones.
    had: Vec<(Uuid, i64)>,
    /// Active reservation per (user, SKU), including this batch's.
    holds: HashMap<(Uuid, Uuid), Uuid>,
    sales: HashMap<Uuid, SaleState>,
    /// Units this batch reserved per (SKU, location).
    reserved: HashMap<(Uuid, Uuid), i64>,
    reservations: Vec<ReservationRow>,
    lines: Vec<LineRow>,
    /// Carts of orders placed with grants that are open (read under lock) and not yet
    /// taken by an attempt of this batch.
    open_carts: HashMap<(Uuid, Uuid), i64>,
    /// The rows of the orders placed with this batch's grants, one set per order.
    then: Vec<Writes>,
}

impl Batch {
    /// Locks the stock rows of the batch's SKUs and its sales, and reads the buyers' holds.
    async fn lock(
        tx: &mut emporium_store::Tx,
        statements: Statements,
        attempts: &[Attempt],
        now: DateTime<Utc>,
    ) -> Result<Self, ShopError> {
        let mut variants: Vec<Uuid> = attempts
            .iter()
            .flat_map(|a| match a {
                Attempt::Stock { lines, .. } => lines.iter().map(|l| l.0).collect::<Vec<_>>(),
                Attempt::Flash { sale, .. } => vec![sale.variant_id],
            })
            .collect();
        variants.sort_unstable();
        variants.dedup();
        let mut sale_ids: Vec<Uuid> = attempts
            .iter()
            .filter_map(|a| match a {
                Attempt::Flash { sale, .. } => Some(sale.id),
                Attempt::Stock { .. } => None,
            })
            .collect();
        sale_ids.sort_unstable();
        sale_ids.dedup();
        let mut holds = Vec::new();
        let mut buyers = Vec::new();
        for attempt in attempts {
            match attempt {
                Attempt::Stock { user, lines, .. } => {
                    holds.extend(lines.iter().map(|l| (user.0, l.0)));
                }
                Attempt::Flash { user, sale, .. } => {
                    holds.push((user.0, sale.variant_id));
                    buyers.push((sale.id, user.0));
                }
            }
        }
        holds.sort_unstable();
        holds.dedup();
        buyers.sort_unstable();
        buyers.dedup();
        let carts: Vec<(Uuid, Uuid)> = attempts
            .iter()
            .filter_map(|a| match a {
                Attempt::Stock {
                    user,
                    then: Some(p),
                    ..
                } => Some((user.0, p.cart)),
                _ => None,
            })
            .collect();
        // Locking the stock rows first serializes every batch that touches these SKUs, on
        // any node, so holds and levels read below stay true until commit.
        let keys = store::batch::Keys {
            variants: &variants,
            sales: &sale_ids,
            holds: &holds,
            purchases: &buyers,
            carts: &carts,
        };
        let (locked, read) = store::batch::lock_and_read(tx, statements, &keys).await?;
        let mut stock = Availability::default();
        for level in &locked.levels {
            stock.add(
                level.variant_id,
                level.location_id,
                level.on_hand - level.reserved,
            );
        }
        let had = variants.iter().map(|v| (*v, stock.total(*v))).collect();
        let holds = read
            .holds
            .into_iter()
            .map(|h| ((h.user_id, h.variant_id), h.reservation_id))
            .collect();
        let mut sales: HashMap<Uuid, SaleState> = locked
            .sales
            .into_iter()
            .map(|row| {
                let state = SaleState {
                    row,
                    purchased: HashMap::new(),
                    granted: HashMap::new(),
                };
                (state.row.id, state)
            })
            .collect();
        for (sale, user, quantity) in read.purchases {
            if let Some(state) = sales.get_mut(&sale) {
                state.purchased.insert(user, quantity);
            }
        }
        let open_carts = read
            .carts
            .iter()
            .filter(|c| c.status == "open")
            .map(|c| ((c.user_id, c.id), c.version))
            .collect();
        Ok(Self {
            now,
            stock,
            had,
            holds,
            sales,
            reserved: HashMap::new(),
            reservations: Vec::new(),
            lines: Vec::new(),
            open_carts,
            then: Vec::new(),
        })
    }

    /// Grants one attempt in memory (first come, first served), or says why not.
    fn decide(&mut self, attempt: &Attempt) -> Reply {
        let (Attempt::Stock { user, ttl, .. } | Attempt::Flash { user, ttl, .. }) = attempt;
        let user = user.0;
        // A cart already checked out is told as such (the checkout then answers with its
        // order), before the hold that order's reservation may still be.
        let placement = match attempt {
            Attempt::Stock { then, .. } => then.as_deref(),
            Attempt::Flash { .. } => None,
        };
        if let Some(p) = placement {
            match self.open_carts.get(&(user, p.cart)) {
                None => {
                    return Err(ShopError::conflict(
                        "already_checked_out",
                        "the cart is not open any more",
                    ));
                }
                Some(&version) if version != p.cart_version => {
                    return Err(crate::cart::changed_during_checkout());
                }
                Some(_) => {}
            }
        }
        let held = match attempt {
            Attempt::Stock { lines, .. } => lines
                .iter()
                .find_map(|l| self.holds.get(&(user, l.0)).map(|r| (&l.1, *r))),
            Attempt::Flash { sale, sku, .. } => {
                self.holds.get(&(user, sale.variant_id)).map(|r| (sku, *r))
            }
        };
        if let Some((sku, existing)) = held {
            return Err(ShopError::conflict_with(
                "already_reserved",
                format!("you already hold an active reservation of {sku}"),
                serde_json::json!({ "sku": sku, "reservation_id": existing }),
            ));
        }
        let id = placement.map_or_else(Uuid::now_v7, |p| p.reservation);
        let (flash_sale_id, new_lines) = match attempt {
            Attempt::Stock { lines, .. } => (None, self.take_stock(user, id, lines)?),
            Attempt::Flash { sale, quantity, .. } => (
                Some(sale.id),
                vec![self.take_sale(user, id, sale.id, *quantity)?],
            ),
        };
        for line in &new_lines {
            self.holds.insert((user, line.variant_id), id);
        }
        if let Some(p) = placement {
            self.open_carts.remove(&(user, p.cart));
            let mut rows = Writes::new();
            p.queue(&mut rows);
            self.then.push(rows);
        }
        let row = ReservationRow {
            user_id: user,
            id,
            status: "active".to_owned(),
            flash_sale_id,
            expires_at: self.now + *ttl,
            created_at: self.now,
            updated_at: self.now,
        };
        let skus = sku_names(attempt);
        let answer = view(&row, &new_lines, |v| {
            skus.get(&v).cloned().unwrap_or_default()
        });
        self.reservations.push(row);
        self.lines.extend(new_lines);
        Ok(answer)
    }

    /// Units of SKUs from stock, all or nothing, allocated across locations.
    fn take_stock(
        &mut self,
        user: Uuid,
        id: Uuid,
        wanted: &[(Uuid, String, i64)],
    ) -> Result<Vec<LineRow>, ShopError> {
        let wants: Vec<Want> = wanted
            .iter()
            .map(|l| Want {
                variant: l.0,
                quantity: l.2,
            })
            .collect();
        let takes = self
            .stock
            .take_all(&wants)
            .map_err(|(variant, available)| {
                let sku = wanted
                    .iter()
                    .find(|l| l.0 == variant)
                    .map(|l| l.1.clone())
                    .unwrap_or_default();
                ShopError::conflict_with(
                    "out_of_stock",
                    format!("{sku}: only {available} available"),
                    serde_json::json!({ "sku": sku, "available": available }),
                )
            })?;
        Ok(takes
            .iter()
            .map(|t| {
                *self.reserved.entry((t.variant, t.location)).or_default() += t.quantity;
                LineRow {
                    user_id: user,
                    reservation_id: id,
                    variant_id: t.variant,
                    location_id: t.location,
                    quantity: t.quantity,
                    unit_price_minor: None,
                    currency: None,
                }
            })
            .collect())
    }

    /// Units of a flash sale, from the units earmarked for it.
    fn take_sale(
        &mut self,
        user: Uuid,
        id: Uuid,
        sale: Uuid,
        quantity: i64,
    ) -> Result<LineRow, ShopError> {
        let now = self.now;
        let state = self
            .sales
            .get_mut(&sale)
            .ok_or(ShopError::NotFound("flash_sale"))?;
        take_from_sale(state, user, quantity, now)?;
        Ok(LineRow {
            user_id: user,
            reservation_id: id,
            variant_id: state.row.variant_id,
            location_id: state.row.location_id,
            quantity,
            unit_price_minor: Some(state.row.price_minor),
            currency: Some(state.row.currency.clone()),
        })
    }

    /// One conditional update per SKU and location and per sale, then every row at once.
    async fn write(
        &mut self,
        tx: &mut emporium_store::Tx,
        statements: Statements,
    ) -> Result<(), ShopError> {
        let mut reserved: Vec<_> = self
            .reserved
            .iter()
            .map(|(&(variant, location), &quantity)| (variant, location, quantity))
            .collect();
        reserved.sort_unstable();
        let mut taken = Vec::new();
        let mut purchases = Vec::new();
        for state in self.sales.values().filter(|s| !s.granted.is_empty()) {
            let sale = state.row.id;
            taken.push((sale, state.granted.values().sum()));
            purchases.extend(state.granted.iter().map(|(&user, &q)| (sale, user, q)));
        }
        taken.sort_unstable();
        let writes = store::batch::Writes {
            reserved,
            taken,
            purchases,
            reservations: &self.reservations,
            lines: &self.lines,
            then: std::mem::take(&mut self.then),
        };
        if !store::batch::write(tx, statements, writes).await? {
            return Err(ShopError::internal(anyhow::anyhow!(
                "stock or a flash sale changed under the batch's locks"
            )));
        }
        // Search and the catalog show whether a product is in stock: tell them when this
        // batch took a SKU's last available units (and only then, to keep batches cheap).
        for &(variant, before) in &self.had {
            if before > 0 && self.stock.total(variant) == 0 {
                let payload = serde_json::json!({ "variant_id": variant, "available": 0 });
                crate::events::emit(
                    tx,
                    Uuid::nil(),
                    crate::events::STOCK_CHANGED,
                    payload,
                    self.now,
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// Grants `quantity` units of a sale to `user` in memory, or says why not.
fn take_from_sale(
    state: &mut SaleState,
    user: Uuid,
    quantity: i64,
    now: DateTime<Utc>,
) -> Result<(), ShopError> {
    let sale = &state.row;
    if now < sale.starts_at {
        return Err(ShopError::conflict_with(
            "sale_not_started",
            "the sale has not started",
            serde_json::json!({ "starts_at": sale.starts_at }),
        ));
    }
    if now >= sale.ends_at || sale.closed_at.is_some() {
        return Err(ShopError::conflict_with(
            "sale_ended",
            "the sale has ended",
            serde_json::json!({ "ended_at": sale.ends_at }),
        ));
    }
    let bought = state.purchased.get(&user).copied().unwrap_or(0);
    if bought + quantity > sale.per_customer_limit {
        return Err(ShopError::conflict_with(
            "purchase_limit_exceeded",
            format!("at most {} per customer", sale.per_customer_limit),
            serde_json::json!({ "limit": sale.per_customer_limit, "already": bought }),
        ));
    }
    if sale.remaining < quantity {
        return Err(ShopError::conflict_with(
            "sold_out",
            "the sale is sold out",
            serde_json::json!({ "remaining": sale.remaining }),
        ));
    }
    state.row.remaining -= quantity;
    *state.granted.entry(user).or_default() += quantity;
    state.purchased.insert(user, bought + quantity);
    Ok(())
}

fn sku_names(attempt: &Attempt) -> HashMap<Uuid, String> {
    match attempt {
        Attempt::Stock { lines, .. } => lines.iter().map(|l| (l.0, l.1.clone())).collect(),
        Attempt::Flash { sale, sku, .. } => HashMap::from([(sale.variant_id, sku.clone())]),
    }
}
