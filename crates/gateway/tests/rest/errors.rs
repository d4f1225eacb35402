//! Every gRPC code the services can answer becomes its HTTP status and a problem+json; malformed,
//! mistyped, oversized and non-JSON bodies are 4xx problems, never a 500.

use serde_json::json;

use orderly_testkit::rest::{Stack, problem, violated_fields};

/// Every non-OK gRPC code, its name and the HTTP status it maps to.
const CODES: [(u8, &str, u16); 16] = [
    (1, "CANCELLED", 499),
    (2, "UNKNOWN", 500),
    (3, "INVALID_ARGUMENT", 400),
    (4, "DEADLINE_EXCEEDED", 504),
    (5, "NOT_FOUND", 404),
    (6, "ALREADY_EXISTS", 409),
    (7, "PERMISSION_DENIED", 403),
    (8, "RESOURCE_EXHAUSTED", 429),
    (9, "FAILED_PRECONDITION", 409),
    (10, "ABORTED", 409),
    (11, "OUT_OF_RANGE", 400),
    (12, "UNIMPLEMENTED", 501),
    (13, "INTERNAL", 500),
    (14, "UNAVAILABLE", 503),
    (15, "DATA_LOSS", 500),
    (16, "UNAUTHENTICATED", 401),
];

#[tokio::test]
async fn every_grpc_code_maps_to_its_http_status() {
    let stack = Stack::start().await;
    let user = stack.user("Ada").await;
    let path = format!("/v1/users/{}", user["id"].as_str().expect("id"));
    for (code, name, http) in CODES {
        // The users server fails this one call with `code` (it honours the fault headers).
        let code = code.to_string();
        let response = stack
            .send("GET", &path, &[("x-orderly-fault-code", &code)], b"")
            .await;
        assert_eq!(response.status, http, "{name}: {}", response.body);
        assert_eq!(problem(&response)["code"], name);
        let retry_after = response.header("retry-after");
        if name == "UNAVAILABLE" || name == "RESOURCE_EXHAUSTED" {
            assert_eq!(retry_after, Some("1"), "{name} says when to retry");
        } else {
            assert_eq!(retry_after, None, "{name}");
        }
    }
    stack.stop().await;
}

#[tokio::test]
async fn a_slow_service_is_cut_at_the_request_timeout() {
    let stack = Stack::start_with(|config| {
        config.request_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let user = stack.user("Ada").await;
    let path = format!("/v1/users/{}", user["id"].as_str().expect("id"));
    let started = std::time::Instant::now();
    let response = stack
        .send("GET", &path, &[("x-orderly-fault-delay", "5s")], b"")
        .await;
    assert_eq!(response.status, 504, "{}", response.body);
    assert_eq!(problem(&response)["code"], "DEADLINE_EXCEEDED");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    stack.stop().await;
}

#[tokio::test]
async fn bad_bodies_are_problems_not_server_errors() {
    let stack = Stack::start_with(|config| config.max_body_bytes = 1024).await;
    let json = [("Content-Type", "application/json")];

    let malformed = stack
        .send("POST", "/v1/users", &json, br#"{"name": "Ada", "#)
        .await;
    assert_eq!(malformed.status, 400);
    let malformed = problem(&malformed);
    assert!(
        malformed["detail"]
            .as_str()
            .expect("detail")
            .starts_with("malformed JSON"),
        "{malformed}"
    );

    let mistyped = stack
        .send(
            "POST",
            "/v1/users",
            &json,
            br#"{"name": 42, "email": "a@example.com"}"#,
        )
        .await;
    assert_eq!(mistyped.status, 400);
    assert_eq!(violated_fields(&problem(&mistyped)), ["name"]);

    let unknown = stack
        .send(
            "POST",
            "/v1/users",
            &json,
            br#"{"name": "Ada", "nickname": "A"}"#,
        )
        .await;
    assert_eq!(unknown.status, 400);
    let unknown = problem(&unknown);
    assert!(
        unknown["detail"]
            .as_str()
            .expect("detail")
            .contains("nickname"),
        "{unknown}"
    );

    let not_an_object = stack.send("POST", "/v1/users", &json, b"[1, 2]").await;
    assert_eq!(not_an_object.status, 400);
    assert_eq!(violated_fields(&problem(&not_an_object)), ["body"]);

    let oversized = format!(
        r#"{{"name": "{}", "email": "a@example.com"}}"#,
        "x".repeat(4096)
    );
    let oversized = stack
        .send("POST", "/v1/users", &json, oversized.as_bytes())
        .await;
    assert_eq!(oversized.status, 413);
    assert_eq!(problem(&oversized)["code"], "RESOURCE_EXHAUSTED");

    let text = stack
        .send(
            "POST",
            "/v1/users",
            &[("Content-Type", "text/plain")],
            b"name=Ada",
        )
        .await;
    assert_eq!(text.status, 415);
    problem(&text);

    let bad_query = stack.get("/v1/users?page_size=many").await;
    assert_eq!(bad_query.status, 400);
    assert_eq!(violated_fields(&problem(&bad_query)), ["query"]);

    let no_route = stack.get("/v2/things").await;
    assert_eq!(no_route.status, 404);
    assert_eq!(problem(&no_route)["reason"], "NO_ROUTE");
    let wrong_method = stack.json("PUT", "/v1/users", &[], &json!({})).await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(problem(&wrong_method)["reason"], "NO_ROUTE");
    assert_eq!(wrong_method.header("allow"), Some("GET,HEAD,POST"));
    // The Allow of a 405 names the methods the document gives that path, not the route's: a
    // custom method (`:cancel`) shares the route of `GET /v1/orders/{id}` in axum.
    let order = "/v1/orders/0193a5b2-7c1e-7d30-9f41-2b8c6d0e4a17";
    let delete_order = stack.send("DELETE", order, &[], b"").await;
    assert_eq!(delete_order.status, 405);
    assert_eq!(delete_order.header("allow"), Some("GET,HEAD"));
    // A method the document does not give a custom method's path is 405 too, although axum routes
    // it to the handler of the base path (`GET /v1/orders/{id}`).
    let get_cancel = stack.get(&format!("{order}:cancel")).await;
    assert_eq!(get_cancel.status, 405, "{}", get_cancel.body);
    assert_eq!(get_cancel.header("allow"), Some("POST"));
    let post_watch = stack
        .send("POST", &format!("{order}:watch"), &[], b"")
        .await;
    assert_eq!(post_watch.status, 405, "{}", post_watch.body);
    assert_eq!(post_watch.header("allow"), Some("GET,HEAD"));

    // Nothing of the refused requests was written.
    let listed = stack.get("/v1/users").await;
    assert_eq!(orderly_testkit::rest::body(&listed)["users"], json!([]));
    stack.stop().await;
}

#[tokio::test]
async fn requests_beyond_the_limit_are_refused_at_once() {
    let stack = Stack::start_with(|config| config.max_concurrent_requests = 1).await;
    let user = stack.user("Ada").await;
    let path = format!("/v1/users/{}", user["id"].as_str().expect("id"));

    // One slow request holds the only slot (sent again if it was itself refused).
    let addr = stack.addr;
    let slow_path = path.clone();
    let slow = tokio::spawn(async move {
        loop {
            let headers = [("x-orderly-fault-delay", "2s")];
            let response = orderly_kit::http::client::request(
                addr,
                "GET",
                &slow_path,
                &headers,
                b"",
                orderly_testkit::rest::PATIENCE,
            )
            .await
            .expect("the gateway answers");
            if response.status != 429 {
                return response;
            }
        }
    });
    let deadline = std::time::Instant::now() + orderly_testkit::rest::PATIENCE;
    let shed = loop {
        let started = std::time::Instant::now();
        let response = stack.get(&path).await;
        if response.status == 429 {
            break (response, started.elapsed());
        }
        assert_eq!(response.status, 200, "{}", response.body);
        assert!(
            std::time::Instant::now() < deadline,
            "a request is refused in time"
        );
        // Paced, not back to back: a GetUser answers in well under a millisecond, and a loop that
        // always held the slot would refuse the slow request's every try instead.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let (refused, took) = shed;
    let problem = problem(&refused);
    assert_eq!(problem["code"], "RESOURCE_EXHAUSTED");
    assert_eq!(problem["reason"], "OVERLOADED");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(
        took < std::time::Duration::from_secs(1),
        "refused at once, not queued behind the 2 s request: {took:?}"
    );
    let slow = slow.await.expect("slow request");
    assert_eq!(
        slow.status, 200,
        "the admitted request completes: {}",
        slow.body
    );
    stack.stop().await;
}

#[tokio::test]
async fn an_unreachable_service_is_a_503_that_does_not_describe_the_gateways_insides() {
    // Nothing listens on a port that was free a moment ago.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let url = format!("http://{closed}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = orderly_kit::shutdown::Shutdown::new();
    let mut config = orderly_gateway::GatewayConfig::new(url.clone(), url);
    config.request_timeout = std::time::Duration::from_secs(2);
    let gateway = tokio::spawn(orderly_gateway::serve(config, listener, stop.wait()));
    let response = orderly_kit::http::client::request(
        addr,
        "GET",
        "/v1/users/0190f9a6-8d6a-7c3e-9b1a-2f4d5e6a7b8c",
        &[],
        b"",
        std::time::Duration::from_secs(10),
    )
    .await
    .expect("the gateway answers");
    assert_eq!(response.status, 503, "{}", response.body);
    let problem = problem(&response);
    let detail = problem["detail"].as_str().expect("detail");
    assert!(
        !detail.contains("tcp") && !detail.contains("connect") && !detail.contains("127.0.0.1"),
        "{detail}"
    );
    assert_eq!(response.header("retry-after"), Some("1"));
    stop.trigger();
    gateway.await.expect("task").expect("stopped");
}

/// Requests that two readers could take two ways are refused, and change nothing: a body framed
/// by both `Content-Length` and `Transfer-Encoding` (request smuggling's shape: 400, and the
/// connection closed), two different `Content-Type`s (400), two `Authorization` headers (401).
#[tokio::test]
async fn ambiguous_framing_and_repeated_headers_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let stack = Stack::start().await;
    let body = br#"{"name": "Smuggler", "email": "smuggler@example.com"}"#;
    let mut stream = tokio::net::TcpStream::connect(stack.addr)
        .await
        .expect("connect");
    let request = format!(
        "POST /v1/users HTTP/1.1\r\nHost: orderly\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        body.len() + 7,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("head");
    stream.write_all(body).await.expect("body");
    stream.write_all(b"\r\n0\r\n\r\n").await.expect("end");
    let mut answer = Vec::new();
    tokio::time::timeout(
        orderly_testkit::rest::PATIENCE,
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("answered and closed")
    .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");

    let two_types = stack
        .send(
            "POST",
            "/v1/users",
            &[
                ("Content-Type", "application/json"),
                ("Content-Type", "text/plain"),
            ],
            body,
        )
        .await;
    assert_eq!(two_types.status, 400, "{}", two_types.body);
    assert_eq!(violated_fields(&problem(&two_types)), ["Content-Type"]);

    let two_tokens = stack
        .send(
            "GET",
            "/v1/users?page_size=1",
            &[
                ("Authorization", "Bearer first"),
                ("Authorization", "Bearer second"),
            ],
            b"",
        )
        .await;
    assert_eq!(two_tokens.status, 401, "{}", two_tokens.body);
    assert_eq!(problem(&two_tokens)["reason"], "TOKEN_INVALID");

    // None of them created the user.
    let listed = stack.get("/v1/users?page_size=100").await;
    assert!(
        !listed.body.contains("smuggler@example.com"),
        "{}",
        listed.body
    );
    stack.stop().await;
}
