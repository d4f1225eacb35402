//! The OpenAPI document and the routes served are the same set.

use std::collections::BTreeSet;

use serde_json::Value;

use orderly_testkit::rest::{Stack, body};

/// The routes the API promises (issues 7 and 19), and the document itself.
const ROUTES: [(&str, &str); 16] = [
    ("get", "/v1/users/{id}"),
    ("post", "/v1/users"),
    ("patch", "/v1/users/{id}"),
    ("delete", "/v1/users/{id}"),
    ("get", "/v1/users"),
    ("post", "/v1/orders"),
    ("get", "/v1/orders/{id}"),
    ("get", "/v1/orders"),
    ("post", "/v1/orders/{id}:cancel"),
    ("get", "/v1/orders/{id}:watch"),
    ("get", "/v1/products"),
    ("get", "/v1/products/{sku}"),
    ("post", "/v1/products"),
    ("patch", "/v1/products/{sku}"),
    ("post", "/v1/products/{sku}:adjustStock"),
    ("get", "/openapi.json"),
];

#[tokio::test]
async fn every_documented_operation_is_served_and_every_route_is_documented() {
    let stack = Stack::start().await;
    let response = stack.get("/openapi.json").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let document = body(&response);
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document,
        orderly_gateway::openapi(),
        "the served document is the one generated from the routes"
    );

    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let promised: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, promised);

    // Each documented operation answers as a route, not as the no-route fallback.
    let id = "0193a5b2-7c1e-7d30-9f41-2b8c6d0e4a17";
    for (method, path) in &documented {
        let concrete = path.replace("{id}", id).replace("{sku}", "BOOK");
        let method = method.to_uppercase();
        let answer = stack
            .send(
                &method,
                &concrete,
                &[("Content-Type", "application/json")],
                b"{}",
            )
            .await;
        let reason = serde_json::from_str::<Value>(&answer.body)
            .ok()
            .and_then(|b| b["reason"].as_str().map(str::to_owned));
        assert_ne!(
            reason.as_deref(),
            Some("NO_ROUTE"),
            "{method} {concrete}: {}",
            answer.body
        );
        assert!(
            answer.status < 500,
            "{method} {concrete}: {} {}",
            answer.status,
            answer.body
        );
    }

    // Every schema a document refers to is in it.
    let text = response.body.clone();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().expect("name");
        assert!(
            document["components"]["schemas"][name].is_object(),
            "schema {name} is missing"
        );
    }
    stack.stop().await;
}

/// The served document passes `openapi-spec-validator` (PyPI), the validator code generators'
/// users reach for. It runs where `ORDERLY_OPENAPI_VALIDATOR` names the validator's executable
/// (CI installs it), and says it skipped otherwise.
#[tokio::test]
async fn the_served_document_passes_openapi_spec_validator() {
    let Some(validator) = std::env::var_os("ORDERLY_OPENAPI_VALIDATOR") else {
        eprintln!("skipped: set ORDERLY_OPENAPI_VALIDATOR to openapi-spec-validator's path");
        return;
    };
    let stack = Stack::start().await;
    let response = stack.get("/openapi.json").await;
    assert_eq!(response.status, 200);
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &response.body).expect("write the document");
    let output = tokio::process::Command::new(validator)
        .arg(&file)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(orderly_testkit::stack::PATIENCE, output)
        .await
        .expect("the validator ends in time")
        .expect("the validator runs");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    stack.stop().await;
}

/// The document states the services' rules with the very constants their validators use, and the
/// gateway keeps to them: a value just inside a documented bound is accepted where one just outside
/// is refused, naming the field.
#[tokio::test]
async fn the_document_states_the_rules_the_services_enforce() {
    use orderly::validate::limits::{MAX_QUANTITY, MAX_UNIT_PRICE_MINOR, USER_NAME_CHARS};
    let document = orderly_gateway::openapi();
    let schemas = &document["components"]["schemas"];
    let name = &schemas["NewUser"]["properties"]["name"];
    assert_eq!(name["maxLength"], USER_NAME_CHARS);
    assert_eq!(name["minLength"], 1);
    assert_eq!(
        schemas["NewUser"]["required"],
        serde_json::json!(["name", "email"])
    );
    assert_eq!(
        schemas["LineItem"]["properties"]["quantity"]["maximum"],
        MAX_QUANTITY
    );
    let currencies = schemas["Money"]["properties"]["currencyCode"]["enum"]
        .as_array()
        .expect("currency codes");
    assert!(currencies.iter().any(|c| c == "EUR") && !currencies.iter().any(|c| c == "XXX"));
    let unit_price = &schemas["LineItem"]["properties"]["unitPrice"]["allOf"][1];
    assert_eq!(
        unit_price["properties"]["amountMinor"]["maximum"],
        MAX_UNIT_PRICE_MINOR
    );
    let get_user = &document["paths"]["/v1/users/{id}"]["get"]["parameters"][0];
    assert_eq!(get_user["schema"]["format"], "uuid");
    let create_order = &document["paths"]["/v1/orders"]["post"]["parameters"][0];
    assert_eq!(create_order["name"], "Idempotency-Key");
    assert_eq!(create_order["required"], true);

    let stack = Stack::start().await;
    let longest = "n".repeat(USER_NAME_CHARS);
    for (name, status) in [(longest.clone(), 201), (format!("{longest}n"), 400)] {
        let email = format!("{}@example.com", name.len());
        let answer = stack
            .json(
                "POST",
                "/v1/users",
                &[],
                &serde_json::json!({"name": name, "email": email}),
            )
            .await;
        assert_eq!(answer.status, status, "{}", answer.body);
        if status == 400 {
            assert_eq!(body(&answer)["violations"][0]["field"], "name");
        }
    }
    stack.stop().await;
}
