//! Connection hygiene at the REST port: thousands of connections that never finish their request
//! neither starve a normal client nor stay open past the header timeout.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::rest::support::Stack;

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
    let mut half_open = Vec::with_capacity(5000);
    for _ in 0..5000 {
        let mut stream = TcpStream::connect(stack.addr).await.expect("connect");
        stream
            .write_all(b"GET /v1/users HTTP/1.1\r\nHost: orderly\r\n")
            .await
            .expect("half a request");
        half_open.push(stream);
    }
    eprintln!("5000 half-open connections in {:?}", opened.elapsed());

    // A normal client is answered promptly, again and again.
    for _ in 0..5 {
        let started = Instant::now();
        let response = stack.get(&path).await;
        assert_eq!(response.status, 200, "{}", response.body);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "answered in {:?}",
            started.elapsed()
        );
    }

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
