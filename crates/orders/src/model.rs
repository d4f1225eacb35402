//! Validated orders: an [`OrderRequest`] is only made from a request whose every field checked
//! out; it becomes a [`NewOrder`] once the catalog's prices are applied, with its total computed in
//! checked integer arithmetic. Orders as stored are [`OrderRecord`]s.

use std::collections::{BTreeMap, HashMap};

use orderly::common::v1::{Address, Money as MoneyMessage};
use orderly::money::{Money, MoneyError};
use orderly::orders::v1::{CreateOrderRequest, LineItem, Order, OrderLine, OrderStatus};
use orderly::validate::required_text;
use orderly_kit::status::FieldViolations;
use orderly_kit::time::timestamp;

pub use orderly::validate::limits::{
    KEY_CHARS as MAX_KEY_CHARS, MAX_ITEMS, MAX_QUANTITY, MAX_UNIT_PRICE_MINOR, MIN_ITEMS,
};

/// One line of an order to place: a product and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Stock keeping unit.
    pub sku: String,
    /// How many, 1 to [`MAX_QUANTITY`].
    pub quantity: i32,
}

/// One priced line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Stock keeping unit.
    pub sku: String,
    /// How many, at least 1.
    pub quantity: i32,
    /// Price of one, in the order's currency, from the catalog.
    pub unit_price: Money,
}

/// A validated CreateOrder request, not yet priced.
#[derive(Debug, Clone)]
pub struct OrderRequest {
    /// The user placing it.
    pub user_id: uuid::Uuid,
    /// What is ordered, in the order asked (a SKU may be on several lines).
    pub lines: Vec<Line>,
    /// Where it ships.
    pub address: Address,
    /// The caller's idempotency key.
    pub idempotency_key: String,
    /// The total the caller expects, if it said.
    pub expected_total: Option<Money>,
    /// A hash of everything the request asks for (see `OrderRequest::fingerprint`), stored with
    /// the key so that the key reused for a different request can be told apart from a replay.
    pub fingerprint: String,
}

/// A priced order, ready to be stored.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// The request it prices.
    pub request: OrderRequest,
    /// What is ordered, at the catalog's prices.
    pub items: Vec<Item>,
    /// Sum of quantity × unit price.
    pub total: Money,
}

/// Why a valid request cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// The catalog has no product with these SKUs.
    #[error("no product with SKU {}", orderly_kit::status::listed(.0))]
    UnknownProducts(Vec<String>),
    /// The products are priced in different currencies: one order has one.
    #[error("the products are priced in different currencies ({0} and {1}); order them separately")]
    MixedCurrencies(String, String),
    /// The total is beyond what an amount can hold.
    #[error("the order total is too large")]
    TooLarge,
    /// The total at the catalog's prices is not the one the caller expected.
    #[error("the total at today's prices is {actual}, not the {expected} expected")]
    PriceChanged {
        /// What the caller expected, e.g. `EUR 1999`.
        expected: String,
        /// What the catalog's prices make.
        actual: String,
    },
}

impl OrderRequest {
    /// SHA-256, in hex, over the validated request: user, lines, address, expected total. Each
    /// field is written with its length first, so no two requests share an encoding.
    fn fingerprint(
        user_id: &uuid::Uuid,
        lines: &[Line],
        address: &Address,
        expected_total: Option<Money>,
    ) -> String {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        field(user_id.as_bytes());
        for line in lines {
            field(line.sku.as_bytes());
            field(&line.quantity.to_le_bytes());
        }
        for text in [
            &address.recipient,
            &address.line1,
            &address.line2,
            &address.city,
            &address.postal_code,
            &address.country_code,
        ] {
            field(text.trim().as_bytes());
        }
        if let Some(expected) = expected_total {
            field(expected.currency().as_str().as_bytes());
            field(&expected.minor().to_le_bytes());
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Checks a whole request; every problem is reported at once.
    pub fn parse(request: CreateOrderRequest) -> Result<Self, FieldViolations> {
        let mut violations = FieldViolations::new();
        let user_id = match uuid::Uuid::try_parse(request.user_id.trim()) {
            Ok(id) => Some(id),
            Err(_) if request.user_id.trim().is_empty() => {
                violations.add("user_id", "is required");
                None
            }
            Err(_) => {
                violations.add("user_id", "is not a valid user id (a UUID)");
                None
            }
        };
        if !(MIN_ITEMS..=MAX_ITEMS).contains(&request.items.len()) {
            violations.add(
                "items",
                format!("must have {MIN_ITEMS} to {MAX_ITEMS} items"),
            );
        }
        let lines: Vec<Option<Line>> = request
            .items
            .iter()
            .enumerate()
            .map(|(i, line)| parse_line(&mut violations, i, line))
            .collect();
        match &request.shipping_address {
            None => violations.add("shipping_address", "is required"),
            Some(address) => {
                for (field, problem) in orderly::validate::address(address) {
                    violations.add(format!("shipping_address.{field}"), problem);
                }
            }
        }
        let key = violations.text(
            "idempotency_key",
            required_text(&request.idempotency_key, MAX_KEY_CHARS),
        );
        let expected_total = match &request.expected_total {
            None => Some(None),
            Some(money) => match Money::parse_positive(&money.currency_code, money.amount_minor) {
                Ok(money) => Some(Some(money)),
                Err(error @ MoneyError::BadCurrency) => {
                    violations.add("expected_total.currency_code", error.to_string());
                    None
                }
                Err(error) => {
                    violations.add("expected_total.amount_minor", error.to_string());
                    None
                }
            },
        };
        match (user_id, request.shipping_address, key, expected_total) {
            (Some(user_id), Some(address), Some(idempotency_key), Some(expected_total))
                if violations.is_empty() =>
            {
                let lines: Vec<Line> = lines.into_iter().flatten().collect();
                let fingerprint = Self::fingerprint(&user_id, &lines, &address, expected_total);
                Ok(Self {
                    user_id,
                    lines,
                    address,
                    idempotency_key,
                    expected_total,
                    fingerprint,
                })
            }
            _ => Err(violations),
        }
    }

    /// The units of each product ordered, over every line naming it, in SKU order: what the
    /// catalog reserves.
    pub fn units(&self) -> BTreeMap<String, i64> {
        let mut units = BTreeMap::new();
        for line in &self.lines {
            *units.entry(line.sku.clone()).or_insert(0) += i64::from(line.quantity);
        }
        units
    }

    /// Prices the lines at the catalog's `prices` (by SKU) and totals them; refuses SKUs without
    /// a price, mixed currencies, and a total other than the one expected.
    pub fn price(self, prices: &HashMap<String, Money>) -> Result<NewOrder, PricingError> {
        let unknown: Vec<String> = self
            .lines
            .iter()
            .filter(|line| !prices.contains_key(&line.sku))
            .map(|line| line.sku.clone())
            .collect();
        if !unknown.is_empty() {
            return Err(PricingError::UnknownProducts(unknown));
        }
        let items: Vec<Item> = self
            .lines
            .iter()
            .filter_map(|line| {
                prices.get(&line.sku).map(|&unit_price| Item {
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                    unit_price,
                })
            })
            .collect();
        let mut total: Option<Money> = None;
        for item in &items {
            // The limits on lines, quantities and prices keep every total within range; a
            // catalog that broke them is refused, not trusted.
            let line = item
                .unit_price
                .checked_mul(i64::from(item.quantity))
                .map_err(|_| PricingError::TooLarge)?;
            total = Some(match total {
                None => line,
                Some(sum) => sum.checked_add(line).map_err(|error| match error {
                    MoneyError::MixedCurrencies => PricingError::MixedCurrencies(
                        sum.currency().to_string(),
                        line.currency().to_string(),
                    ),
                    _ => PricingError::TooLarge,
                })?,
            });
        }
        let Some(total) = total else {
            return Err(PricingError::UnknownProducts(Vec::new()));
        };
        if let Some(expected) = self.expected_total
            && expected != total
        {
            return Err(PricingError::PriceChanged {
                expected: expected.to_metadata(),
                actual: total.to_metadata(),
            });
        }
        Ok(NewOrder {
            request: self,
            items,
            total,
        })
    }
}

fn parse_line(violations: &mut FieldViolations, index: usize, line: &OrderLine) -> Option<Line> {
    let field = |name: &str| format!("items[{index}].{name}");
    let sku = violations.text(&field("sku"), orderly::validate::sku(&line.sku));
    if !(1..=MAX_QUANTITY).contains(&line.quantity) {
        violations.add(field("quantity"), format!("must be 1 to {MAX_QUANTITY}"));
    }
    let sku = sku?;
    (1..=MAX_QUANTITY).contains(&line.quantity).then_some(Line {
        sku,
        quantity: line.quantity,
    })
}

/// Where a stored order stands, as callers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Payment and delivery under way.
    Pending,
    /// Paid and scheduled.
    Confirmed,
    /// Failed and compensated.
    Failed,
    /// Cancelled after confirmation, refunded and unscheduled.
    Cancelled,
}

impl Status {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// From the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Confirmed,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether the order has settled: a watcher's stream ends here.
    pub fn is_settled(self) -> bool {
        self != Self::Pending
    }

    fn to_proto(self) -> OrderStatus {
        match self {
            Self::Pending => OrderStatus::Pending,
            Self::Confirmed => OrderStatus::Confirmed,
            Self::Failed => OrderStatus::Failed,
            Self::Cancelled => OrderStatus::Cancelled,
        }
    }
}

/// The work under way on an order, beside its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// None: the order is settled.
    Settled,
    /// Charging and scheduling.
    Fanout,
    /// Undoing a failed order's charge and delivery.
    Compensating,
    /// Undoing a confirmed order's charge and delivery.
    Cancelling,
}

impl Phase {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Settled => "",
            Self::Fanout => "FANOUT",
            Self::Compensating => "COMPENSATING",
            Self::Cancelling => "CANCELLING",
        }
    }

    /// From the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Settled,
            Self::Fanout,
            Self::Compensating,
            Self::Cancelling,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }
}

/// A stored line item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    /// Stock keeping unit.
    pub sku: String,
    /// How many.
    pub quantity: i64,
    /// Price of one, in minor units of the order's currency.
    pub unit_price: i64,
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    /// Server-assigned id (UUIDv7: newer ids sort later).
    pub id: String,
    /// Who placed it.
    pub user_id: String,
    /// The caller's idempotency key.
    pub idempotency_key: String,
    /// The fingerprint of the request that made it; empty for orders older than fingerprints.
    pub request_hash: String,
    /// Where it stands.
    pub status: Status,
    /// The work under way.
    pub phase: Phase,
    /// Why it failed or was cancelled.
    pub status_reason: String,
    /// ISO 4217 code of every amount in it.
    pub currency: String,
    /// Sum of the items, in minor units.
    pub total: i64,
    /// Where it ships.
    pub address: Address,
    /// The payment, once confirmed.
    pub payment_id: String,
    /// The delivery, once confirmed.
    pub delivery_id: String,
    /// How many transitions it went through.
    pub version: i64,
    /// Microseconds since the Unix epoch.
    pub create_time: i64,
    /// Microseconds since the Unix epoch.
    pub update_time: i64,
    /// What was ordered.
    pub items: Vec<ItemRecord>,
}

impl From<OrderRecord> for Order {
    fn from(record: OrderRecord) -> Self {
        let money = |minor| {
            Some(MoneyMessage {
                currency_code: record.currency.clone(),
                amount_minor: minor,
            })
        };
        Order {
            items: record
                .items
                .iter()
                .map(|item| LineItem {
                    sku: item.sku.clone(),
                    quantity: i32::try_from(item.quantity).unwrap_or(i32::MAX),
                    unit_price: money(item.unit_price),
                })
                .collect(),
            total: money(record.total),
            status: record.status.to_proto() as i32,
            id: record.id,
            user_id: record.user_id,
            shipping_address: Some(record.address),
            status_reason: record.status_reason,
            payment_id: record.payment_id,
            delivery_id: record.delivery_id,
            idempotency_key: record.idempotency_key,
            create_time: Some(timestamp(record.create_time)),
            update_time: Some(timestamp(record.update_time)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, quantity: i32) -> OrderLine {
        OrderLine {
            sku: sku.into(),
            quantity,
        }
    }

    fn request(items: Vec<OrderLine>) -> CreateOrderRequest {
        CreateOrderRequest {
            user_id: uuid::Uuid::now_v7().to_string(),
            items,
            shipping_address: Some(Address {
                recipient: "Ada".into(),
                line1: "1 Way".into(),
                line2: String::new(),
                city: "London".into(),
                postal_code: "N1".into(),
                country_code: "GB".into(),
            }),
            idempotency_key: "k".into(),
            expected_total: None,
        }
    }

    fn fields(violations: FieldViolations) -> Vec<String> {
        violations
            .violations()
            .iter()
            .map(|v| v.field.clone())
            .collect()
    }

    fn prices(list: &[(&str, &str, i64)]) -> HashMap<String, Money> {
        list.iter()
            .map(|(sku, currency, minor)| {
                (
                    (*sku).to_owned(),
                    Money::parse_positive(currency, *minor).expect("a price"),
                )
            })
            .collect()
    }

    #[test]
    fn totals_come_from_the_catalog_and_are_exact() {
        let order = OrderRequest::parse(request(vec![line("A", 3), line("B", 1)]))
            .expect("valid")
            .price(&prices(&[("A", "EUR", 1999), ("B", "EUR", 1)]))
            .expect("priced");
        assert_eq!(order.total.minor(), 5998);
        assert_eq!(order.total.currency().as_str(), "EUR");
        assert_eq!(order.items[0].unit_price.minor(), 1999);
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut bad = request(vec![line("", 0), line("B", 1), line("-B", 2)]);
        bad.user_id = "nope".into();
        bad.shipping_address = None;
        bad.idempotency_key = " ".into();
        bad.expected_total = Some(MoneyMessage {
            currency_code: "usd".into(),
            amount_minor: 1,
        });
        let fields = fields(OrderRequest::parse(bad).expect_err("invalid"));
        assert_eq!(
            fields,
            [
                "user_id",
                "items[0].sku",
                "items[0].quantity",
                "items[2].sku",
                "shipping_address",
                "idempotency_key",
                "expected_total.currency_code",
            ]
        );
    }

    #[test]
    fn item_counts_are_bounded() {
        assert_eq!(
            fields(OrderRequest::parse(request(vec![])).expect_err("empty")),
            ["items"]
        );
        let many = (0..101).map(|i| line(&format!("S{i}"), 1)).collect();
        assert_eq!(
            fields(OrderRequest::parse(request(many)).expect_err("too many")),
            ["items"]
        );
    }

    #[test]
    fn unknown_products_mixed_currencies_and_changed_prices_are_refused() {
        let parsed = || OrderRequest::parse(request(vec![line("A", 1), line("B", 2)])).expect("ok");
        assert_eq!(
            parsed().price(&prices(&[("A", "EUR", 100)])).err(),
            Some(PricingError::UnknownProducts(vec!["B".into()]))
        );
        assert!(matches!(
            parsed().price(&prices(&[("A", "EUR", 100), ("B", "USD", 100)])),
            Err(PricingError::MixedCurrencies(..))
        ));
        let mut expecting = request(vec![line("A", 1), line("B", 2)]);
        expecting.expected_total = Some(MoneyMessage {
            currency_code: "EUR".into(),
            amount_minor: 300,
        });
        let catalog = prices(&[("A", "EUR", 100), ("B", "EUR", 100)]);
        let priced = OrderRequest::parse(expecting.clone())
            .expect("ok")
            .price(&catalog)
            .expect("the expected total");
        assert_eq!(priced.total.minor(), 300);
        let dearer = prices(&[("A", "EUR", 100), ("B", "EUR", 101)]);
        assert_eq!(
            OrderRequest::parse(expecting)
                .expect("ok")
                .price(&dearer)
                .err(),
            Some(PricingError::PriceChanged {
                expected: "EUR 300".into(),
                actual: "EUR 302".into(),
            })
        );
    }

    #[test]
    fn the_dearest_order_the_limits_allow_still_has_a_total() {
        let dearest: Vec<_> = (0..MAX_ITEMS)
            .map(|i| line(&format!("S{i}"), MAX_QUANTITY))
            .collect();
        let catalog: HashMap<String, Money> = (0..MAX_ITEMS)
            .map(|i| {
                (
                    format!("S{i}"),
                    Money::parse_positive("EUR", MAX_UNIT_PRICE_MINOR).expect("a price"),
                )
            })
            .collect();
        let total = OrderRequest::parse(request(dearest))
            .expect("valid")
            .price(&catalog)
            .expect("priced")
            .total;
        assert_eq!(
            total.minor(),
            MAX_UNIT_PRICE_MINOR * i64::from(MAX_QUANTITY) * MAX_ITEMS as i64
        );
    }
}
