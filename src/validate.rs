//! Checks of the shared message types that several services accept, so that every service refuses
//! the same inputs with the same words. Each check returns the problems it found as
//! `(field, description)` pairs, with field paths relative to the message.

use crate::common::v1::Address;

/// A problem with one field: its path and what is wrong.
pub type Problem = (&'static str, &'static str);

/// The problems of a postal address: recipient, first line, city and postal code required; lines up
/// to 200 characters; an ISO 3166-1 alpha-2 country code.
pub fn address(address: &Address) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut text = |field: &'static str, value: &str, required: bool, max: usize| {
        let value = value.trim();
        if required && value.is_empty() {
            problems.push((field, "is required"));
        } else if value.chars().count() > max {
            problems.push((field, "is too long"));
        } else if value.chars().any(char::is_control) {
            problems.push((field, "must not contain control characters"));
        }
    };
    text("recipient", &address.recipient, true, 200);
    text("line1", &address.line1, true, 200);
    text("line2", &address.line2, false, 200);
    text("city", &address.city, true, 100);
    text("postal_code", &address.postal_code, true, 20);
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
