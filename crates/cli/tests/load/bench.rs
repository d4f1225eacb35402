//! `orderly bench` against real servers: the open loop keeps its schedule and measures from it (so
//! a stalled server shows its stall), errors are counted by code, `--assert` decides the exit
//! status, and create-order's count of successes is what the store holds.

use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::common::shop::Shop;
use crate::common::{Orderly, PATIENCE, serve_args, start};

/// Runs `orderly bench ARGS --output json` to its end; returns its exit status and summary.
async fn bench(args: &[&str]) -> (ExitStatus, Value) {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_orderly"))
        .arg("bench")
        .args(args)
        .args(["--output", "json"])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PATIENCE, run)
        .await
        .expect("bench ends in time")
        .expect("bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
        panic!(
            "JSON summary ({error}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status, summary)
}

async fn users_service(dir: &tempfile::TempDir, extra: &[&str]) -> Orderly {
    let db = format!("sqlite://{}", dir.path().join("users.db").display());
    start(
        &serve_args("users", "127.0.0.1:0", &db, extra),
        "UserService",
    )
    .await
}

fn ms(summary: &Value, quantile: &str) -> f64 {
    summary["latency"][format!("{quantile}_ms")]
        .as_f64()
        .expect("latency")
}

#[tokio::test]
async fn the_open_loop_keeps_its_rate_and_measures_injected_latency() {
    let _alone = crate::common::alone().await;
    let dir = tempfile::tempdir().expect("dir");
    let users = users_service(&dir, &["--latency", "50ms"]).await;
    let url = format!("http://{}", users.addr);
    let (status, summary) = bench(&[
        "get-user",
        "--users-url",
        &url,
        "--users",
        "2",
        "--rate",
        "200",
        "--duration",
        "3s",
        "--warmup",
        "0s",
    ])
    .await;
    assert!(status.success(), "{summary}");
    let rate = summary["rate"].as_f64().expect("rate");
    assert!(
        (190.0..=210.0).contains(&rate),
        "achieved {rate}/s: {summary}"
    );
    assert_eq!(summary["errors"], 0, "{summary}");
    // Every call succeeded; those of the window's last 50 ms end after it and are not goodput.
    let goodput = summary["goodput"].as_f64().expect("goodput");
    assert!(
        (180.0..=rate + 1.0).contains(&goodput),
        "goodput {goodput}/s: {summary}"
    );
    let p50 = ms(&summary, "p50");
    assert!((50.0..=60.0).contains(&p50), "p50 {p50} ms: {summary}");
}

/// Runs `args` while the users service is paused for one second, a second into the run.
async fn through_a_stall(users: &Orderly, args: &[&str]) -> Value {
    let url = format!("http://{}", users.addr);
    let mut all = vec!["get-user", "--users-url", &url, "--users", "2"];
    all.extend_from_slice(args);
    let stall = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        users.signal(Signal::SIGSTOP);
        tokio::time::sleep(Duration::from_secs(1)).await;
        users.signal(Signal::SIGCONT);
    };
    let ((status, summary), ()) = tokio::join!(bench(&all), stall);
    assert!(status.success(), "{summary}");
    summary
}

#[tokio::test]
async fn the_open_loop_shows_a_stall_that_the_closed_loop_hides() {
    let _alone = crate::common::alone().await;
    let dir = tempfile::tempdir().expect("dir");
    let users = users_service(&dir, &[]).await;
    let timing = ["--duration", "3s", "--warmup", "0s"];
    let open = through_a_stall(&users, &[&["--rate", "100"][..], &timing].concat()).await;
    let closed = through_a_stall(&users, &[&["--concurrency", "1"][..], &timing].concat()).await;
    let (open_p99, closed_p99) = (ms(&open, "p99"), ms(&closed, "p99"));
    // A third of the open loop's calls were due during the stall and waited for its end.
    assert!(open_p99 >= 500.0, "open loop p99 {open_p99} ms: {open}");
    // The closed loop had one call in flight: one slow call among many fast ones.
    assert!(
        closed_p99 < open_p99 / 4.0,
        "closed loop p99 {closed_p99} ms vs open {open_p99} ms: {closed}"
    );
    assert!(
        ms(&closed, "max") >= 500.0,
        "the one stalled call: {closed}"
    );
}

#[tokio::test]
async fn errors_are_counted_by_code_and_assertions_set_the_exit_status() {
    let _alone = crate::common::alone().await;
    let shop = Shop::start(&["--fail-rate", "1", "--fault-methods", "Charge"], &[]).await;
    let users = format!("http://{}", shop.users.addr);
    let orders = format!("http://{}", shop.orders.addr);
    let common = [
        "create-order",
        "--users-url",
        &users,
        "--orders-url",
        &orders,
        "--users",
        "2",
        "--concurrency",
        "8",
        "--duration",
        "3s",
        "--warmup",
        "0s",
    ];
    let (status, summary) = bench(&[&common[..], &["--assert", "errors<0.1%"]].concat()).await;
    assert!(
        !status.success(),
        "a breached assertion fails the run: {summary}"
    );
    let unavailable = summary["outcomes"]["UNAVAILABLE"].as_u64().unwrap_or(0);
    assert!(
        unavailable > 0,
        "refusals counted as UNAVAILABLE: {summary}"
    );
    assert_eq!(summary["assertions"][0]["holds"], false, "{summary}");

    let (status, summary) = bench(&[&common[..], &["--assert", "rate>=1"]].concat()).await;
    assert!(status.success(), "assertions that hold pass: {summary}");
    shop.stop().await;
}

#[tokio::test]
async fn create_order_counts_exactly_the_orders_it_made() {
    let _alone = crate::common::alone().await;
    let shop = Shop::start(&[], &[]).await;
    let users = format!("http://{}", shop.users.addr);
    let orders = format!("http://{}", shop.orders.addr);
    let (status, summary) = bench(&[
        "create-order",
        "--users-url",
        &users,
        "--orders-url",
        &orders,
        "--users",
        "2",
        "--concurrency",
        "4",
        "--duration",
        "2s",
        "--warmup",
        "0s",
    ])
    .await;
    assert!(status.success(), "{summary}");
    let ok = summary["outcomes"]["OK"].as_u64().expect("successes");
    assert!(ok > 0, "{summary}");
    assert_eq!(
        summary["calls"].as_u64(),
        Some(ok),
        "every call succeeded: {summary}"
    );
    assert_eq!(shop.orders_in_database().await, ok as i64, "{summary}");
    shop.stop().await;
}
