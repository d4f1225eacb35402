//! The JSON bodies of the REST API, in the proto3 JSON mapping: lowerCamelCase names (the proto
//! names are accepted too), enums by name, `int64` as a string (a number is accepted), timestamps as
//! RFC 3339, unknown fields refused. Integers are read as the mapping says parsers accept them: a
//! number or a string, in exponent or fractional notation when the value is integral (`"2"`,
//! `1e3`, `1.0`), and refused out of their type's range. Missing fields take their proto3 defaults, so the services'
//! own validation names what is missing. Responses always carry every scalar field, defaults
//! included (the mapping's option to emit them), so a client sees one shape; an absent message or
//! timestamp is left out.
//!
//! These are the gateway's own types rather than serde derives on the generated messages, so the
//! client library stays free of serde and the OpenAPI schemas are derived from the same types that
//! are parsed.

use std::time::{Duration, SystemTime};

use orderly::catalog::v1 as catalog;
use orderly::common::v1 as common;
use orderly::orders::v1 as orders;
use orderly::users::v1 as users;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// A protobuf timestamp as RFC 3339 in UTC with microseconds, e.g. `2026-11-28T09:30:00.123456Z`.
pub fn rfc3339(timestamp: Option<prost_types::Timestamp>) -> Option<String> {
    let timestamp = timestamp?;
    let since_epoch = Duration::new(
        u64::try_from(timestamp.seconds).ok()?,
        u32::try_from(timestamp.nanos).ok()?,
    );
    Some(humantime::format_rfc3339_micros(SystemTime::UNIX_EPOCH + since_epoch).to_string())
}

/// A user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The user's id.
    #[schema(example = "0193a5b2-7c1e-7d30-9f41-2b8c6d0e4a17")]
    pub id: String,
    /// The user's display name.
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    /// The user's email address, unique among users.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// When the user was created.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub create_time: Option<String>,
    /// When the user was last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub update_time: Option<String>,
}

impl From<users::User> for User {
    fn from(user: users::User) -> Self {
        Self {
            id: user.id,
            name: user.name,
            email: user.email,
            create_time: rfc3339(user.create_time),
            update_time: rfc3339(user.update_time),
        }
    }
}

/// The body of `POST /v1/users`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NewUser {
    /// The user's display name.
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    /// The user's email address.
    #[schema(example = "ada@example.com")]
    pub email: String,
}

/// The body of `PATCH /v1/users/{id}`: the fields to change. Without an `updateMask` query
/// parameter, the fields present are the ones changed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UserPatch {
    /// A new display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new email address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// One page of users.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserPage {
    /// The users of this page, oldest first.
    pub users: Vec<User>,
    /// The token of the next page; empty on the last.
    pub next_page_token: String,
}

/// An amount of money in minor units of its currency (cents for USD).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Money {
    /// ISO 4217 currency code.
    #[serde(alias = "currency_code")]
    #[schema(example = "EUR")]
    pub currency_code: String,
    /// The amount in minor units; a string (proto3 `int64`), a number is accepted.
    #[serde(
        alias = "amount_minor",
        serialize_with = "int64_string",
        deserialize_with = "int64_string_or_number"
    )]
    #[schema(value_type = String, format = Int64, example = "1999", default = "0")]
    pub amount_minor: i64,
}

impl From<common::Money> for Money {
    fn from(money: common::Money) -> Self {
        Self {
            currency_code: money.currency_code,
            amount_minor: money.amount_minor,
        }
    }
}

impl From<Money> for common::Money {
    fn from(money: Money) -> Self {
        Self {
            currency_code: money.currency_code,
            amount_minor: money.amount_minor,
        }
    }
}

/// A postal address.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Address {
    /// Who receives the parcel.
    #[schema(example = "Ada Lovelace")]
    pub recipient: String,
    /// Street and number.
    #[schema(example = "12 St James's Square")]
    pub line1: String,
    /// More of the address, if needed.
    pub line2: String,
    /// City.
    #[schema(example = "London")]
    pub city: String,
    /// Postal code.
    #[serde(alias = "postal_code")]
    #[schema(example = "SW1Y 4JH")]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    #[serde(alias = "country_code")]
    #[schema(example = "GB")]
    pub country_code: String,
}

impl From<common::Address> for Address {
    fn from(a: common::Address) -> Self {
        Self {
            recipient: a.recipient,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            country_code: a.country_code,
        }
    }
}

impl From<Address> for common::Address {
    fn from(a: Address) -> Self {
        Self {
            recipient: a.recipient,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            country_code: a.country_code,
        }
    }
}

/// One line of a placed order, at the catalog's price.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LineItem {
    /// The stock-keeping unit ordered.
    #[schema(example = "BOOK-1843")]
    pub sku: String,
    /// How many, at least 1.
    #[serde(deserialize_with = "int32_lenient")]
    #[schema(example = 2)]
    pub quantity: i32,
    /// The price of one, from the catalog when the order was placed.
    #[serde(alias = "unit_price", skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Money>,
}

impl From<orders::LineItem> for LineItem {
    fn from(item: orders::LineItem) -> Self {
        Self {
            sku: item.sku,
            quantity: item.quantity,
            unit_price: item.unit_price.map(Money::from),
        }
    }
}

/// One line of an order to place: a product and how many; the catalog sets the price.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OrderLine {
    /// The stock-keeping unit of a product of the catalog; each once per order.
    #[schema(example = "BOOK-1")]
    pub sku: String,
    /// How many, at least 1.
    #[serde(deserialize_with = "int32_lenient")]
    #[schema(example = 2)]
    pub quantity: i32,
}

impl From<OrderLine> for orders::OrderLine {
    fn from(line: OrderLine) -> Self {
        Self {
            sku: line.sku,
            quantity: line.quantity,
        }
    }
}

/// A product of the catalog.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// The product's stock-keeping unit: its id.
    #[schema(example = "BOOK-1")]
    pub sku: String,
    /// What it is called.
    #[schema(example = "The Rust Programming Language")]
    pub name: String,
    /// What it is.
    pub description: String,
    /// The price of one unit; orders are charged at it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<Money>,
    /// Units that can be sold now; a string (proto3 `int64`).
    #[serde(
        serialize_with = "int64_string",
        deserialize_with = "int64_string_or_number"
    )]
    #[schema(value_type = String, format = Int64, example = "100")]
    pub stock_on_hand: i64,
    /// Units reserved for orders being placed.
    #[serde(
        serialize_with = "int64_string",
        deserialize_with = "int64_string_or_number"
    )]
    #[schema(value_type = String, format = Int64, example = "0")]
    pub stock_reserved: i64,
    /// Units sold.
    #[serde(
        serialize_with = "int64_string",
        deserialize_with = "int64_string_or_number"
    )]
    #[schema(value_type = String, format = Int64, example = "0")]
    pub stock_sold: i64,
    /// When the product was created.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub create_time: Option<String>,
    /// When it last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub update_time: Option<String>,
}

impl From<catalog::Product> for Product {
    fn from(product: catalog::Product) -> Self {
        Self {
            sku: product.sku,
            name: product.name,
            description: product.description,
            price: product.price.map(Money::from),
            stock_on_hand: product.stock_on_hand,
            stock_reserved: product.stock_reserved,
            stock_sold: product.stock_sold,
            create_time: rfc3339(product.create_time),
            update_time: rfc3339(product.update_time),
        }
    }
}

/// One page of products.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductPage {
    /// The products of this page, in SKU order.
    pub products: Vec<Product>,
    /// The token of the next page; empty on the last.
    pub next_page_token: String,
}

/// The body of `POST /v1/products`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NewProduct {
    /// The product's stock-keeping unit, unique in the catalog.
    #[schema(example = "MUG-2")]
    pub sku: String,
    /// What it is called.
    #[schema(example = "Enamel mug, green")]
    pub name: String,
    /// What it is.
    pub description: String,
    /// The price of one unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<Money>,
    /// Units on hand to start with; a string (proto3 `int64`), a number is accepted.
    #[serde(
        alias = "stock_on_hand",
        serialize_with = "int64_string",
        deserialize_with = "int64_string_or_number"
    )]
    #[schema(value_type = String, format = Int64, example = "100", default = "0")]
    pub stock_on_hand: i64,
}

/// The body of `PATCH /v1/products/{sku}`: the fields to change. Without an `updateMask` query
/// parameter, the fields present are the ones changed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ProductPatch {
    /// A new name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A new price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<Money>,
}

/// The body of `POST /v1/products/{sku}:adjustStock`; the idempotency key travels in the
/// `Idempotency-Key` header.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct StockAdjustment {
    /// Units to add (positive) or take away (negative); a string (proto3 `int64`), a number is
    /// accepted.
    #[serde(
        serialize_with = "int64_string",
        deserialize_with = "int64_string_or_number"
    )]
    #[schema(value_type = String, format = Int64, example = "25")]
    pub delta: i64,
    /// Why, for the record.
    #[schema(example = "delivery received")]
    pub reason: String,
}

/// The body of `POST /v1/orders`; the idempotency key travels in the `Idempotency-Key` header.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NewOrder {
    /// Who places the order.
    #[serde(alias = "user_id")]
    pub user_id: String,
    /// What is ordered: products of the catalog and how many of each.
    pub items: Vec<OrderLine>,
    /// Where it goes.
    #[serde(alias = "shipping_address", skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    /// The total the caller expects to pay; when the catalog's prices make another, the order is
    /// refused (409, reason PRICE_CHANGED) with nothing reserved or charged.
    #[serde(alias = "expected_total", skip_serializing_if = "Option::is_none")]
    pub expected_total: Option<Money>,
}

/// The body of `POST /v1/orders/{id}:cancel`, which may be empty.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CancelOrder {
    /// Why the order is cancelled.
    #[schema(example = "changed my mind")]
    pub reason: String,
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[allow(clippy::enum_variant_names)]
pub enum OrderStatus {
    /// Unknown (never stored).
    #[serde(rename = "ORDER_STATUS_UNSPECIFIED")]
    Unspecified,
    /// Being paid for and scheduled.
    #[serde(rename = "ORDER_STATUS_PENDING")]
    Pending,
    /// Paid for and scheduled.
    #[serde(rename = "ORDER_STATUS_CONFIRMED")]
    Confirmed,
    /// Payment or delivery failed; whatever was done is undone.
    #[serde(rename = "ORDER_STATUS_FAILED")]
    Failed,
    /// Cancelled by the customer; refunded.
    #[serde(rename = "ORDER_STATUS_CANCELLED")]
    Cancelled,
}

impl From<i32> for OrderStatus {
    fn from(value: i32) -> Self {
        match orders::OrderStatus::try_from(value) {
            Ok(orders::OrderStatus::Pending) => Self::Pending,
            Ok(orders::OrderStatus::Confirmed) => Self::Confirmed,
            Ok(orders::OrderStatus::Failed) => Self::Failed,
            Ok(orders::OrderStatus::Cancelled) => Self::Cancelled,
            Ok(orders::OrderStatus::Unspecified) | Err(_) => Self::Unspecified,
        }
    }
}

/// An order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// The order's id.
    pub id: String,
    /// Who placed it.
    pub user_id: String,
    /// What was ordered.
    pub items: Vec<LineItem>,
    /// The sum of the items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<Money>,
    /// Where it goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    /// Where it stands.
    pub status: OrderStatus,
    /// Why it failed or was cancelled.
    pub status_reason: String,
    /// Its payment, once charged.
    pub payment_id: String,
    /// Its delivery, once scheduled.
    pub delivery_id: String,
    /// The key it was placed with.
    pub idempotency_key: String,
    /// When it was placed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub create_time: Option<String>,
    /// When it last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub update_time: Option<String>,
}

impl From<orders::Order> for Order {
    fn from(order: orders::Order) -> Self {
        Self {
            id: order.id,
            user_id: order.user_id,
            items: order.items.into_iter().map(LineItem::from).collect(),
            total: order.total.map(Money::from),
            shipping_address: order.shipping_address.map(Address::from),
            status: OrderStatus::from(order.status),
            status_reason: order.status_reason,
            payment_id: order.payment_id,
            delivery_id: order.delivery_id,
            idempotency_key: order.idempotency_key,
            create_time: rfc3339(order.create_time),
            update_time: rfc3339(order.update_time),
        }
    }
}

/// One page of a user's orders.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPage {
    /// The orders of this page.
    pub orders: Vec<Order>,
    /// The token of the next page; empty on the last.
    pub next_page_token: String,
}

fn int64_string<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn int64_string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    lenient_integer(deserializer)
}

/// An `int32` as the proto3 JSON mapping reads one (see [`lenient_integer`]).
fn int32_lenient<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    let value = lenient_integer(deserializer)?;
    i32::try_from(value).map_err(|_| serde::de::Error::custom("out of range for a 32-bit integer"))
}

/// An integer as the proto3 JSON mapping says parsers accept one: a JSON number or a string
/// holding one, in decimal, exponent or fractional notation, as long as the value is integral
/// (`2`, `"2"`, `1e3`, `"1e3"`, `1.0`) and fits 64 bits.
fn lenient_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Integer {
        Number(serde_json::Number),
        Text(String),
    }
    let refused = || serde::de::Error::custom("expected an integer, or a string of one");
    let (exact, float) = match Integer::deserialize(deserializer)? {
        Integer::Number(number) => (number.as_i64(), number.as_f64()),
        Integer::Text(text) => (text.parse().ok(), text.parse::<f64>().ok()),
    };
    if let Some(exact) = exact {
        return Ok(exact);
    }
    // 2^63 is exactly representable; every integral f64 below it in magnitude fits an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    match float {
        Some(value) if value.is_finite() && value.fract() == 0.0 && value.abs() < LIMIT =>
        {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "integral and within range: checked above"
            )]
            Ok(value as i64)
        }
        _ => Err(refused()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int64_is_written_as_a_string_and_read_from_either() {
        let money: Money =
            serde_json::from_str(r#"{"currencyCode":"EUR","amountMinor":"1999"}"#).expect("string");
        assert_eq!(money.amount_minor, 1999);
        let money: Money =
            serde_json::from_str(r#"{"currency_code":"EUR","amount_minor":250}"#).expect("number");
        assert_eq!(money.amount_minor, 250);
        assert_eq!(
            serde_json::to_value(&money).expect("json"),
            serde_json::json!({"currencyCode": "EUR", "amountMinor": "250"})
        );
        assert!(serde_json::from_str::<Money>(r#"{"amountMinor":"12x"}"#).is_err());
    }

    #[test]
    fn integers_are_read_as_the_proto3_json_mapping_allows() {
        let item = |json: &str| serde_json::from_str::<LineItem>(json).map(|i| i.quantity);
        assert_eq!(item(r#"{"quantity":"2"}"#).ok(), Some(2));
        assert_eq!(item(r#"{"quantity":2.0}"#).ok(), Some(2));
        assert_eq!(item(r#"{"quantity":2e0}"#).ok(), Some(2));
        assert!(item(r#"{"quantity":2.5}"#).is_err(), "not integral");
        assert!(item(r#"{"quantity":3000000000}"#).is_err(), "beyond int32");
        assert!(item(r#"{"quantity":""}"#).is_err(), "empty");
        let amount = |json: &str| serde_json::from_str::<Money>(json).map(|m| m.amount_minor);
        assert_eq!(amount(r#"{"amountMinor":1e3}"#).ok(), Some(1000));
        assert_eq!(amount(r#"{"amountMinor":1.0}"#).ok(), Some(1));
        assert_eq!(amount(r#"{"amountMinor":"1e3"}"#).ok(), Some(1000));
        assert_eq!(amount(r#"{"amountMinor":-7}"#).ok(), Some(-7));
        assert!(amount(r#"{"amountMinor":1e19}"#).is_err(), "beyond int64");
        assert!(amount(r#"{"amountMinor":"NaN"}"#).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<NewUser>(r#"{"name":"a","nickname":"b"}"#).is_err());
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = prost_types::Timestamp {
            seconds: 1_795_000_000,
            nanos: 123_456_000,
        };
        assert_eq!(
            rfc3339(Some(at)).as_deref(),
            Some("2026-11-18T11:06:40.123456Z")
        );
        assert_eq!(rfc3339(None), None);
    }
}
