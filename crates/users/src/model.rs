//! Validated domain types: once a request is past the edge, a [`UserName`] is a valid name and an
//! [`Email`] a valid address, so the store and service never check again.

use std::fmt;

use email_address::{EmailAddress, Options};
use orderly_kit::time::timestamp;

/// Why a value was refused; the text is shown to the caller as a field violation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A required value is missing.
    #[error("is required")]
    Missing,
    /// A name that is empty, too long or has control characters.
    #[error("must be 1 to {max} characters after trimming, without control characters")]
    BadName {
        /// The longest name accepted, in characters.
        max: usize,
    },
    /// An email address that is not one.
    #[error("is not a valid email address")]
    BadEmail,
    /// An email address over the length limit.
    #[error("must be at most {max} bytes")]
    EmailTooLong {
        /// The longest address accepted, in bytes.
        max: usize,
    },
    /// An id that is not a UUID.
    #[error("is not a valid user id (a UUID)")]
    BadId,
}

/// A user's id: a UUID (version 7 for the ones we mint, so ids sort by creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(uuid::Uuid);

impl UserId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// Parses an id given by a caller.
    pub fn parse(raw: &str) -> Result<Self, ModelError> {
        if raw.is_empty() {
            return Err(ModelError::Missing);
        }
        uuid::Uuid::try_parse(raw)
            .map(Self)
            .map_err(|_| ModelError::BadId)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lower-case hyphenated: the one spelling stored and compared.
        write!(f, "{}", self.0.hyphenated())
    }
}

/// A display name: 1 to 200 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// The longest name, in characters.
    pub const MAX_CHARS: usize = orderly::validate::limits::USER_NAME_CHARS;

    /// Trims and checks a name.
    pub fn parse(raw: &str) -> Result<Self, ModelError> {
        let name = orderly::validate::required_text(raw, Self::MAX_CHARS).map_err(|_| {
            ModelError::BadName {
                max: Self::MAX_CHARS,
            }
        })?;
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address: syntactically valid (RFC 5321/5322, a dotted domain, no display name), at most
/// 254 bytes. Compared case-insensitively through [`Email::key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// The longest address, in bytes (RFC 5321's path limit less the angle brackets).
    pub const MAX_BYTES: usize = orderly::validate::limits::EMAIL_BYTES;

    /// Trims and checks an address.
    pub fn parse(raw: &str) -> Result<Self, ModelError> {
        let email = raw.trim();
        if email.is_empty() {
            return Err(ModelError::Missing);
        }
        // Counted as sent, as the OpenAPI document's `maxLength` counts.
        if raw.len() > Self::MAX_BYTES {
            return Err(ModelError::EmailTooLong {
                max: Self::MAX_BYTES,
            });
        }
        // The shared text rule first: a quoted local part could otherwise carry control characters.
        orderly::validate::text(email, Self::MAX_BYTES).map_err(|_| ModelError::BadEmail)?;
        let options = Options {
            allow_display_text: false,
            ..Options::default()
        }
        .with_required_tld();
        EmailAddress::parse_with_options(email, options).map_err(|_| ModelError::BadEmail)?;
        Ok(Self(email.to_owned()))
    }

    /// The address as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address lower-cased: what uniqueness is checked on.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The id, in its stored spelling.
    pub id: String,
    /// The display name.
    pub name: String,
    /// The email address as given.
    pub email: String,
    /// Creation time, microseconds since the Unix epoch.
    pub create_time: i64,
    /// Last change, microseconds since the Unix epoch.
    pub update_time: i64,
}

impl From<UserRecord> for orderly::users::v1::User {
    fn from(record: UserRecord) -> Self {
        Self {
            id: record.id,
            name: record.name,
            email: record.email,
            create_time: Some(timestamp(record.create_time)),
            update_time: Some(timestamp(record.update_time)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            UserName::parse("  Ada  ").map(|n| n.as_str().to_owned()),
            Ok("Ada".into())
        );
        assert!(UserName::parse("   ").is_err());
        assert!(
            UserName::parse(&"é".repeat(200)).is_ok(),
            "200 characters, 400 bytes"
        );
        assert!(UserName::parse(&"a".repeat(201)).is_err());
        assert!(UserName::parse("Ada\u{0}").is_err());
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(
            Email::parse(" Ada@Example.com ").map(|e| e.key()),
            Ok("ada@example.com".into())
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@localhost",
            "Ada <ada@example.com>",
            "a b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} must be refused");
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(186));
        assert_eq!(long.len(), 255);
        assert_eq!(
            Email::parse(&long),
            Err(ModelError::EmailTooLong { max: 254 })
        );
    }

    #[test]
    fn ids_are_uuids() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(&id.to_string()), Ok(id));
        assert_eq!(UserId::parse(""), Err(ModelError::Missing));
        assert_eq!(UserId::parse("42"), Err(ModelError::BadId));
    }
}
