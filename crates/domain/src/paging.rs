//! Cursor pagination: a page size with bounds, and an opaque cursor that carries the sort
//! key and id of the last item seen (keyset pagination: stable under concurrent inserts).

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// A page size: default 20, at most 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    pub const DEFAULT: u32 = 20;
    pub const MAX: u32 = 100;

    pub fn parse(raw: Option<i64>) -> Result<Self, Invalid> {
        match raw {
            None => Ok(Self(Self::DEFAULT)),
            Some(n) if (1..=i64::from(Self::MAX)).contains(&n) => Ok(Self(n as u32)),
            Some(_) => Err(Invalid::new(
                "limit",
                format!("must be between 1 and {}", Self::MAX),
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// Where the previous page ended: the sort key of its last item and that item's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort key of the last item (a number or a string, depending on the sort).
    pub key: CursorKey,
    /// The id of the last item: the tie-breaker.
    pub id: uuid::Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CursorKey {
    Int(i64),
    Text(String),
}

impl Cursor {
    /// URL-safe text: hex of the JSON form. Opaque to clients.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        json.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(raw: &str) -> Result<Self, Invalid> {
        let bad = || Invalid::new("cursor", "is not a cursor this server issued");
        if raw.len() > 1024 || !raw.len().is_multiple_of(2) {
            return Err(bad());
        }
        let bytes: Vec<u8> = (0..raw.len())
            .step_by(2)
            .map(|i| {
                raw.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            key: CursorKey::Text("Mug".into()),
            id: uuid::Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        for bad in ["", "zz", "abc", "7b7d", &"0".repeat(2000)] {
            assert!(Cursor::decode(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn limits_default_to_20_and_cap_at_100() {
        assert_eq!(Limit::parse(None).map(Limit::get), Ok(20));
        assert_eq!(Limit::parse(Some(100)).map(Limit::get), Ok(100));
        assert!(Limit::parse(Some(0)).is_err());
        assert!(Limit::parse(Some(101)).is_err());
        assert!(Limit::parse(Some(i64::MAX)).is_err());
    }
}
