//! What the services refuse, written into the OpenAPI document: required fields, lengths, id
//! formats, bounds, patterns and currencies, from the very constants, patterns and currency list
//! the validators use (`orderly::validate`, `orderly::money`), so a request the document calls
//! valid is one the services accept, and tools that generate requests from it (schemathesis, code
//! generators) see the real rules.
//!
//! The derived schemas describe the JSON types; these rules are laid over the served document
//! (as JSON) because they come from those shared constants, which derive attributes cannot name.

use orderly::money::Currency;
use orderly::validate::limits::{
    ADDRESS_LINE_CHARS, CITY_CHARS, DESCRIPTION_CHARS, EMAIL_BYTES, KEY_CHARS, MAX_ITEMS,
    MAX_QUANTITY, MAX_STOCK, MAX_UNIT_PRICE_MINOR, MIN_ITEMS, POSTAL_CODE_CHARS,
    PRODUCT_NAME_CHARS, QUERY_CHARS, REASON_CHARS, RECIPIENT_CHARS, SKU_CHARS, USER_NAME_CHARS,
};
use orderly::validate::{COUNTRY_CODE_PATTERN, REQUIRED_TEXT_PATTERN, SKU_PATTERN, TEXT_PATTERN};
use serde_json::{Map, Value, json};

/// An idempotency key as the gateway reads it from its header: visible ASCII and spaces (what a
/// header value carries), not blank, at most [`KEY_CHARS`] characters.
const KEY_PATTERN: &str = "^[ -~]*[!-~][ -~]*$";

/// An amount of minor units as a JSON string (proto3's `int64`): at most 18 digits, which every
/// total the limits allow fits in.
const AMOUNT_PATTERN: &str = "^[0-9]{1,18}$";

/// The largest amount [`AMOUNT_PATTERN`] allows.
const MAX_AMOUNT: i64 = 999_999_999_999_999_999;

/// Lays the services' rules over `document`, the OpenAPI document as JSON.
pub fn constrain(document: &mut Value) {
    let schemas = "/components/schemas";
    // Users.
    require(document, &format!("{schemas}/NewUser"), &["name", "email"]);
    for body in ["NewUser", "UserPatch"] {
        let properties = format!("{schemas}/{body}/properties");
        merge(
            document,
            &format!("{properties}/name"),
            text(true, USER_NAME_CHARS),
        );
        merge(document, &format!("{properties}/email"), email());
    }
    // Something to change: `null` reads as absent (proto3 JSON), so one field must be a string.
    let given =
        |field: &str| json!({ "required": [field], "properties": { field: { "type": "string" } } });
    merge(
        document,
        &format!("{schemas}/UserPatch"),
        json!({ "anyOf": [given("name"), given("email")] }),
    );

    // Orders: the body, its lines, money and address (which orders answered also satisfy).
    require(
        document,
        &format!("{schemas}/NewOrder"),
        &["userId", "items", "shippingAddress"],
    );
    let order = format!("{schemas}/NewOrder/properties");
    merge(document, &format!("{order}/userId"), uuid());
    set(
        document,
        &format!("{order}/shippingAddress"),
        json!({ "$ref": "#/components/schemas/Address", "description": "Where it goes." }),
    );
    merge(
        document,
        &format!("{order}/items"),
        json!({ "minItems": MIN_ITEMS, "maxItems": MAX_ITEMS }),
    );
    set(
        document,
        &format!("{order}/expectedTotal"),
        json!({
            "description": "The total the caller expects to pay; another total at the catalog's prices is refused (409, PRICE_CHANGED).",
            "allOf": [
                { "$ref": "#/components/schemas/Money" },
                { "properties": { "amountMinor": { "pattern": "^0*[1-9][0-9]{0,17}$", "minimum": 1 } } },
            ],
        }),
    );
    for lines in ["OrderLine", "LineItem"] {
        let line = format!("{schemas}/{lines}/properties");
        merge(document, &format!("{line}/sku"), sku());
        merge(
            document,
            &format!("{line}/quantity"),
            json!({ "minimum": 1, "maximum": MAX_QUANTITY }),
        );
    }
    require(
        document,
        &format!("{schemas}/OrderLine"),
        &["sku", "quantity"],
    );
    require(
        document,
        &format!("{schemas}/LineItem"),
        &["sku", "quantity", "unitPrice"],
    );
    let line = format!("{schemas}/LineItem/properties");
    set(
        document,
        &format!("{line}/unitPrice"),
        price("The price of one, from the catalog when the order was placed."),
    );
    require(
        document,
        &format!("{schemas}/Money"),
        &["currencyCode", "amountMinor"],
    );
    let money = format!("{schemas}/Money/properties");
    merge(
        document,
        &format!("{money}/currencyCode"),
        json!({ "enum": Currency::codes() }),
    );
    // proto3 JSON takes an int64 as a string or a number.
    merge(
        document,
        &format!("{money}/amountMinor"),
        json!({
            "type": ["string", "integer"],
            "pattern": AMOUNT_PATTERN,
            "minimum": 0,
            "maximum": MAX_AMOUNT,
        }),
    );
    require(
        document,
        &format!("{schemas}/Address"),
        &["recipient", "line1", "city", "postalCode", "countryCode"],
    );
    let address = format!("{schemas}/Address/properties");
    for (field, required, max) in [
        ("recipient", true, RECIPIENT_CHARS),
        ("line1", true, ADDRESS_LINE_CHARS),
        ("line2", false, ADDRESS_LINE_CHARS),
        ("city", true, CITY_CHARS),
        ("postalCode", true, POSTAL_CODE_CHARS),
    ] {
        merge(document, &format!("{address}/{field}"), text(required, max));
    }
    merge(
        document,
        &format!("{address}/countryCode"),
        json!({ "pattern": COUNTRY_CODE_PATTERN }),
    );
    merge(
        document,
        &format!("{schemas}/CancelOrder/properties/reason"),
        text(false, REASON_CHARS),
    );

    // Products: what the catalog takes when they are created, changed and restocked. The patterns
    // of the stock counts spell MAX_STOCK (10⁹), which a test checks.
    require(
        document,
        &format!("{schemas}/NewProduct"),
        &["sku", "name", "price"],
    );
    for body in ["NewProduct", "ProductPatch"] {
        let properties = format!("{schemas}/{body}/properties");
        merge(
            document,
            &format!("{properties}/name"),
            text(true, PRODUCT_NAME_CHARS),
        );
        merge(
            document,
            &format!("{properties}/description"),
            text(false, DESCRIPTION_CHARS),
        );
        set(
            document,
            &format!("{properties}/price"),
            price("The price of one unit."),
        );
    }
    merge(
        document,
        &format!("{schemas}/NewProduct/properties/sku"),
        sku(),
    );
    merge(
        document,
        &format!("{schemas}/NewProduct/properties/stockOnHand"),
        json!({ "type": ["string", "integer"], "pattern": "^0*([0-9]{1,9}|1000000000)$", "minimum": 0, "maximum": MAX_STOCK }),
    );
    merge(
        document,
        &format!("{schemas}/ProductPatch"),
        json!({ "anyOf": [given("name"), given("description"), { "required": ["price"] }] }),
    );
    require(document, &format!("{schemas}/StockAdjustment"), &["delta"]);
    merge(
        document,
        &format!("{schemas}/StockAdjustment/properties/delta"),
        json!({
            "type": ["string", "integer"],
            "pattern": "^-?0*([1-9][0-9]{0,8}|1000000000)$",
            "minimum": -MAX_STOCK,
            "maximum": MAX_STOCK,
            "not": { "const": 0 },
            "description": "Units to add (positive) or take away (negative); not 0.",
        }),
    );
    merge(
        document,
        &format!("{schemas}/StockAdjustment/properties/reason"),
        text(false, REASON_CHARS),
    );

    // The events of a watch, one schema per event (as OpenAPI 3.2's `itemSchema` would say).
    set(
        document,
        "/paths/~1v1~1orders~1{id}:watch/get/responses/200/content/text~1event-stream/schema",
        json!({
            "type": "object",
            "required": ["event", "id", "data"],
            "properties": {
                "event": { "const": "order" },
                "id": { "type": "string", "pattern": "^[0-9]+$",
                    "description": "The order's update time, in microseconds since the Unix epoch." },
                "data": { "type": "string", "contentMediaType": "application/json",
                    "contentSchema": { "$ref": "#/components/schemas/Order" } },
            },
        }),
    );

    // Parameters: ids, page sizes, whose orders, the idempotency key.
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for operations in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in operations.values_mut() {
            let Some(parameters) = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for parameter in parameters.iter_mut().filter_map(Value::as_object_mut) {
                parameter_rules(parameter);
            }
        }
    }
}

/// The rules of one parameter, by its place and name.
fn parameter_rules(parameter: &mut Map<String, Value>) {
    let place = parameter.get("in").and_then(Value::as_str).unwrap_or("");
    let name = parameter.get("name").and_then(Value::as_str).unwrap_or("");
    let (required, rules) = match (place, name) {
        ("path", "id") | ("query", "user_id") => (true, uuid()),
        ("path", "sku") => (true, sku()),
        ("query", "query") => (false, text(false, QUERY_CHARS)),
        ("query", "page_size") => (false, json!({ "minimum": 0 })),
        ("header", "Idempotency-Key") => (
            true,
            json!({ "pattern": KEY_PATTERN, "maxLength": KEY_CHARS }),
        ),
        _ => return,
    };
    if required {
        parameter.insert("required".into(), Value::Bool(true));
    }
    if let Some(schema) = parameter.get_mut("schema") {
        merge_into(schema, rules);
    }
}

/// A free-text field: [`orderly::validate::text`] or `required_text` with at most `max_chars`.
fn text(required: bool, max_chars: usize) -> Value {
    if required {
        json!({ "minLength": 1, "maxLength": max_chars, "pattern": REQUIRED_TEXT_PATTERN })
    } else {
        json!({ "maxLength": max_chars, "pattern": TEXT_PATTERN })
    }
}

/// A unit price: money of at least one minor unit and at most [`MAX_UNIT_PRICE_MINOR`].
fn price(description: &str) -> Value {
    let digits = MAX_UNIT_PRICE_MINOR.to_string().len() - 1;
    json!({
        "description": description,
        "allOf": [
            { "$ref": "#/components/schemas/Money" },
            { "properties": { "amountMinor": {
                "pattern": format!("^0*[1-9][0-9]{{0,{digits}}}$"),
                "minimum": 1,
                "maximum": MAX_UNIT_PRICE_MINOR,
            } } },
        ],
    })
}

/// A SKU: [`orderly::validate::sku`].
fn sku() -> Value {
    json!({ "minLength": 1, "maxLength": SKU_CHARS, "pattern": SKU_PATTERN })
}

/// An email address as the users service takes it.
fn email() -> Value {
    json!({ "format": "email", "minLength": 1, "maxLength": EMAIL_BYTES, "pattern": TEXT_PATTERN })
}

/// An id: a UUID.
fn uuid() -> Value {
    json!({ "format": "uuid" })
}

/// Marks `fields` required in the object schema at `pointer`, and drops their defaults (a
/// required field has none).
fn require(document: &mut Value, pointer: &str, fields: &[&str]) {
    let Some(schema) = document.pointer_mut(pointer) else {
        return;
    };
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for field in fields {
            if let Some(property) = properties.get_mut(*field).and_then(Value::as_object_mut) {
                property.remove("default");
            }
        }
    }
    if let Some(schema) = schema.as_object_mut() {
        schema.insert("required".into(), json!(fields));
    }
}

/// Adds `rules`' keys to the schema at `pointer`.
fn merge(document: &mut Value, pointer: &str, rules: Value) {
    if let Some(schema) = document.pointer_mut(pointer) {
        merge_into(schema, rules);
    }
}

fn merge_into(schema: &mut Value, rules: Value) {
    if let (Some(schema), Value::Object(rules)) = (schema.as_object_mut(), rules) {
        schema.extend(rules);
    }
}

/// Replaces the schema at `pointer`.
fn set(document: &mut Value, pointer: &str, schema: Value) {
    if let Some(old) = document.pointer_mut(pointer) {
        *old = schema;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_stock_patterns_spell_the_largest_stock() {
        // The patterns of `stockOnHand` and `delta` end in this number.
        assert_eq!(super::MAX_STOCK.to_string(), "1000000000");
    }
}
