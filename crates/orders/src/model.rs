//! Validated orders: a [`NewOrder`] is only made from a request whose every field checked out, with
//! its total computed in checked integer arithmetic. Orders as stored are [`OrderRecord`]s.

use orderly::common::v1::{Address, Money as MoneyMessage};
use orderly::money::{Money, MoneyError};
use orderly::orders::v1::{CreateOrderRequest, LineItem, Order, OrderStatus};
use orderly::validate::required_text;
use orderly_kit::status::FieldViolations;
use orderly_kit::time::timestamp;

pub use orderly::validate::limits::{
    KEY_CHARS as MAX_KEY_CHARS, MAX_ITEMS, MAX_QUANTITY, MAX_UNIT_PRICE_MINOR, MIN_ITEMS,
    SKU_CHARS as MAX_SKU_CHARS,
};

/// One validated line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Stock keeping unit.
    pub sku: String,
    /// How many, at least 1.
    pub quantity: i32,
    /// Price of one, in the order's currency.
    pub unit_price: Money,
}

/// A validated CreateOrder request.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// The user placing it.
    pub user_id: uuid::Uuid,
    /// What is ordered.
    pub items: Vec<Item>,
    /// Sum of quantity × unit price.
    pub total: Money,
    /// Where it ships.
    pub address: Address,
    /// The caller's idempotency key.
    pub idempotency_key: String,
    /// A hash of everything the request asks for (see `NewOrder::fingerprint`), stored with the
    /// key so that the key reused for a different request can be told apart from a replay.
    pub fingerprint: String,
}

impl NewOrder {
    /// SHA-256, in hex, over the validated request: user, items, address. Each field is written
    /// with its length first, so no two requests share an encoding.
    fn fingerprint(user_id: &uuid::Uuid, items: &[Item], address: &Address) -> String {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        field(user_id.as_bytes());
        for item in items {
            field(item.sku.as_bytes());
            field(&item.quantity.to_le_bytes());
            field(item.unit_price.currency().as_str().as_bytes());
            field(&item.unit_price.minor().to_le_bytes());
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
        let items: Vec<Option<Item>> = request
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_item(&mut violations, i, item))
            .collect();
        // Every line costs something (a free order would reach payments as a zero charge, which
        // it refuses), so every total does.
        let total = total(&mut violations, &items);
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
        match (user_id, total, request.shipping_address, key) {
            (Some(user_id), Some(total), Some(address), Some(idempotency_key))
                if violations.is_empty() =>
            {
                let items: Vec<Item> = items.into_iter().flatten().collect();
                let fingerprint = Self::fingerprint(&user_id, &items, &address);
                Ok(Self {
                    user_id,
                    items,
                    total,
                    address,
                    idempotency_key,
                    fingerprint,
                })
            }
            _ => Err(violations),
        }
    }
}

fn parse_item(violations: &mut FieldViolations, index: usize, item: &LineItem) -> Option<Item> {
    let field = |name: &str| format!("items[{index}].{name}");
    let sku = violations.text(&field("sku"), required_text(&item.sku, MAX_SKU_CHARS));
    if !(1..=MAX_QUANTITY).contains(&item.quantity) {
        violations.add(field("quantity"), format!("must be 1 to {MAX_QUANTITY}"));
    }
    let price = match &item.unit_price {
        None => {
            violations.add(field("unit_price"), "is required");
            None
        }
        Some(MoneyMessage {
            currency_code,
            amount_minor,
        }) => match Money::parse_positive(currency_code, *amount_minor) {
            // Every line costs something and no line can cost so much that a total overflows:
            // both are rules of one field, which a schema can state and a caller check alone.
            Ok(price) if price.minor() <= MAX_UNIT_PRICE_MINOR => Some(price),
            Ok(_) => {
                violations.add(
                    field("unit_price.amount_minor"),
                    format!("must be at most {MAX_UNIT_PRICE_MINOR}"),
                );
                None
            }
            Err(error @ MoneyError::BadCurrency) => {
                violations.add(field("unit_price.currency_code"), error.to_string());
                None
            }
            Err(error) => {
                violations.add(field("unit_price.amount_minor"), error.to_string());
                None
            }
        },
    };
    match (sku, price) {
        (Some(sku), Some(unit_price)) if (1..=MAX_QUANTITY).contains(&item.quantity) => {
            Some(Item {
                sku,
                quantity: item.quantity,
                unit_price,
            })
        }
        _ => None,
    }
}

/// The sum over valid items; reports mixed currencies and overflow.
fn total(violations: &mut FieldViolations, items: &[Option<Item>]) -> Option<Money> {
    let mut total: Option<Money> = None;
    for (index, item) in items.iter().enumerate() {
        let Some(item) = item else { continue };
        let line = item.unit_price.checked_mul(i64::from(item.quantity));
        let sum = line.and_then(|line| match total {
            None => Ok(line),
            Some(total) => total.checked_add(line),
        });
        match sum {
            Ok(sum) => total = Some(sum),
            Err(error @ MoneyError::MixedCurrencies) => {
                violations.add(
                    format!("items[{index}].unit_price.currency_code"),
                    error.to_string(),
                );
                return None;
            }
            Err(_) => {
                violations.add("items", "the order total is too large");
                return None;
            }
        }
    }
    total
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

    fn item(sku: &str, quantity: i32, currency: &str, price: i64) -> LineItem {
        LineItem {
            sku: sku.into(),
            quantity,
            unit_price: Some(MoneyMessage {
                currency_code: currency.into(),
                amount_minor: price,
            }),
        }
    }

    fn request(items: Vec<LineItem>) -> CreateOrderRequest {
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
        }
    }

    fn fields(violations: FieldViolations) -> Vec<String> {
        violations
            .violations()
            .iter()
            .map(|v| v.field.clone())
            .collect()
    }

    #[test]
    fn totals_are_exact() {
        let order = NewOrder::parse(request(vec![
            item("A", 3, "EUR", 1999),
            item("B", 1, "EUR", 1),
        ]))
        .expect("valid");
        assert_eq!(order.total.minor(), 5998);
        assert_eq!(order.total.currency().as_str(), "EUR");
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut bad = request(vec![item("", 0, "EUR", -5), item("B", 1, "usd", 1)]);
        bad.user_id = "nope".into();
        bad.shipping_address = None;
        bad.idempotency_key = " ".into();
        let fields = fields(NewOrder::parse(bad).expect_err("invalid"));
        assert_eq!(
            fields,
            [
                "user_id",
                "items[0].sku",
                "items[0].quantity",
                "items[0].unit_price.amount_minor",
                "items[1].unit_price.currency_code",
                "shipping_address",
                "idempotency_key"
            ]
        );
    }

    #[test]
    fn item_counts_currencies_and_overflow_are_bounded() {
        assert_eq!(
            fields(NewOrder::parse(request(vec![])).expect_err("empty")),
            ["items"]
        );
        let many = (0..101)
            .map(|i| item(&format!("S{i}"), 1, "EUR", 1))
            .collect();
        assert_eq!(
            fields(NewOrder::parse(request(many)).expect_err("too many")),
            ["items"]
        );
        let mixed = vec![item("A", 1, "EUR", 1), item("B", 1, "USD", 1)];
        assert_eq!(
            fields(NewOrder::parse(request(mixed)).expect_err("mixed")),
            ["items[1].unit_price.currency_code"]
        );
        let free = vec![item("A", 2, "EUR", 1), item("B", 2, "EUR", 0)];
        assert_eq!(
            fields(NewOrder::parse(request(free)).expect_err("free")),
            ["items[1].unit_price.amount_minor"]
        );
        let unknown = vec![item("A", 1, "ZZZ", 100)];
        assert_eq!(
            fields(NewOrder::parse(request(unknown)).expect_err("no such currency")),
            ["items[0].unit_price.currency_code"]
        );
        let huge = vec![item("A", 1, "EUR", MAX_UNIT_PRICE_MINOR + 1)];
        assert_eq!(
            fields(NewOrder::parse(request(huge)).expect_err("too dear")),
            ["items[0].unit_price.amount_minor"]
        );
        // The dearest order the limits allow still has a total.
        let dearest = (0..MAX_ITEMS)
            .map(|i| item(&format!("S{i}"), MAX_QUANTITY, "EUR", MAX_UNIT_PRICE_MINOR))
            .collect();
        let total = NewOrder::parse(request(dearest)).expect("valid").total;
        assert_eq!(
            total.minor(),
            MAX_UNIT_PRICE_MINOR * i64::from(MAX_QUANTITY) * MAX_ITEMS as i64
        );
    }
}
