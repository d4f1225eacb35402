//! Checks of the inputs that several services accept, so that every service refuses the same
//! inputs with the same words: the one rule for free text ([`text`], [`required_text`]) and the
//! shared message types. Message checks return the problems they found as `(field, description)`
//! pairs, with field paths relative to the message.

use std::fmt;

use crate::common::v1::Address;

/// The limits of the fields the services check, in one place: the services' validators and the
/// gateway's OpenAPI document both read them, so what is refused and what is documented cannot
/// drift apart.
pub mod limits {
    /// Longest user name, in characters.
    pub const USER_NAME_CHARS: usize = 200;
    /// Longest email address, in bytes (RFC 5321's path limit less the angle brackets).
    pub const EMAIL_BYTES: usize = 254;
    /// Longest SKU, in characters.
    pub const SKU_CHARS: usize = 64;
    /// Fewest items in an order.
    pub const MIN_ITEMS: usize = 1;
    /// Most items in an order.
    pub const MAX_ITEMS: usize = 100;
    /// Largest quantity of one item.
    pub const MAX_QUANTITY: i32 = 10_000;
    /// Largest price of one item, in minor units: with at most [`MAX_ITEMS`] lines of at most
    /// [`MAX_QUANTITY`] each, no order's total can overflow (10¹⁸ < 2⁶³).
    pub const MAX_UNIT_PRICE_MINOR: i64 = 999_999_999_999;
    /// Longest idempotency key, in characters.
    pub const KEY_CHARS: usize = 200;
    /// Longest reason (for a cancellation, refund or cancelled delivery), in characters.
    pub const REASON_CHARS: usize = 500;
    /// Longest address recipient, in characters.
    pub const RECIPIENT_CHARS: usize = 200;
    /// Longest address line, in characters.
    pub const ADDRESS_LINE_CHARS: usize = 200;
    /// Longest city, in characters.
    pub const CITY_CHARS: usize = 100;
    /// Longest postal code, in characters.
    pub const POSTAL_CODE_CHARS: usize = 20;
    /// Longest product name, in characters.
    pub const PRODUCT_NAME_CHARS: usize = 200;
    /// Longest product description, in characters.
    pub const DESCRIPTION_CHARS: usize = 2000;
    /// Longest ListProducts query, in characters.
    pub const QUERY_CHARS: usize = 200;
    /// Most units of one product in stock, and most units one stock adjustment moves.
    pub const MAX_STOCK: i64 = 1_000_000_000;
    /// Page size served when a list call asks for 0.
    pub const DEFAULT_PAGE_SIZE: u32 = 50;
    /// Largest page served; larger requests are served this many (AIP-158).
    pub const MAX_PAGE_SIZE: u32 = 1000;
}

/// The [`text`] rule as an ECMA-262 regular expression (for JSON Schema): no control characters
/// (see [`is_control`]).
pub const TEXT_PATTERN: &str =
    r"^[^\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028-\u202E\u2066-\u2069]*$";

/// The [`required_text`] rule as an ECMA-262 regular expression: no control characters, and at least
/// one character that is not white space.
pub const REQUIRED_TEXT_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028-\u202E\u2066-\u2069]*[^\s\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028-\u202E\u2066-\u2069][^\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028-\u202E\u2066-\u2069]*$";

/// Whether free text may not contain `c`: the C0 and C1 controls, and the invisible characters
/// that change how the text around them reads or is split — the bidirectional marks, embeddings,
/// overrides and isolates (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069: "Trojan
/// Source"), and the line and paragraph separators (U+2028, U+2029), which end a line in
/// JavaScript and in logs as a newline does.
pub fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// A SKU as [`sku`] accepts it: a letter or digit, then letters, digits, `.`, `_` and `-`, at most
/// [`limits::SKU_CHARS`] in all. SKUs name products in URLs (`/v1/products/{sku}`), so they are
/// kept to characters that need no escaping.
pub const SKU_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";

/// Why a SKU was refused; its `Display` is meant for a field violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkuProblem {
    /// Empty.
    Required,
    /// Longer than [`limits::SKU_CHARS`].
    TooLong,
    /// A character other than ASCII letters, digits, `.`, `_` and `-`, or one of the last three
    /// first.
    BadCharacter,
}

impl fmt::Display for SkuProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Required => f.write_str("is required"),
            Self::TooLong => write!(f, "must be at most {} characters", limits::SKU_CHARS),
            Self::BadCharacter => f.write_str(
                "must be ASCII letters, digits, '.', '_' and '-', starting with a letter or digit",
            ),
        }
    }
}

impl std::error::Error for SkuProblem {}

/// The rule for SKUs (see [`SKU_PATTERN`]), as sent: no trimming, since a SKU is an identifier.
pub fn sku(value: &str) -> Result<&str, SkuProblem> {
    let mut chars = value.chars();
    match chars.next() {
        None => Err(SkuProblem::Required),
        Some(_) if value.len() > limits::SKU_CHARS => Err(SkuProblem::TooLong),
        Some(first) if !first.is_ascii_alphanumeric() => Err(SkuProblem::BadCharacter),
        Some(_) if chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) => {
            Ok(value)
        }
        Some(_) => Err(SkuProblem::BadCharacter),
    }
}

/// A country code as [`address`] accepts it: ISO 3166-1 alpha-2, upper case.
pub const COUNTRY_CODE_PATTERN: &str = "^[A-Z]{2}$";

/// A problem with one field: its path and what is wrong.
pub type Problem = (&'static str, &'static str);

/// Why a text field was refused; its `Display` is meant for a field violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextProblem {
    /// Empty (after trimming) where a value is required.
    Required,
    /// Longer than the field allows.
    TooLong {
        /// The most characters the field takes.
        max_chars: usize,
    },
    /// A control character (NUL, a newline, DEL, C1 codes, bidirectional overrides, line
    /// separators: see [`is_control`]): nothing a person types into one line, and NUL is a byte
    /// PostgreSQL's text cannot store.
    ControlCharacter,
}

impl fmt::Display for TextProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Required => f.write_str("is required"),
            Self::TooLong { max_chars } => write!(f, "must be at most {max_chars} characters"),
            Self::ControlCharacter => f.write_str("must not contain control characters"),
        }
    }
}

impl std::error::Error for TextProblem {}

/// The rule for every free-text field (names, SKUs, keys, reasons, address lines): UTF-8 (which
/// protobuf decoding already guarantees), no control characters, at most `max_chars` characters,
/// both as sent (so that the OpenAPI document's `maxLength` and `pattern` say exactly what is
/// accepted); then trimmed. Returns the trimmed text, which may be empty.
pub fn text(value: &str, max_chars: usize) -> Result<&str, TextProblem> {
    if value.chars().any(is_control) {
        Err(TextProblem::ControlCharacter)
    } else if value.chars().count() > max_chars {
        Err(TextProblem::TooLong { max_chars })
    } else {
        Ok(value.trim())
    }
}

/// [`text`] for a field that must not be empty.
pub fn required_text(value: &str, max_chars: usize) -> Result<&str, TextProblem> {
    match text(value, max_chars)? {
        "" => Err(TextProblem::Required),
        value => Ok(value),
    }
}

/// The problems of a postal address: recipient, first line, city and postal code required; lines up
/// to 200 characters; an ISO 3166-1 alpha-2 country code.
pub fn address(address: &Address) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut check = |field: &'static str, value: &str, required: bool, max: usize| {
        let checked = if required {
            required_text(value, max)
        } else {
            text(value, max)
        };
        match checked {
            Ok(_) => {}
            Err(TextProblem::Required) => problems.push((field, "is required")),
            Err(TextProblem::TooLong { .. }) => problems.push((field, "is too long")),
            Err(TextProblem::ControlCharacter) => {
                problems.push((field, "must not contain control characters"))
            }
        }
    };
    check(
        "recipient",
        &address.recipient,
        true,
        limits::RECIPIENT_CHARS,
    );
    check("line1", &address.line1, true, limits::ADDRESS_LINE_CHARS);
    check("line2", &address.line2, false, limits::ADDRESS_LINE_CHARS);
    check("city", &address.city, true, limits::CITY_CHARS);
    check(
        "postal_code",
        &address.postal_code,
        true,
        limits::POSTAL_CODE_CHARS,
    );
    let code = address.country_code.as_bytes();
    if code.len() != 2 || !code.iter().all(u8::is_ascii_uppercase) {
        problems.push((
            "country_code",
            "must be an ISO 3166-1 alpha-2 code, e.g. DE",
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_refuses_controls_bidi_overrides_and_line_separators() {
        for bad in [
            "a\u{0}b",
            "line\nbreak",
            "\u{85}",
            "admin\u{202E}gnp.exe",
            "\u{2066}isolated\u{2069}",
            "\u{200F}",
            "one\u{2028}two",
            "\u{2029}",
        ] {
            assert_eq!(
                text(bad, 100),
                Err(TextProblem::ControlCharacter),
                "{bad:?}"
            );
        }
        for good in [
            "Ada Lovelace",
            "Zoë Straße",
            "שלום",
            "東京都",
            "O'Brien-Smith",
        ] {
            assert_eq!(text(good, 100), Ok(good), "{good:?}");
        }
    }

    #[test]
    fn skus_are_url_safe_identifiers() {
        for good in ["BOOK-1", "MUG_3", "a.b", "0", &"9".repeat(64)] {
            assert_eq!(sku(good), Ok(good));
        }
        assert_eq!(sku(""), Err(SkuProblem::Required));
        assert_eq!(sku(&"9".repeat(65)), Err(SkuProblem::TooLong));
        for bad in ["-A", " A", "A B", "A/B", "Ø", "A\u{0}", ".A", "A?"] {
            assert_eq!(sku(bad), Err(SkuProblem::BadCharacter), "{bad:?}");
        }
        // The pattern says the same: its length bound is SKU_CHARS.
        assert!(SKU_PATTERN.contains(&format!("{{0,{}}}", limits::SKU_CHARS - 1)));
    }

    fn valid() -> Address {
        Address {
            recipient: "Ada".into(),
            line1: "1 Analytical Way".into(),
            line2: String::new(),
            city: "London".into(),
            postal_code: "N1 7AA".into(),
            country_code: "GB".into(),
        }
    }

    #[test]
    fn text_is_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(text("  a b  ", 7), Ok("a b"));
        assert_eq!(
            text("  a b  ", 6),
            Err(TextProblem::TooLong { max_chars: 6 }),
            "counted as sent"
        );
        assert_eq!(
            text("a b\n", 9),
            Err(TextProblem::ControlCharacter),
            "even at the end"
        );
        assert_eq!(text("", 3), Ok(""));
        assert_eq!(required_text(" ", 3), Err(TextProblem::Required));
        assert_eq!(text("abcd", 3), Err(TextProblem::TooLong { max_chars: 3 }));
        assert_eq!(text("äöü", 3), Ok("äöü"), "characters, not bytes");
        for bad in ["A\u{0}", "a\tb", "a\nb", "\u{7f}", "x\u{85}y", "\u{1b}[31m"] {
            assert_eq!(
                required_text(bad, 100),
                Err(TextProblem::ControlCharacter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_complete_address_has_no_problems() {
        assert!(address(&valid()).is_empty());
    }

    #[test]
    fn every_problem_is_named() {
        let bad = Address {
            recipient: " ".into(),
            city: "x".repeat(101),
            country_code: "gb".into(),
            ..valid()
        };
        let fields: Vec<&str> = address(&bad).into_iter().map(|(field, _)| field).collect();
        assert_eq!(fields, ["recipient", "city", "country_code"]);
        assert_eq!(address(&Address::default()).len(), 5);
    }
}
