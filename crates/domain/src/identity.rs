//! Accounts: emails, passwords, names, roles and statuses, postal addresses.

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// A normalized email: trimmed and lower-cased, so that uniqueness is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let email = raw.trim().to_lowercase();
        let bad = |why: &str| Invalid::new("email", why.to_owned());
        if email.len() > 254 {
            return Err(bad("is longer than 254 characters"));
        }
        let (local, domain) = email
            .split_once('@')
            .ok_or_else(|| bad("must contain an @"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(bad("needs 1 to 64 characters before the @"));
        }
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        if !domain_ok {
            return Err(bad("has an invalid domain"));
        }
        if email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"".contains(c))
        {
            return Err(bad("contains characters not allowed in an address"));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed. Its `Debug` never shows the secret, so it cannot reach a log.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 10;
    /// Argon2 accepts more, but hashing megabytes of "password" is a denial of service.
    pub const MAX_CHARS: usize = 256;

    pub fn parse(raw: String) -> Result<Self, Invalid> {
        let n = raw.chars().count();
        if n < Self::MIN_CHARS {
            return Err(Invalid::new(
                "password",
                format!("must have at least {} characters", Self::MIN_CHARS),
            ));
        }
        if n > Self::MAX_CHARS {
            return Err(Invalid::new(
                "password",
                format!("must have at most {} characters", Self::MAX_CHARS),
            ));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Trims, rejects control characters and bounds the length of a human-readable field.
pub fn text(field: &str, raw: &str, min: usize, max: usize) -> Result<String, Invalid> {
    let value = raw.trim();
    let n = value.chars().count();
    if n < min || n > max {
        return Err(Invalid::new(
            field,
            format!("must have between {min} and {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// A person's display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        text("name", raw, 1, 120).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an account may do. An admin can do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Seller,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Seller => "seller",
            Role::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "customer" => Ok(Role::Customer),
            "seller" => Ok(Role::Seller),
            "admin" => Ok(Role::Admin),
            _ => Err(Invalid::new("role", format!("unknown role {raw:?}"))),
        }
    }
}

/// Whether an account may log in. A seller that registered waits in `pending` until an admin
/// approves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Pending,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Pending => "pending",
            UserStatus::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "active" => Ok(UserStatus::Active),
            "pending" => Ok(UserStatus::Pending),
            "disabled" => Ok(UserStatus::Disabled),
            _ => Err(Invalid::new("status", format!("unknown status {raw:?}"))),
        }
    }
}

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CountryCode(String);

impl CountryCode {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(code))
        } else {
            Err(Invalid::new(
                "country",
                "must be an ISO 3166-1 alpha-2 code such as GB",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A postal address, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostalAddress {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    pub country: CountryCode,
    pub phone: Option<String>,
}

/// Raw address fields as they come from a client.
#[derive(Debug, Clone, Default)]
pub struct RawAddress<'a> {
    pub name: &'a str,
    pub line1: &'a str,
    pub line2: Option<&'a str>,
    pub city: &'a str,
    pub region: Option<&'a str>,
    pub postal_code: &'a str,
    pub country: &'a str,
    pub phone: Option<&'a str>,
}

impl PostalAddress {
    pub fn parse(raw: RawAddress<'_>) -> Result<Self, Invalid> {
        let optional =
            |field: &str, v: Option<&str>, max: usize| -> Result<Option<String>, Invalid> {
                match v.map(str::trim) {
                    None | Some("") => Ok(None),
                    Some(s) => text(field, s, 1, max).map(Some),
                }
            };
        Ok(Self {
            name: text("name", raw.name, 1, 120)?,
            line1: text("line1", raw.line1, 1, 200)?,
            line2: optional("line2", raw.line2, 200)?,
            city: text("city", raw.city, 1, 100)?,
            region: optional("region", raw.region, 100)?,
            postal_code: text("postal_code", raw.postal_code, 1, 20)?,
            country: CountryCode::parse(raw.country)?,
            phone: optional("phone", raw.phone, 40)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_to_lower_case() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").map(|e| e.as_str().to_owned()),
            Ok("ada@example.com".to_owned())
        );
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "ada@.example.com",
            "ada@example..com",
            "a da@example.com",
            "<script>@example.com",
            "ada@exa mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn passwords_have_a_minimum_and_maximum_length_and_hide_in_debug() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("x".repeat(257)).is_err());
        let p = Password::parse("correct horse battery".into());
        assert!(matches!(&p, Ok(p) if format!("{p:?}") == "Password(***)"));
    }

    #[test]
    fn names_reject_control_characters_and_blank_input() {
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse("Ada\u{0}Lovelace").is_err());
        assert!(PersonName::parse("Ada Lovelace").is_ok());
    }

    #[test]
    fn addresses_require_a_two_letter_country() {
        let raw = RawAddress {
            name: "Ada",
            line1: "1 Main St",
            city: "London",
            postal_code: "N1 9GU",
            country: "gb",
            ..RawAddress::default()
        };
        assert_eq!(
            PostalAddress::parse(raw.clone()).map(|a| a.country.as_str().to_owned()),
            Ok("GB".to_owned())
        );
        assert!(
            PostalAddress::parse(RawAddress {
                country: "GBR",
                ..raw
            })
            .is_err()
        );
    }
}
