//! Idempotency keys: the client's name for one logical request, so a retry is recognised.

use crate::Invalid;

/// An `Idempotency-Key`: 1-255 printable ASCII characters (space through `~`), kept as sent.
/// Clients should send a random value (a UUIDv4): anonymous callers share one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let printable = raw.bytes().all(|b| (b' '..=b'~').contains(&b));
        if !raw.is_empty() && raw.len() <= Self::MAX_LEN && printable {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Invalid::new(
                "Idempotency-Key",
                "must be 1-255 printable ASCII characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_is_a_key() {
        let raw = "0196a4b2-7f3c-4c1e-9d2a-5b8e1f0c3a7d";
        assert_eq!(IdempotencyKey::parse(raw).unwrap().as_str(), raw);
    }

    #[test]
    fn empty_overlong_and_non_printable_keys_are_refused() {
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("tab\there").is_err());
        assert!(IdempotencyKey::parse("caf\u{e9}").is_err());
    }
}
