//! What the kit's server adds around UserService: health, reflection v1 and v1alpha, gzip, message
//! size limits, and health following the database.

use std::time::Duration;

use orderly::users::v1::{CreateUserRequest, GetUserRequest, ListUsersRequest, UserServiceClient};
use orderly_kit::server::config::ServerConfig;
use orderly_testkit::db::{TestBackend, TestDatabase};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{channel, create};

const SERVICE: &str = "orderly.users.v1.UserService";

#[tokio::test]
async fn health_is_serving_for_the_server_and_the_service() {
    let server = crate::support::start(TestBackend::Sqlite)
        .await
        .expect("sqlite");
    let mut health = HealthClient::new(channel(server.addr).await);
    for service in ["", SERVICE] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("check")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let status = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: SERVICE.into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.next().await.expect("first update").expect("status");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    drop(watch);
    server.stop().await;
}

#[tokio::test]
async fn reflection_lists_and_describes_services_in_v1_and_v1alpha() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient as V1;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest as V1Request;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse as V1Response;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as V1Alpha;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;

    let server = crate::support::start(TestBackend::Sqlite)
        .await
        .expect("sqlite");
    let channel = channel(server.addr).await;

    let requests = tokio_stream::iter([
        tonic_reflection::pb::v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(V1Request::ListServices(String::new())),
        },
        tonic_reflection::pb::v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(V1Request::FileContainingSymbol(SERVICE.into())),
        },
    ]);
    let mut responses = V1::new(channel.clone())
        .server_reflection_info(requests)
        .await
        .expect("v1")
        .into_inner();
    let Some(Ok(list)) = responses.next().await else {
        panic!("no list response")
    };
    let Some(V1Response::ListServicesResponse(list)) = list.message_response else {
        panic!("not a list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.contains("OrderService")),
        "only served services are listed: {names:?}"
    );
    let Some(Ok(file)) = responses.next().await else {
        panic!("no file response")
    };
    let Some(V1Response::FileDescriptorResponse(file)) = file.message_response else {
        panic!("not a file")
    };
    assert!(!file.file_descriptor_proto.is_empty());

    let requests = tokio_stream::iter([tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    }]);
    let mut responses = V1Alpha::new(channel)
        .server_reflection_info(requests)
        .await
        .expect("v1alpha")
        .into_inner();
    let Some(Ok(list)) = responses.next().await else {
        panic!("no v1alpha response")
    };
    let Some(AlphaResponse::ListServicesResponse(list)) = list.message_response else {
        panic!("not a list")
    };
    assert!(list.service.iter().any(|s| s.name == SERVICE));
    drop(responses);
    server.stop().await;
}

#[tokio::test]
async fn gzip_is_accepted_and_offered() {
    let server = crate::support::start(TestBackend::Sqlite)
        .await
        .expect("sqlite");
    let mut client = UserServiceClient::new(channel(server.addr).await)
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);
    let user = create(&mut client, "Zip", "zip@example.com").await;
    let response = client
        .get_user(GetUserRequest {
            id: user.id.clone(),
        })
        .await
        .expect("get");
    assert_eq!(
        response
            .metadata()
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    assert_eq!(response.into_inner().user, Some(user));
    server.stop().await;
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let db = TestDatabase::create(TestBackend::Sqlite)
        .await
        .expect("sqlite");
    let config = ServerConfig {
        max_message_bytes: 1024,
        ..ServerConfig::default()
    };
    let mut server = crate::support::start_with(db, config).await;
    let status = server
        .client
        .create_user(CreateUserRequest {
            name: "n".repeat(4096),
            email: "big@example.com".into(),
        })
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    create(&mut server.client, "Small", "small@example.com").await;
    server.stop().await;
}

#[tokio::test]
async fn health_follows_the_database() {
    let Some(db) = TestDatabase::create(TestBackend::Postgres).await else {
        return;
    };
    let config = ServerConfig {
        health_interval: std::time::Duration::from_millis(50),
        ..ServerConfig::default()
    };
    let mut server = crate::support::start_with(db, config).await;
    let mut health = HealthClient::new(channel(server.addr).await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: SERVICE.into(),
        })
        .await
        .expect("watch")
        .into_inner();
    assert_eq!(
        watch.next().await.expect("update").expect("status").status,
        ServingStatus::Serving as i32
    );

    // Take the database away under the running service.
    server.remove_database().await;
    let update = watch.next().await.expect("update").expect("status");
    assert_eq!(
        update.status,
        ServingStatus::NotServing as i32,
        "the database is gone"
    );
    server.stop().await;
}

/// Latencies of `calls` GetUser calls from each of `workers` concurrent workers: (accepted, shed).
async fn load(
    addr: std::net::SocketAddr,
    id: &str,
    workers: usize,
    calls: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let channel = channel(addr).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let mut client = UserServiceClient::new(channel.clone());
        let id = id.to_owned();
        tasks.spawn(async move {
            let (mut accepted, mut shed) = (Vec::new(), Vec::new());
            for _ in 0..calls {
                let started = std::time::Instant::now();
                match client.get_user(GetUserRequest { id: id.clone() }).await {
                    Ok(_) => accepted.push(started.elapsed()),
                    Err(status) if status.code() == Code::ResourceExhausted => {
                        shed.push(started.elapsed())
                    }
                    Err(status) => panic!("unexpected {status:?}"),
                }
            }
            (accepted, shed)
        });
    }
    let (mut accepted, mut shed) = (Vec::new(), Vec::new());
    while let Some(result) = tasks.join_next().await {
        let (a, s) = result.expect("worker");
        accepted.extend(a);
        shed.extend(s);
    }
    accepted.sort();
    shed.sort();
    (accepted, shed)
}

fn p99(sorted: &[Duration]) -> Duration {
    sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
}

/// How long an accepted call spends in the handler of the overload test.
const HANDLER: Duration = Duration::from_millis(200);

// Two worker threads, as a server has: on one, the test's own 40 callers queue behind each other
// and a shed call's answer waits its turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_beyond_the_limit_is_shed_not_queued_and_accepted_calls_keep_their_latency() {
    orderly_kit::observe::metrics::install();
    let db = TestDatabase::create(TestBackend::Sqlite)
        .await
        .expect("sqlite");
    let limit = 4;
    let faults = orderly_kit::server::faults::FaultConfig {
        latency: HANDLER,
        fault_methods: vec!["GetUser".into()],
        ..Default::default()
    };
    let config = ServerConfig {
        max_concurrent_calls: limit,
        faults,
        ..ServerConfig::default()
    };
    let mut server = crate::support::start_with(db, config).await;
    let user = create(&mut server.client, "Busy", "busy@example.com").await;

    let (unloaded, shed) = load(server.addr, &user.id, limit, 25).await;
    assert!(shed.is_empty(), "at the limit nothing is shed");
    let (accepted, shed) = load(server.addr, &user.id, limit * 10, 25).await;
    let (unloaded_p99, loaded_p99) = (p99(&unloaded), p99(&accepted));
    let shed_p50 = shed.get(shed.len() / 2).copied().unwrap_or_default();
    eprintln!(
        "overload: unloaded p99 {unloaded_p99:?}; at 10x the limit {} accepted with p99 {loaded_p99:?}, {} shed with median {shed_p50:?}",
        accepted.len(),
        shed.len()
    );
    assert!(!shed.is_empty() && !accepted.is_empty());
    // A shed call is refused at once and its answer held (see kit::server::shed): it waits for no
    // accepted call, so it comes back after the hold, well before it would have had its turn.
    let hold = orderly_kit::server::shed::HOLD;
    assert!(
        shed_p50 >= hold && shed_p50 < hold + HANDLER / 4,
        "refused at once and held, not queued: median {shed_p50:?}"
    );
    assert!(
        loaded_p99 <= unloaded_p99 * 2,
        "accepted calls keep their latency: {loaded_p99:?} vs {unloaded_p99:?}"
    );
    let rendered = orderly_kit::observe::metrics::install().render();
    assert!(
        rendered
            .lines()
            .any(|l| l.starts_with("orderly_server_shed_total{")
                && l.contains("rpc_service=\"orderly.users.v1.UserService\"")
                && l.contains("class=\"cheap\"")),
        "shed calls are counted in /metrics"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_lists_is_shed_by_its_own_limit_and_cheap_calls_keep_flowing() {
    let db = TestDatabase::create(TestBackend::Sqlite)
        .await
        .expect("sqlite");
    // Lists take 300 ms each; sixteen calls at once is the ceiling, and lists get an eighth of it.
    let faults = orderly_kit::server::faults::FaultConfig {
        latency: Duration::from_millis(300),
        fault_methods: vec!["ListUsers".into()],
        ..Default::default()
    };
    let config = ServerConfig {
        max_concurrent_calls: 16,
        faults,
        ..ServerConfig::default()
    };
    let mut server = crate::support::start_with(db, config).await;
    let user = create(&mut server.client, "Cheap", "cheap@example.com").await;
    let channel = channel(server.addr).await;

    let mut lists = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let mut client = UserServiceClient::new(channel.clone());
        lists.spawn(async move {
            let mut outcomes = Vec::new();
            for _ in 0..3 {
                let listed = client
                    .list_users(ListUsersRequest {
                        page_size: 10,
                        page_token: String::new(),
                    })
                    .await;
                outcomes.push(listed.map(drop));
            }
            outcomes
        });
    }
    // Meanwhile, eight callers of the cheap GetUser: every call answered.
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let mut client = UserServiceClient::new(channel.clone());
        let id = user.id.clone();
        reads.spawn(async move {
            for _ in 0..50 {
                client
                    .get_user(GetUserRequest { id: id.clone() })
                    .await
                    .expect("a cheap call is not shed for the lists");
            }
        });
    }
    while let Some(read) = reads.join_next().await {
        read.expect("reader");
    }
    let (mut listed, mut shed) = (0, 0);
    while let Some(outcomes) = lists.join_next().await {
        for outcome in outcomes.expect("lister") {
            match outcome {
                Ok(()) => listed += 1,
                Err(status) => {
                    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                    assert!(
                        tonic_types::StatusExt::get_details_retry_info(&status).is_some(),
                        "a shed call says when to retry"
                    );
                    shed += 1;
                }
            }
        }
    }
    eprintln!("lists: {listed} answered, {shed} shed");
    assert!(listed > 0 && shed > 0, "{listed} answered, {shed} shed");
    server.stop().await;
}
