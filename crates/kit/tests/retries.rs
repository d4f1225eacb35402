//! The kit's Downstream against a real flaky gRPC server on loopback: which failures are retried,
//! how retries are spaced, and what stops them (deadline, budget).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orderly::users::v1::{
    BatchGetUsersRequest, BatchGetUsersResponse, CreateUserRequest, CreateUserResponse,
    DeleteUserRequest, DeleteUserResponse, GetUserRequest, GetUserResponse, ListUsersRequest,
    ListUsersResponse, UpdateUserRequest, UpdateUserResponse, UserService, UserServiceClient,
    UserServiceServer,
};
use orderly_kit::client::backoff::Backoff;
use orderly_kit::client::breaker::BreakerConfig;
use orderly_kit::client::deadline::Deadline;
use orderly_kit::client::downstream::{Downstream, DownstreamConfig, Safety};
use tonic::{Code, Request, Response, Status};

/// Fails the first `failures` calls for each id with `code`, and records when each call came.
#[derive(Clone)]
struct Flaky {
    failures: usize,
    code: Code,
    calls: Arc<Mutex<HashMap<String, Vec<Instant>>>>,
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl UserService for Flaky {
    async fn get_user(&self, request: Request<GetUserRequest>) -> Reply<GetUserResponse> {
        let id = request.into_inner().id;
        let count = {
            let mut calls = self.calls.lock().expect("lock");
            let times = calls.entry(id).or_default();
            times.push(Instant::now());
            times.len()
        };
        if count <= self.failures {
            return Err(Status::new(self.code, "flaky"));
        }
        Ok(Response::new(GetUserResponse::default()))
    }
    async fn create_user(&self, _: Request<CreateUserRequest>) -> Reply<CreateUserResponse> {
        Err(Status::unimplemented("test"))
    }
    async fn update_user(&self, _: Request<UpdateUserRequest>) -> Reply<UpdateUserResponse> {
        Err(Status::unimplemented("test"))
    }
    async fn delete_user(&self, _: Request<DeleteUserRequest>) -> Reply<DeleteUserResponse> {
        Err(Status::unimplemented("test"))
    }
    async fn list_users(&self, _: Request<ListUsersRequest>) -> Reply<ListUsersResponse> {
        Err(Status::unimplemented("test"))
    }
    async fn batch_get_users(
        &self,
        _: Request<BatchGetUsersRequest>,
    ) -> Reply<BatchGetUsersResponse> {
        Err(Status::unimplemented("test"))
    }
}

async fn serve(flaky: Flaky) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    // Health, so that balanced channels (lists, DNS) put the server in rotation.
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .add_service(UserServiceServer::new(flaky))
            .serve_with_incoming(incoming),
    );
    addr
}

fn flaky(failures: usize, code: Code) -> Flaky {
    Flaky {
        failures,
        code,
        calls: Arc::default(),
    }
}

/// A breaker that never opens, so these tests see retries alone.
fn no_breaker() -> BreakerConfig {
    BreakerConfig {
        minimum_calls: usize::MAX,
        ..BreakerConfig::default()
    }
}

fn config(backoff: Backoff) -> DownstreamConfig {
    DownstreamConfig {
        backoff,
        retry_ratio: 1.0,
        min_retries_per_second: 1000,
        breaker: no_breaker(),
        ..DownstreamConfig::default()
    }
}

async fn get(
    downstream: &Downstream,
    id: &str,
    deadline: Duration,
    safety: Safety,
) -> Result<(), Status> {
    let id = id.to_owned();
    downstream
        .unary(
            Deadline::after(deadline),
            safety,
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

#[tokio::test]
async fn retries_are_spaced_by_growing_jittered_delays() {
    let server = flaky(2, Code::Unavailable);
    let calls = server.calls.clone();
    let addr = serve(server).await;
    let base = Duration::from_millis(40);
    let backoff = Backoff {
        initial_backoff: base,
        max_backoff: Duration::from_secs(1),
        max_attempts: 3,
    };
    let downstream =
        Downstream::new("flaky", &format!("http://{addr}"), &config(backoff)).expect("downstream");

    let runs = 20;
    for run in 0..runs {
        get(
            &downstream,
            &format!("user-{run}"),
            Duration::from_secs(5),
            Safety::Idempotent,
        )
        .await
        .expect("third attempt succeeds");
    }
    let calls = calls.lock().expect("lock");
    let slack = Duration::from_millis(15);
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for times in calls.values() {
        assert_eq!(times.len(), 3, "failed twice, then succeeded");
        let (gap1, gap2) = (times[1] - times[0], times[2] - times[1]);
        assert!(
            gap1 <= base + slack,
            "first retry within its ceiling: {gap1:?}"
        );
        assert!(
            gap2 <= base * 2 + slack,
            "second retry within its doubled ceiling: {gap2:?}"
        );
        first.push(gap1);
        second.push(gap2);
    }
    let mean = |gaps: &[Duration]| gaps.iter().sum::<Duration>() / gaps.len() as u32;
    let spread =
        |gaps: &[Duration]| *gaps.iter().max().expect("gaps") - *gaps.iter().min().expect("gaps");
    eprintln!(
        "mean first gap {:?}, mean second gap {:?}",
        mean(&first),
        mean(&second)
    );
    assert!(mean(&second) > mean(&first), "delays grow");
    assert!(
        spread(&first) > Duration::from_millis(5) && spread(&second) > Duration::from_millis(5),
        "delays are jittered"
    );
}

#[tokio::test]
async fn only_retryable_failures_of_safe_calls_are_retried() {
    let backoff = Backoff {
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_attempts: 4,
    };
    // A request error is the caller's: never retried.
    let server = flaky(10, Code::InvalidArgument);
    let calls = server.calls.clone();
    let downstream = Downstream::new(
        "bad",
        &format!("http://{}", serve(server).await),
        &config(backoff),
    )
    .expect("downstream");
    let status = get(&downstream, "a", Duration::from_secs(5), Safety::Idempotent)
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(calls.lock().expect("lock")["a"].len(), 1);

    // UNAVAILABLE is retried, but only for calls that are safe to repeat.
    let server = flaky(10, Code::Unavailable);
    let calls = server.calls.clone();
    let downstream = Downstream::new(
        "down",
        &format!("http://{}", serve(server).await),
        &config(backoff),
    )
    .expect("downstream");
    get(
        &downstream,
        "unsafe",
        Duration::from_secs(5),
        Safety::NotIdempotent,
    )
    .await
    .expect_err("down");
    get(
        &downstream,
        "safe",
        Duration::from_secs(5),
        Safety::Idempotent,
    )
    .await
    .expect_err("down");
    let calls = calls.lock().expect("lock");
    assert_eq!(calls["unsafe"].len(), 1, "not idempotent: one attempt");
    assert_eq!(calls["safe"].len(), 4, "idempotent: every attempt");
}

#[tokio::test]
async fn retries_stop_at_the_deadline() {
    let server = flaky(usize::MAX, Code::Unavailable);
    let addr = serve(server).await;
    let backoff = Backoff {
        initial_backoff: Duration::from_millis(80),
        max_backoff: Duration::from_secs(1),
        max_attempts: 10,
    };
    let downstream =
        Downstream::new("slow", &format!("http://{addr}"), &config(backoff)).expect("downstream");
    let started = Instant::now();
    get(
        &downstream,
        "x",
        Duration::from_millis(150),
        Safety::Idempotent,
    )
    .await
    .expect_err("always down");
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "no sleep past the deadline: {:?}",
        started.elapsed()
    );

    let spent = downstream
        .call(
            Deadline::after(Duration::ZERO),
            Safety::Idempotent,
            |_, _| async { Ok(()) },
        )
        .await
        .expect_err("spent budget");
    assert_eq!(
        spent.code(),
        Code::DeadlineExceeded,
        "a spent budget fails without a call"
    );
    // The status may travel on to outside callers: it names no downstream.
    assert_eq!(spent.message(), "deadline exceeded");
}

#[tokio::test]
async fn the_retry_budget_stops_a_retry_storm() {
    orderly_kit::observe::metrics::install();
    let server = flaky(usize::MAX, Code::Unavailable);
    let calls = server.calls.clone();
    let addr = serve(server).await;
    let backoff = Backoff {
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        max_attempts: 5,
    };
    // Retries may add 10% of calls, with a floor of one per second.
    let config = DownstreamConfig {
        backoff,
        retry_ratio: 0.1,
        min_retries_per_second: 1,
        breaker: no_breaker(),
        ..DownstreamConfig::default()
    };
    let downstream =
        Downstream::new("storm", &format!("http://{addr}"), &config).expect("downstream");
    for i in 0..50 {
        get(
            &downstream,
            &format!("call-{i}"),
            Duration::from_secs(5),
            Safety::Idempotent,
        )
        .await
        .expect_err("down");
    }
    let attempts: usize = calls.lock().expect("lock").values().map(Vec::len).sum();
    eprintln!("50 failing calls made {attempts} attempts");
    // Without a budget: 50 × 5 = 250 attempts.
    assert!(
        attempts <= 50 + 5 + 15,
        "retries stayed within the budget: {attempts}"
    );
    assert!(attempts > 50, "some retries were allowed");
    let rendered = orderly_kit::observe::metrics::install().render();
    assert!(
        rendered
            .lines()
            .any(|l| l.starts_with("orderly_client_retry_budget_exhausted_total{")),
        "budget exhaustion shows in /metrics"
    );
}

#[tokio::test]
async fn a_dns_name_is_resolved_to_replicas_in_rotation() {
    let server = flaky(0, Code::Unavailable);
    let calls = server.calls.clone();
    let addr = serve(server).await;
    // localhost may also resolve to ::1, where nothing listens: that address never joins rotation.
    let address = format!("dns://localhost:{}", addr.port());
    let backoff = Backoff {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_attempts: 3,
    };
    let downstream = Downstream::new("dns", &address, &config(backoff)).expect("downstream");
    for i in 0..5 {
        get(
            &downstream,
            &format!("dns-{i}"),
            Duration::from_secs(10),
            Safety::Idempotent,
        )
        .await
        .expect("served via DNS");
    }
    assert_eq!(calls.lock().expect("lock").len(), 5);
}

#[tokio::test]
async fn the_breaker_counts_calls_of_the_method_the_typed_client_called() {
    use orderly::users::v1::user_service_methods::GET_USER;
    let breaker = BreakerConfig {
        minimum_calls: 4,
        ..BreakerConfig::default()
    };
    let backoff = Backoff {
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_attempts: 3,
    };

    // Every call's first attempt fails and its retry succeeds: half the attempts fail, no call does.
    let downstream = Downstream::new(
        "half",
        &format!("http://{}", serve(flaky(1, Code::Unavailable)).await),
        &DownstreamConfig {
            breaker: breaker.clone(),
            ..config(backoff)
        },
    )
    .expect("downstream");
    for n in 0..10 {
        get(
            &downstream,
            &format!("u{n}"),
            Duration::from_secs(2),
            Safety::Idempotent,
        )
        .await
        .expect("retried to success");
    }
    assert!(
        downstream.admit(GET_USER).is_ok(),
        "absorbed failures leave the breaker closed"
    );

    // Every call fails: the breaker of GetUser, named by the generated client, opens, and the next
    // call is refused before it reaches the server.
    let server = flaky(usize::MAX, Code::Unavailable);
    let calls = server.calls.clone();
    let downstream = Downstream::new(
        "down",
        &format!("http://{}", serve(server).await),
        &DownstreamConfig {
            breaker,
            ..config(Backoff {
                max_attempts: 1,
                ..backoff
            })
        },
    )
    .expect("downstream");
    for n in 0..4 {
        let failed = get(
            &downstream,
            &format!("d{n}"),
            Duration::from_secs(2),
            Safety::Idempotent,
        )
        .await
        .expect_err("down");
        assert_eq!(failed.code(), Code::Unavailable);
    }
    assert!(downstream.admit(GET_USER).is_err(), "the breaker opened");
    let refused = get(
        &downstream,
        "late",
        Duration::from_secs(2),
        Safety::Idempotent,
    )
    .await
    .expect_err("refused");
    assert!(
        orderly_kit::client::breaker::is_open(&refused),
        "{refused:?}"
    );
    assert_eq!(
        calls.lock().expect("lock").len(),
        4,
        "the refused call never left"
    );
}
