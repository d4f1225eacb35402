//! The built `orderly up` over HTTP: the gateway in front of every service, in one process, with
//! its data kept across a restart.

use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::signal::Signal;
use orderly_kit::http::client::{self, Response};
use serde_json::{Value, json};

use crate::common::{Orderly, PATIENCE, metric, scrape, up_args};

async fn start(dir: &str) -> Orderly {
    let args = up_args(dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Orderly::start_serving(&args, &["UserService", "OrderService", "gateway"]).await
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Response {
    client::request_json(addr, method, path, headers, body, PATIENCE)
        .await
        .expect("the gateway answers")
}

fn body(response: &Response) -> Value {
    response
        .json()
        .unwrap_or_else(|e| panic!("{e}: {}", response.body))
}

#[tokio::test]
async fn up_serves_rest_and_keeps_its_data_across_restarts() {
    let data = tempfile::tempdir().expect("data dir");
    let dir = data.path().to_str().expect("utf-8 path");
    let mut first = start(dir).await;
    let gateway = first.addrs["gateway"];

    let created = send(
        gateway,
        "POST",
        "/v1/users",
        &[],
        &json!({"name": "Ada", "email": "ada@example.com"}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let user = body(&created);
    let user_id = user["id"].as_str().expect("id").to_owned();
    let order = json!({
        "userId": user_id,
        "items": [{"sku": "BOOK-1", "quantity": 1}],
        "shippingAddress": {"recipient": "Ada", "line1": "1 Way", "city": "London", "postalCode": "N1", "countryCode": "GB"}
    });
    let placed = send(
        gateway,
        "POST",
        "/v1/orders",
        &[("Idempotency-Key", "e2e-1")],
        &order,
    )
    .await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    let placed = body(&placed);
    assert_eq!(placed["status"], "ORDER_STATUS_CONFIRMED");
    let order_id = placed["id"].as_str().expect("id").to_owned();

    let read = client::get(gateway, &format!("/v1/orders/{order_id}"))
        .await
        .expect("GET");
    assert_eq!(read.status, 200);
    // Priced by the demo catalog.
    assert_eq!(body(&read)["total"]["amountMinor"], "1999");
    assert_eq!(body(&read)["items"][0]["unitPrice"]["amountMinor"], "1999");

    let bad = send(
        gateway,
        "POST",
        "/v1/users",
        &[],
        &json!({"name": "", "email": "nope"}),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.header("content-type"), Some("application/problem+json"));
    let problem = body(&bad);
    assert_eq!(problem["status"], 400);
    assert_eq!(problem["code"], "INVALID_ARGUMENT");
    let mut fields: Vec<_> = problem["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| v["field"].clone())
        .collect();
    fields.sort_by_key(ToString::to_string);
    assert_eq!(fields, [json!("email"), json!("name")]);

    // The gateway's own RED metrics, per route.
    let metrics = scrape(first.admin).await;
    let labels = [
        ("http_route", "/v1/orders"),
        ("http_request_method", "POST"),
        ("http_response_status_code", "201"),
    ];
    assert_eq!(
        metric(&metrics, "http_server_request_duration_seconds", &labels),
        1.0
    );

    first.signal(Signal::SIGTERM);
    assert!(first.exit().await.success(), "clean exit on SIGTERM");

    let mut second = start(dir).await;
    let gateway = second.addrs["gateway"];
    let user_again = client::get(gateway, &format!("/v1/users/{user_id}"))
        .await
        .expect("GET");
    assert_eq!(user_again.status, 200);
    assert_eq!(body(&user_again), user);
    let order_again = client::get(gateway, &format!("/v1/orders/{order_id}"))
        .await
        .expect("GET");
    assert_eq!(order_again.status, 200);
    assert_eq!(body(&order_again), placed);
    second.signal(Signal::SIGINT);
    assert!(second.exit().await.success(), "clean exit on SIGINT");
}

#[tokio::test]
async fn check_succeeds_only_against_a_ready_process() {
    let data = tempfile::tempdir().expect("data dir");
    let mut suite = start(data.path().to_str().expect("utf-8 path")).await;
    let check = |admin: String| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_orderly"))
            .args(["check", "--admin", &admin])
            .output()
            .await
            .expect("run check")
            .status
    };
    // Ready once every service's first health probe passed.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check(suite.admin.to_string()).await.success() {
        assert!(tokio::time::Instant::now() < deadline, "ready in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    suite.signal(Signal::SIGTERM);
    assert!(suite.exit().await.success());
    let closed = crate::common::free_port();
    assert!(
        !check(format!("127.0.0.1:{closed}")).await.success(),
        "nothing listens there"
    );
}

/// `orderly up` starts with the demo catalog, which anyone may browse without a token (changing
/// it needs an admin's); `--empty-catalog` starts with none.
#[tokio::test]
async fn up_serves_a_demo_catalog_anyone_may_browse() {
    let data = tempfile::tempdir().expect("data dir");
    let dir = data.path().to_str().expect("utf-8 path");
    let args = crate::common::secured_up_args(dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut up = Orderly::start_serving(&args, &["UserService", "OrderService", "gateway"]).await;
    let gateway = up.addrs["gateway"];

    let listed = client::get(gateway, "/v1/products?page_size=1000")
        .await
        .expect("GET");
    assert_eq!(listed.status, 200, "{}", listed.body);
    let products = body(&listed)["products"]
        .as_array()
        .expect("products")
        .clone();
    assert!(
        products.len() >= 24,
        "a few dozen products: {}",
        products.len()
    );
    let book = client::get(gateway, "/v1/products/BOOK-1")
        .await
        .expect("GET");
    assert_eq!(book.status, 200, "{}", book.body);
    assert_eq!(body(&book)["price"]["amountMinor"], "1999");
    let coffee = client::get(gateway, "/v1/products?query=COFFEE")
        .await
        .expect("GET");
    let found = body(&coffee)["products"]
        .as_array()
        .expect("products")
        .clone();
    assert!(found.len() >= 2, "{found:?}");
    for product in &found {
        let text = format!(
            "{} {} {}",
            product["sku"], product["name"], product["description"]
        );
        assert!(text.to_lowercase().contains("coffee"), "{text}");
    }
    let create = send(
        gateway,
        "POST",
        "/v1/products",
        &[],
        &json!({"sku": "NEW-1", "name": "New", "price": {"currencyCode": "EUR", "amountMinor": "100"}}),
    )
    .await;
    assert_eq!(create.status, 401, "changing the catalog needs a token");
    up.signal(Signal::SIGTERM);
    assert!(up.exit().await.success());

    let empty = tempfile::tempdir().expect("data dir");
    let mut args = crate::common::up_args(empty.path().to_str().expect("utf-8 path"));
    args.push("--empty-catalog".to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut up = Orderly::start_serving(&args, &["UserService", "OrderService", "gateway"]).await;
    let listed = client::get(up.addrs["gateway"], "/v1/products")
        .await
        .expect("GET");
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(body(&listed)["products"], json!([]));
    up.signal(Signal::SIGTERM);
    assert!(up.exit().await.success());
}
