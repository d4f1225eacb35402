//! Constructors and predicates on the generated messages, so that callers build a request from its
//! required fields instead of a struct literal with `Some(..)` and `..Default::default()`.
//!
//! ```
//! use orderly::common::v1::{Address, Money};
//! use orderly::orders::v1::{CreateOrderRequest, OrderLine};
//!
//! let request = CreateOrderRequest {
//!     user_id: "0193a5b2-7c1e-7d30-9f41-2b8c6d0e4a17".into(),
//!     items: vec![OrderLine::new("BOOK-1", 2)],
//!     shipping_address: Some(
//!         Address::new("Ada Lovelace", "12 St James's Square", "London", "SW1Y 4JH", "GB")
//!             .with_line2("Flat 1"),
//!     ),
//!     idempotency_key: orderly::messages::idempotency_key(),
//!     // Refused with PRICE_CHANGED, and nothing charged, if the catalog's prices make another total.
//!     expected_total: Some(Money::new("EUR", 3998)),
//! };
//! assert_eq!(request.items[0].quantity, 2);
//! ```

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::v1::{Address, Money};
use crate::orders::v1::{LineItem, OrderLine, OrderStatus};

impl Money {
    /// `amount_minor` minor units (cents for EUR) of the ISO 4217 currency `currency_code`.
    pub fn new(currency_code: impl Into<String>, amount_minor: i64) -> Self {
        Self {
            currency_code: currency_code.into(),
            amount_minor,
        }
    }
}

/// As [`crate::money::Money`] shows it (`EUR 39.98`) when the amount is valid; otherwise the
/// raw fields (`euro -1 (minor units)`), so that a log line never hides what was sent.
impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match crate::money::Money::try_from(self) {
            Ok(money) => money.fmt(f),
            Err(_) => write!(
                f,
                "{} {} (minor units)",
                self.currency_code, self.amount_minor
            ),
        }
    }
}

impl Address {
    /// An address with every required field; `line2` is empty (see [`Address::with_line2`]).
    /// `country_code` is ISO 3166-1 alpha-2, e.g. `GB`.
    pub fn new(
        recipient: impl Into<String>,
        line1: impl Into<String>,
        city: impl Into<String>,
        postal_code: impl Into<String>,
        country_code: impl Into<String>,
    ) -> Self {
        Self {
            recipient: recipient.into(),
            line1: line1.into(),
            line2: String::new(),
            city: city.into(),
            postal_code: postal_code.into(),
            country_code: country_code.into(),
        }
    }

    /// The address with a second line.
    pub fn with_line2(mut self, line2: impl Into<String>) -> Self {
        self.line2 = line2.into();
        self
    }
}

impl OrderLine {
    /// `quantity` units of the catalog's product `sku`, to order.
    pub fn new(sku: impl Into<String>, quantity: i32) -> Self {
        Self {
            sku: sku.into(),
            quantity,
        }
    }
}

impl LineItem {
    /// `quantity` of `sku` at `unit_price` each (a placed order's line, as a fake service answers).
    pub fn new(sku: impl Into<String>, quantity: i32, unit_price: Money) -> Self {
        Self {
            sku: sku.into(),
            quantity,
            unit_price: Some(unit_price),
        }
    }
}

impl OrderStatus {
    /// Whether placing the order is over: CONFIRMED, FAILED or CANCELLED (where WatchOrder ends).
    /// A confirmed order may still be cancelled.
    pub fn is_settled(self) -> bool {
        matches!(self, Self::Confirmed | Self::Failed | Self::Cancelled)
    }

    /// Whether nothing more can happen to the order: FAILED or CANCELLED.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Failed | Self::Cancelled)
    }
}

/// A fresh idempotency key for a CreateOrder: 32 hex digits, different on every call (the
/// process's random hasher keys over the time and a counter). Keep it with the order you retry:
/// the same key with the same order is answered with the first result, never charged twice.
pub fn idempotency_key() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let mut halves = [0u64; 2];
    for (salt, half) in halves.iter_mut().enumerate() {
        // A fresh RandomState is seeded from the OS's randomness (then per-thread increments).
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.write_u64(count);
        hasher.write_usize(salt);
        *half = hasher.finish();
    }
    format!("{:016x}{:016x}", halves[0], halves[1])
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn keys_are_32_hex_digits_and_do_not_repeat() {
        let keys: HashSet<String> = (0..10_000).map(|_| idempotency_key()).collect();
        assert_eq!(keys.len(), 10_000);
        assert!(
            keys.iter()
                .all(|k| k.len() == 32 && k.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }

    #[test]
    fn settled_and_final_statuses() {
        let settled: Vec<OrderStatus> = [
            OrderStatus::Unspecified,
            OrderStatus::Pending,
            OrderStatus::Confirmed,
            OrderStatus::Failed,
            OrderStatus::Cancelled,
        ]
        .into_iter()
        .filter(|s| s.is_settled())
        .collect();
        assert_eq!(
            settled,
            [
                OrderStatus::Confirmed,
                OrderStatus::Failed,
                OrderStatus::Cancelled
            ]
        );
        assert!(!OrderStatus::Confirmed.is_final() && OrderStatus::Cancelled.is_final());
    }
}
