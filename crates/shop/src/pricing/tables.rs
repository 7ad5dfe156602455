//! The pricing tables every cart view and checkout reads (tax rates, shipping methods, FX
//! rates), kept in memory for a moment instead of being queried on every request.
//!
//! This node's admin changes clear the copy at once; another node's are seen within
//! [`PricingCache::TTL`]. A cart locks its FX rate when it is created or re-priced, so a
//! rate change never alters a cart mid-checkout either way.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use emporium_store::Db;
use emporium_store::pricing::{self as store, ShippingMethodRow, TaxRateRow};

use crate::ShopError;

/// One consistent read of the pricing tables.
#[derive(Debug, Default)]
pub struct PricingTables {
    pub tax_rates: Vec<TaxRateRow>,
    /// Ordered by code.
    pub shipping_methods: Vec<ShippingMethodRow>,
    /// `rate_e9` by currency code.
    pub fx_rates: HashMap<String, i64>,
}

impl PricingTables {
    /// The rate for a place: the region's when one is set, else the country's.
    pub fn tax_rate_for(&self, country: &str, region: &str) -> Option<i64> {
        self.tax_rates
            .iter()
            .filter(|t| t.country == country && (t.region == region || t.region.is_empty()))
            .max_by_key(|t| t.region.len())
            .map(|t| t.basis_points)
    }
}

#[derive(Default)]
pub struct PricingCache {
    tables: parking_lot::Mutex<Option<(Arc<PricingTables>, Instant)>>,
    /// Bumped by every change: a read that started before it is not kept.
    generation: AtomicU64,
}

impl PricingCache {
    /// How long another node's change may take to be seen here.
    pub const TTL: Duration = Duration::from_secs(1);

    pub async fn get(&self, db: &Db) -> Result<Arc<PricingTables>, ShopError> {
        if let Some((tables, at)) = &*self.tables.lock()
            && at.elapsed() < Self::TTL
        {
            return Ok(tables.clone());
        }
        let generation = self.generation.load(Ordering::Acquire);
        let tables = Arc::new(PricingTables {
            tax_rates: store::list_tax_rates(db).await?,
            shipping_methods: store::list_shipping_methods(db).await?,
            fx_rates: store::list_fx_rates(db)
                .await?
                .into_iter()
                .map(|r| (r.currency, r.rate_e9))
                .collect(),
        });
        let mut slot = self.tables.lock();
        if self.generation.load(Ordering::Acquire) == generation {
            *slot = Some((tables.clone(), Instant::now()));
        }
        Ok(tables)
    }

    /// Forgets the copy after a change committed on this node.
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        *self.tables.lock() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(country: &str, region: &str, basis_points: i64) -> TaxRateRow {
        TaxRateRow {
            id: uuid::Uuid::now_v7(),
            country: country.into(),
            region: region.into(),
            name: "tax".into(),
            basis_points,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_region_s_rate_wins_over_its_country_s() {
        let tables = PricingTables {
            tax_rates: vec![
                rate("US", "", 0),
                rate("US", "CA", 725),
                rate("GB", "", 2000),
            ],
            ..Default::default()
        };
        assert_eq!(tables.tax_rate_for("US", "CA"), Some(725));
        assert_eq!(tables.tax_rate_for("US", "NY"), Some(0));
        assert_eq!(tables.tax_rate_for("US", ""), Some(0));
        assert_eq!(tables.tax_rate_for("GB", "SCT"), Some(2000));
        assert_eq!(tables.tax_rate_for("FR", ""), None);
    }
}
