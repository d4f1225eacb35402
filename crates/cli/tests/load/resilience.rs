//! Resilience across processes: losing a replica under load, and a circuit breaker that opens on a
//! failing downstream, fails fast, bounds what the downstream sees, and recovers. Every figure is
//! read from the processes' own `/metrics`.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use orderly::orders::v1::OrderStatus;
use orderly::users::v1::{CreateUserRequest, GetUserRequest, UserServiceClient};
use orderly_kit::client::deadline::Deadline;
use orderly_kit::client::downstream::{Downstream, DownstreamConfig, Safety};
use tonic::Code;

use crate::common::shop::Shop;
use crate::common::{PATIENCE, metric, order_request, scrape, serve_args, start};

#[tokio::test]
async fn losing_a_replica_under_load_fails_no_call() {
    let _alone = crate::common::alone().await;
    let data = tempfile::tempdir().expect("data dir");
    let database = format!("sqlite://{}", data.path().join("users.db").display());
    // One after another: the first applies the migrations to the shared database.
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(
            start(
                &serve_args("users", "127.0.0.1:0", &database, &[]),
                "UserService",
            )
            .await,
        );
    }
    let urls: Vec<String> = replicas
        .iter()
        .map(|r| format!("http://{}", r.addr))
        .collect();
    let users = Downstream::new("users", &urls.join(","), &DownstreamConfig::default())
        .expect("downstream");

    let mut direct = UserServiceClient::new(replicas[0].channel().await);
    let mut ids = Vec::new();
    for i in 0..5 {
        let request = CreateUserRequest {
            name: format!("Replica {i}"),
            email: format!("replica{i}@example.com"),
        };
        ids.push(
            direct
                .create_user(request)
                .await
                .expect("create")
                .into_inner()
                .user
                .expect("user")
                .id,
        );
    }

    let get = move |id: String| {
        let users = users.clone();
        async move {
            users
                .unary(
                    Deadline::after(Duration::from_secs(2)),
                    Safety::Idempotent,
                    GetUserRequest { id },
                    |channel, request| async move {
                        UserServiceClient::new(channel)
                            .get_user(request)
                            .await
                            .map(drop)
                    },
                )
                .await
        }
    };
    // Load for five seconds from eight workers; bounded in time and count.
    let load_until = Instant::now() + Duration::from_secs(5);
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let ids = ids.clone();
        let get = get.clone();
        workers.spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            let mut n = worker;
            while Instant::now() < load_until && ok < 1_000_000 {
                match get(ids[n % ids.len()].clone()).await {
                    Ok(()) => ok += 1,
                    Err(status) => failed.push(status.to_string()),
                }
                n += 1;
            }
            (ok, failed)
        });
    }
    // Kill a replica once every replica has served calls (read from their own metrics).
    for replica in &replicas {
        let served = async {
            loop {
                let served = metric(
                    &scrape(replica.admin).await,
                    "rpc_server_duration_seconds",
                    &[("rpc_method", "GetUser")],
                );
                if served > 0.0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(PATIENCE, served)
            .await
            .expect("every replica takes traffic");
    }
    replicas[1].signal(Signal::SIGKILL);

    let (mut ok, mut failed) = (0, Vec::new());
    while let Some(result) = workers.join_next().await {
        let (worker_ok, worker_failed) = result.expect("worker");
        ok += worker_ok;
        failed.extend(worker_failed);
    }
    eprintln!(
        "replica loss: {ok} calls succeeded, {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "failed calls: {failed:?}");
    assert!(ok > 100, "the load ran: {ok} calls");
    assert!(!replicas[1].exit().await.success());
    for index in [0, 2] {
        replicas[index].signal(Signal::SIGTERM);
        assert!(replicas[index].exit().await.success());
    }
}

#[tokio::test]
async fn a_breaker_opens_on_a_failing_downstream_fails_fast_and_recovers() {
    let _alone = crate::common::alone().await;
    let mut shop = Shop::start(
        &[
            "--fail-rate",
            "1",
            "--fault-methods",
            "Charge",
            "--latency",
            "100ms",
        ],
        &[
            "--breaker-cool-down",
            "1500ms",
            "--breaker-minimum-calls",
            "5",
        ],
    )
    .await;
    let user = shop.user_id.clone();
    let mut client = shop.client().await;

    // Until the breaker opens, each order waits for failing charges (100 ms each, retried).
    let mut slow_failures = Vec::new();
    let mut fast_failures = Vec::new();
    for i in 0..25 {
        let started = Instant::now();
        let outcome = client
            .create_order(order_request(&user, &format!("breaker-{i}")))
            .await;
        let took = started.elapsed();
        match outcome {
            Ok(response) => {
                let order = response.into_inner().order.expect("order");
                assert_ne!(
                    order.status(),
                    OrderStatus::Confirmed,
                    "payments fails every charge"
                );
                slow_failures.push(took);
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                fast_failures.push(took);
            }
        }
    }
    eprintln!(
        "breaker: {} orders failed after charging, {} refused fast",
        slow_failures.len(),
        fast_failures.len()
    );
    assert!(
        !slow_failures.is_empty() && slow_failures.len() <= 6,
        "opens after a bounded number: {slow_failures:?}"
    );
    assert!(
        fast_failures.len() >= 19,
        "then every order is refused: {fast_failures:?}"
    );
    // The median, not the slowest: on two shared cores one refusal in twenty can wait ~100 ms for
    // a core (seen once in a full run: 118 ms against 334 ms), which says nothing of the breaker.
    fast_failures.sort();
    let typical_fast = fast_failures[fast_failures.len() / 2];
    let quickest_slow = slow_failures.iter().min().copied().unwrap_or_default();
    eprintln!(
        "fast failures took {typical_fast:?} at the median; failures that reached payments at least {quickest_slow:?}"
    );
    assert!(
        typical_fast * 4 < quickest_slow,
        "fail fast: {typical_fast:?} vs {quickest_slow:?}"
    );

    // Payments saw the calls that opened the breaker and whatever retries the budget allowed; none
    // of the refused orders reached it.
    let charges = metric(
        &scrape(shop.payments.admin).await,
        "rpc_server_duration_seconds",
        &[("rpc_method", "Charge")],
    );
    let attempts_per_order = 3.0;
    eprintln!("payments received {charges} charges");
    assert!(
        charges <= slow_failures.len() as f64 * attempts_per_order,
        "{charges} charges"
    );
    let seen = scrape(shop.orders.admin).await;
    assert!(
        metric(
            &seen,
            "orderly_circuit_breaker_transitions_total",
            &[
                ("downstream", "payments"),
                ("rpc_method", "Charge"),
                ("to", "open")
            ]
        ) >= 1.0
    );
    assert_eq!(
        metric(
            &seen,
            "orderly_circuit_breaker_state",
            &[("downstream", "payments"), ("rpc_method", "Charge")]
        ),
        1.0,
        "open"
    );
    assert!(
        metric(
            &seen,
            "orderly_client_retries_total",
            &[("rpc_service", "orderly.payments.v1.PaymentService")]
        ) >= 1.0
    );
    assert!(
        metric(
            &seen,
            "rpc_client_duration_seconds",
            &[
                ("rpc_service", "orderly.payments.v1.PaymentService"),
                ("rpc_grpc_status_code", "14")
            ]
        ) >= 1.0
    );

    // Heal payments; after the cool-down, orders go through again.
    shop.heal_payments().await;
    let healed = async {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Ok(response) = client
                .create_order(order_request(&user, &format!("healed-{attempt}")))
                .await
            {
                let order = response.into_inner().order.expect("order");
                if order.status() == OrderStatus::Confirmed {
                    return attempt;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let attempts = tokio::time::timeout(PATIENCE, healed)
        .await
        .expect("orders succeed again after the cool-down");
    eprintln!("orders succeeded again after {attempts} attempts");
    // The breaker closes once its half-open probes succeed.
    for i in 0..3 {
        let response = client
            .create_order(order_request(&user, &format!("after-{i}")))
            .await
            .expect("order");
        assert_eq!(
            response.into_inner().order.expect("order").status(),
            OrderStatus::Confirmed
        );
    }
    let seen = scrape(shop.orders.admin).await;
    let charge_breaker = [("downstream", "payments"), ("rpc_method", "Charge")];
    assert_eq!(
        metric(&seen, "orderly_circuit_breaker_state", &charge_breaker),
        0.0,
        "closed again"
    );

    shop.stop().await;
}
