//! Connection hygiene at the REST port: thousands of connections that never finish their request
//! neither starve a normal client nor stay open past the header timeout.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use orderly_testkit::rest::{Stack, order_body};

#[tokio::test]
async fn five_thousand_half_open_connections_starve_nobody_and_are_closed_at_the_header_timeout() {
    // Both ends of every connection live in this process.
    orderly_kit::conn::raise_fd_limit().expect("open file limit");
    let header_timeout = Duration::from_secs(2);
    let stack =
        Stack::start_with(move |config| config.connections.header_timeout = header_timeout).await;
    let user = stack.user("Ada").await;
    let path = format!("/v1/users/{}", user["id"].as_str().expect("id"));

    let opened = Instant::now();
    let half_open = half_open(&stack, 5000).await;
    eprintln!("5000 half-open connections in {:?}", opened.elapsed());

    // A normal client is answered promptly, again and again.
    answered_promptly(&stack, &path, 5).await;

    // Every half-open connection is closed by the server once its headers are overdue.
    let deadline = opened + header_timeout + Duration::from_secs(10);
    let mut closed = 0;
    for mut stream in half_open {
        let mut buf = [0u8; 256];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => {
                    closed += 1;
                    break;
                }
                // hyper may answer 408 before it closes.
                Ok(Ok(_)) => continue,
                Err(_) => {
                    panic!("a half-open connection outlived its header timeout; {closed} closed")
                }
            }
        }
    }
    assert_eq!(closed, 5000);
    stack.stop().await;
}

/// `count` connections to the gateway, each having sent half a request.
async fn half_open(stack: &Stack, count: usize) -> Vec<TcpStream> {
    let mut half_open = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(stack.addr).await.expect("connect");
        stream
            .write_all(b"GET /v1/users HTTP/1.1\r\nHost: orderly\r\n")
            .await
            .expect("half a request");
        half_open.push(stream);
    }
    half_open
}

/// `GET path` answered 200 within a second, `times` times in a row.
async fn answered_promptly(stack: &Stack, path: &str, times: usize) {
    for _ in 0..times {
        let started = Instant::now();
        let response = stack.get(path).await;
        assert_eq!(response.status, 200, "{}", response.body);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "answered in {:?}",
            started.elapsed()
        );
    }
}

/// A thousand requests whose bodies never finish hold connections, not the gateway's request
/// permits: with far fewer permits than slow bodies, another user's order and a sign-up are
/// answered within a second; each slow request is answered 408 at the body timeout and its
/// connection closed.
#[tokio::test]
async fn a_thousand_slow_bodies_block_no_one_and_are_answered_408_at_the_body_timeout() {
    orderly_kit::conn::raise_fd_limit().expect("open file limit");
    let body_timeout = Duration::from_secs(3);
    let stack = Stack::start_with(move |config| {
        config.connections.body_timeout = body_timeout;
        config.max_concurrent_requests = 64;
    })
    .await;
    let user = stack.user("Ada").await;
    let user_id = user["id"].as_str().expect("id").to_owned();

    let opened = Instant::now();
    let mut slow = Vec::with_capacity(1000);
    for n in 0..1000 {
        let mut stream = TcpStream::connect(stack.addr).await.expect("connect");
        let path = if n % 2 == 0 {
            "/v1/orders"
        } else {
            "/v1/users"
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: orderly\r\nContent-Type: application/json\r\n\
             Content-Length: 400\r\n\r\n{{\"userId\""
        );
        stream.write_all(head.as_bytes()).await.expect("headers");
        slow.push(stream);
    }
    eprintln!("1000 slow bodies started in {:?}", opened.elapsed());

    for n in 0..3 {
        let started = Instant::now();
        let key = format!("beside-the-slow-{n}");
        let order = stack
            .json(
                "POST",
                "/v1/orders",
                &[("Idempotency-Key", key.as_str())],
                &order_body(&user_id),
            )
            .await;
        assert_eq!(order.status, 201, "{}", order.body);
        let signed_up = stack.user("Grace").await;
        assert!(signed_up["id"].is_string());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "an order and a sign-up took {:?}",
            started.elapsed()
        );
    }

    // Every slow request is answered 408, and its connection closed.
    let deadline = opened + body_timeout + Duration::from_secs(15);
    for mut stream in slow {
        let mut answer = Vec::new();
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read_to_end(&mut answer)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => panic!("the connection failed instead of answering: {error}"),
            Err(_) => panic!("a slow body outlived its timeout"),
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    stack.stop().await;
}

/// Twice as many half-open connections as the gateway's cap: each new well-behaved client still
/// gets in (the oldest half-open connection makes room) and is answered within a second.
#[tokio::test]
async fn beyond_the_cap_half_open_connections_make_room_for_a_new_client() {
    orderly_kit::conn::raise_fd_limit().expect("open file limit");
    let stack = Stack::start_with(|config| config.connections.max_connections = 500).await;
    let user = stack.user("Ada").await;
    let path = format!("/v1/users/{}", user["id"].as_str().expect("id"));
    let _half_open = half_open(&stack, 1000).await;
    answered_promptly(&stack, &path, 5).await;
    stack.stop().await;
}
