//! Memory under unfinished requests, measured on the process: thousands of connections that each
//! send a large header and never finish it are bounded for the process as a whole (each request's
//! head, and what all opening connections together hold), and the memory is given back once they
//! are gone.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::common::{Orderly, PATIENCE, up_args};

/// What the attack holds open at once.
const CONNECTIONS: usize = 2_500;
/// What each connection tries to send of an unfinished header: more than one head may hold (the
/// connection is answered 431 and closed), then just under it (only the process-wide budget
/// bounds what they hold together).
const HEADER_BYTES: [usize; 2] = [380 * 1024, 60 * 1024];
/// The container limit the deployment documents.
const CONTAINER_LIMIT: u64 = 256 << 20;

/// A `/proc/PID/status` figure, in bytes (`VmRSS`: now; `VmHWM`: the peak).
fn memory(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix(" kB")?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("no {field} in the process status"))
}

#[tokio::test]
async fn unfinished_headers_are_bounded_for_the_process_and_their_memory_given_back() {
    let _alone = crate::common::alone().await;
    orderly_kit::conn::raise_fd_limit().expect("open file limit");
    let data = tempfile::tempdir().expect("data dir");
    let args = up_args(data.path().to_str().expect("utf-8 path"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let up = Orderly::start_serving(&args, &crate::common::EVERYTHING_UP_SERVES).await;
    let gateway = up.addrs["gateway"];
    let pid = up.child.id().expect("pid");
    // A few ordinary requests first, so the baseline includes what serving costs.
    for _ in 0..20 {
        let response =
            orderly_kit::http::client::request(gateway, "GET", "/v1/products", &[], b"", PATIENCE)
                .await
                .expect("the gateway answers");
        assert_eq!(response.status, 200);
    }
    let before = memory(pid, "VmRSS");

    for header_bytes in HEADER_BYTES {
        let mut header = b"GET /v1/products HTTP/1.1\r\nHost: orderly\r\nX-Padding: ".to_vec();
        header.resize(header.len() + header_bytes, b'a');
        let header = std::sync::Arc::new(header);
        let (release, held) = tokio::sync::watch::channel(false);
        let (sent, mut all_sent) = tokio::sync::mpsc::channel::<()>(CONNECTIONS);
        let mut attackers = tokio::task::JoinSet::new();
        for _ in 0..CONNECTIONS {
            let (header, mut held, sent) = (header.clone(), held.clone(), sent.clone());
            attackers.spawn(async move {
                if let Ok(mut stream) = TcpStream::connect(gateway).await {
                    // The server refuses and closes long before the end of a 380 KB head: the
                    // write's error is expected.
                    let _ = tokio::time::timeout(PATIENCE, stream.write_all(&header)).await;
                    let _ = sent.send(()).await;
                    let _ = held.wait_for(|released| *released).await;
                } else {
                    let _ = sent.send(()).await;
                }
            });
        }
        // Every connection has sent what it would, and those the server kept are still open.
        for _ in 0..CONNECTIONS {
            tokio::time::timeout(PATIENCE, all_sent.recv())
                .await
                .expect("every attacker sends within the patience")
                .expect("the attackers are alive");
        }
        // A new client is still served.
        let response =
            orderly_kit::http::client::request(gateway, "GET", "/v1/products", &[], b"", PATIENCE)
                .await
                .expect("the gateway answers during the attack");
        assert_eq!(response.status, 200);
        let _ = release.send(true);
        while attackers.join_next().await.is_some() {}
    }
    let peak = memory(pid, "VmHWM");

    // Given back: within twice the baseline, in at most 30 s.
    let closed = Instant::now();
    let mut after = memory(pid, "VmRSS");
    while after > 2 * before && closed.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = memory(pid, "VmRSS");
    }
    eprintln!(
        "RSS before {} MiB, peak {} MiB, after {} MiB ({:?} after closing)",
        before >> 20,
        peak >> 20,
        after >> 20,
        closed.elapsed()
    );
    assert!(peak < CONTAINER_LIMIT, "peak RSS {} MiB", peak >> 20);
    // What they held together is bounded by the budget of opening connections (with room for
    // the allocator's rounding), not by how many there were: unbounded, 2,500 heads of 60 KB
    // would be 150 MB.
    let budget = orderly_kit::conn::opening::BUDGET_BYTES as u64;
    assert!(
        peak < before + 3 * budget,
        "RSS grew from {} MiB to {} MiB",
        before >> 20,
        peak >> 20
    );
    assert!(
        after <= 2 * before,
        "RSS {} MiB 30 s after the attack, {} MiB before",
        after >> 20,
        before >> 20
    );
}
