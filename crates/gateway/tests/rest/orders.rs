//! `/v1/orders`: place (with an idempotency key), get, list, cancel, over HTTP and JSON.

use serde_json::json;

use orderly_testkit::rest::{Stack, body, order_body, problem, violated_fields};

#[tokio::test]
async fn an_order_is_placed_once_read_listed_and_cancelled() {
    let stack = Stack::start().await;
    let user = stack.user("Ada").await;
    let user_id = user["id"].as_str().expect("id");

    let placed = stack
        .json(
            "POST",
            "/v1/orders",
            &[("Idempotency-Key", "order-1")],
            &order_body(user_id),
        )
        .await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    let order = body(&placed);
    let id = order["id"].as_str().expect("id").to_owned();
    assert_eq!(
        placed.header("location"),
        Some(format!("/v1/orders/{id}").as_str())
    );
    assert_eq!(order["status"], "ORDER_STATUS_CONFIRMED");
    assert_eq!(order["userId"], user_id);
    assert_eq!(order["idempotencyKey"], "order-1");
    // int64 is a string in the proto3 JSON mapping.
    assert_eq!(
        order["total"],
        json!({"currencyCode": "EUR", "amountMinor": "3998"})
    );
    assert_eq!(order["shippingAddress"]["postalCode"], "SW1Y 4JH");
    assert!(!order["paymentId"].as_str().expect("paymentId").is_empty());
    assert!(!order["deliveryId"].as_str().expect("deliveryId").is_empty());

    // The same key again is the same order, not a second one: 200, marked as a replay.
    let replayed = stack
        .json(
            "POST",
            "/v1/orders",
            &[("Idempotency-Key", "order-1")],
            &order_body(user_id),
        )
        .await;
    assert_eq!(replayed.status, 200, "{}", replayed.body);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(body(&replayed)["id"], id.as_str());
    assert_eq!(placed.header("idempotent-replayed"), None);

    let read = stack.get(&format!("/v1/orders/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(body(&read)["status"], "ORDER_STATUS_CONFIRMED");

    let listed = stack.get(&format!("/v1/orders?user_id={user_id}")).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let listed = body(&listed);
    let ids: Vec<_> = listed["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["id"].clone())
        .collect();
    assert_eq!(ids, [json!(id)]);
    assert_eq!(listed["nextPageToken"], "");

    let cancelled = stack
        .json(
            "POST",
            &format!("/v1/orders/{id}:cancel"),
            &[],
            &json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(body(&cancelled)["status"], "ORDER_STATUS_CANCELLED");
    // An empty body is a cancel without a reason; a cancelled order stays cancelled.
    let again = stack
        .send("POST", &format!("/v1/orders/{id}:cancel"), &[], b"")
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(body(&again)["status"], "ORDER_STATUS_CANCELLED");
    stack.stop().await;
}

#[tokio::test]
async fn bad_orders_are_refused_and_nothing_is_placed() {
    let stack = Stack::start().await;
    let user = stack.user("Ada").await;
    let user_id = user["id"].as_str().expect("id");

    let keyless = stack
        .json("POST", "/v1/orders", &[], &order_body(user_id))
        .await;
    assert_eq!(keyless.status, 400);
    assert_eq!(violated_fields(&problem(&keyless)), ["Idempotency-Key"]);

    let mut invalid = order_body(user_id);
    invalid["items"][0]["quantity"] = json!(0);
    invalid["shippingAddress"]["countryCode"] = json!("");
    let invalid = stack
        .json(
            "POST",
            "/v1/orders",
            &[("Idempotency-Key", "bad-1")],
            &invalid,
        )
        .await;
    assert_eq!(invalid.status, 400);
    let mut fields = violated_fields(&problem(&invalid));
    fields.sort();
    assert_eq!(fields, ["items[0].quantity", "shippingAddress.countryCode"]);

    let stranger = "0193a5b2-7c1e-7d30-9f41-2b8c6d0e4a17";
    let unknown = stack
        .json(
            "POST",
            "/v1/orders",
            &[("Idempotency-Key", "bad-2")],
            &order_body(stranger),
        )
        .await;
    assert_eq!(unknown.status, 409);
    let unknown = problem(&unknown);
    assert_eq!(unknown["code"], "FAILED_PRECONDITION");
    assert_eq!(unknown["reason"], "USER_NOT_FOUND");

    let listed = body(&stack.get(&format!("/v1/orders?userId={user_id}")).await);
    assert_eq!(listed["orders"], json!([]), "nothing was placed");

    let missing = stack.get(&format!("/v1/orders/{stranger}")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(problem(&missing)["reason"], "ORDER_NOT_FOUND");
    let cancel_missing = stack
        .send("POST", &format!("/v1/orders/{stranger}:cancel"), &[], b"")
        .await;
    assert_eq!(cancel_missing.status, 404);
    let no_user = stack.get("/v1/orders").await;
    assert_eq!(no_user.status, 400);
    assert_eq!(violated_fields(&problem(&no_user)), ["userId"]);
    // A POST to an order without the `:cancel` verb is a method the order does not have.
    let no_verb = stack
        .send("POST", &format!("/v1/orders/{stranger}"), &[], b"")
        .await;
    assert_eq!(no_verb.status, 405);
    assert_eq!(no_verb.header("allow"), Some("GET,HEAD"));
    assert_eq!(problem(&no_verb)["reason"], "NO_ROUTE");
    stack.stop().await;
}

#[tokio::test]
async fn a_key_is_one_order_one_request_and_sent_once() {
    let stack = Stack::start().await;
    let user = stack.user("Ada").await;
    let user_id = user["id"].as_str().expect("id");
    let placed = stack
        .json(
            "POST",
            "/v1/orders",
            &[("Idempotency-Key", "k-1")],
            &order_body(user_id),
        )
        .await;
    assert_eq!(placed.status, 201, "{}", placed.body);

    // The key again with a different order: 422, and no second order.
    let mut other = order_body(user_id);
    other["items"][0]["quantity"] = json!(7);
    let reused = stack
        .json("POST", "/v1/orders", &[("Idempotency-Key", "k-1")], &other)
        .await;
    assert_eq!(reused.status, 422, "{}", reused.body);
    assert_eq!(problem(&reused)["reason"], "IDEMPOTENCY_KEY_REUSED");

    // Two keys on one request: which one was meant is anyone's guess, so neither is used.
    let twice = stack
        .json(
            "POST",
            "/v1/orders",
            &[("Idempotency-Key", "k-2"), ("Idempotency-Key", "k-3")],
            &order_body(user_id),
        )
        .await;
    assert_eq!(twice.status, 400, "{}", twice.body);
    assert_eq!(violated_fields(&problem(&twice)), ["Idempotency-Key"]);

    let listed = body(&stack.get(&format!("/v1/orders?user_id={user_id}")).await);
    assert_eq!(listed["orders"].as_array().map(Vec::len), Some(1));
    stack.stop().await;
}

#[tokio::test]
async fn hostile_text_is_refused_and_opens_no_breaker() {
    let stack = Stack::start().await;
    let user = stack.user("Ada").await;
    let user_id = user["id"].as_str().expect("id");
    // Fifty orders whose SKU holds NUL: each a 400 naming the field, none an error of the service.
    for i in 0..50 {
        let mut hostile = order_body(user_id);
        hostile["items"][0]["sku"] = json!("A\u{0}");
        let refused = stack
            .json(
                "POST",
                "/v1/orders",
                &[("Idempotency-Key", &format!("nul-{i}"))],
                &hostile,
            )
            .await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert_eq!(violated_fields(&problem(&refused)), ["items[0].sku"]);
    }
    // Everyone else's orders still go through.
    let placed = stack
        .json(
            "POST",
            "/v1/orders",
            &[("Idempotency-Key", "good")],
            &order_body(user_id),
        )
        .await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    stack.stop().await;
}

/// The `order` events of a server-sent event stream: (id, order) in order.
fn order_events(stream: &str) -> Vec<(u64, serde_json::Value)> {
    stream
        .split("\n\n")
        .filter(|event| event.lines().any(|line| line == "event: order"))
        .map(|event| {
            let field = |name: &str| {
                event
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .unwrap_or_default()
                    .to_owned()
            };
            let id = field("id: ").parse().expect("a numeric event id");
            let order = serde_json::from_str(&field("data: ")).expect("an order as JSON");
            (id, order)
        })
        .collect()
}

#[tokio::test]
async fn an_order_is_followed_from_pending_to_confirmed_as_server_sent_events() {
    // Charges take a second, so the order is PENDING when the watch starts.
    let stack = Stack::start_with_options(orderly_testkit::Options {
        payments: orderly_testkit::stack::slow(std::time::Duration::from_secs(1), &["Charge"]),
        ..orderly_testkit::Options::default()
    })
    .await;
    let user = stack.user("Ada").await;
    let user_id = user["id"].as_str().expect("id").to_owned();
    let placing = {
        let (addr, body) = (stack.addr, order_body(&user_id));
        tokio::spawn(async move {
            orderly_kit::http::client::request_json(
                addr,
                "POST",
                "/v1/orders",
                &[("Idempotency-Key", "watched")],
                &body,
                orderly_testkit::rest::PATIENCE,
            )
            .await
        })
    };
    let until = tokio::time::Instant::now() + orderly_testkit::rest::PATIENCE;
    let id = loop {
        let listed = body(&stack.get(&format!("/v1/orders?user_id={user_id}")).await);
        if let Some(id) = listed["orders"][0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < until && !placing.is_finished(),
            "the order was never listed while it was being placed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };

    let watched = stack.get(&format!("/v1/orders/{id}:watch")).await;
    assert_eq!(watched.status, 200, "{}", watched.body);
    assert_eq!(watched.header("content-type"), Some("text/event-stream"));
    let events = order_events(&watched.body);
    let statuses: Vec<_> = events
        .iter()
        .map(|(_, order)| order["status"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("ORDER_STATUS_PENDING")
    );
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("ORDER_STATUS_CONFIRMED"),
        "the stream ends at the settled state: {statuses:?}"
    );
    assert!(
        events.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "event ids grow"
    );
    let placed = placing.await.expect("task").expect("answered");
    assert_eq!(placed.status, 201, "{}", placed.body);

    // Reconnecting with the last id seen sends nothing already seen.
    let (last_id, _) = events.last().expect("events");
    let again = stack
        .send(
            "GET",
            &format!("/v1/orders/{id}:watch"),
            &[("Last-Event-ID", &last_id.to_string())],
            b"",
        )
        .await;
    assert_eq!(again.status, 200);
    assert!(order_events(&again.body).is_empty(), "{}", again.body);

    // The document describes the route.
    let document = body(&stack.get("/openapi.json").await);
    let watch = &document["paths"]["/v1/orders/{id}:watch"]["get"];
    assert!(
        watch["responses"]["200"]["content"]["text/event-stream"].is_object(),
        "{watch}"
    );
    stack.stop().await;
}
