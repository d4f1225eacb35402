//! The `orderly` binary as a process: it survives SIGKILL without losing acknowledged writes, and
//! shuts down gracefully on SIGTERM. Readiness comes from its JSON log lines on stdout.

use nix::sys::signal::Signal;
use orderly::users::v1::{CreateUserRequest, GetUserRequest, User, UserServiceClient};
use orderly_testkit::db::{TestBackend, TestDatabase};

use crate::common::{Orderly, PATIENCE};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn serve_users(url: &str, extra: &[&str]) -> Vec<String> {
    crate::common::serve_args("users", "127.0.0.1:0", url, extra)
}

async fn start_users(url: &str, extra: &[&str]) -> Orderly {
    let args = serve_users(url, extra);
    Orderly::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await
}

async fn acknowledged_users_survive_sigkill(backend: TestBackend) {
    let Some(db) = TestDatabase::create(backend).await else {
        return;
    };
    let mut first = start_users(db.url(), &[]).await;
    let mut client = first.users().await;
    let mut acknowledged: Vec<User> = Vec::new();
    for i in 0..25 {
        let request = CreateUserRequest {
            name: format!("Durable {i}"),
            email: format!("durable{i}@example.com"),
        };
        acknowledged.push(
            client
                .create_user(request)
                .await
                .expect("create")
                .into_inner()
                .user
                .expect("user"),
        );
    }
    first.signal(Signal::SIGKILL);
    let status = first.exit().await;
    assert!(!status.success(), "killed, not exited: {status:?}");

    let mut second = start_users(db.url(), &[]).await;
    let mut client = second.users().await;
    for user in &acknowledged {
        let found = client
            .get_user(GetUserRequest {
                id: user.id.clone(),
            })
            .await
            .expect("found after restart");
        assert_eq!(found.into_inner().user.as_ref(), Some(user));
    }
    second.signal(Signal::SIGTERM);
    assert!(second.exit().await.success());
    db.remove().await;
}

#[tokio::test]
async fn acknowledged_users_survive_sigkill_on_sqlite() {
    acknowledged_users_survive_sigkill(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn acknowledged_users_survive_sigkill_on_postgres() {
    acknowledged_users_survive_sigkill(TestBackend::Postgres).await;
}

#[tokio::test]
async fn sigterm_drains_health_refuses_new_calls_and_finishes_in_flight_ones() {
    let db = TestDatabase::create(TestBackend::Sqlite)
        .await
        .expect("sqlite");
    // A second of drain delay, as deployments set one: with none, the listener and the health
    // connection (idle once its watch has ended) close at once, and a client slow to read — this
    // test under a busy machine — can get the connection reset before it reads NOT_SERVING (unread
    // bytes on a closing socket make the kernel send RST, which discards what the peer had not read).
    let mut server = start_users(
        db.url(),
        &[
            "--fault-metadata",
            "--grace-period",
            "20s",
            "--drain-delay",
            "1s",
        ],
    )
    .await;
    let mut client = server.users().await;
    let user = client
        .create_user(CreateUserRequest {
            name: "Patient".into(),
            email: "patient@example.com".into(),
        })
        .await
        .expect("create")
        .into_inner()
        .user
        .expect("user");

    let mut health = HealthClient::new(server.channel().await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "orderly.users.v1.UserService".into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("watch").expect("first status");
    assert_eq!(first.status, ServingStatus::Serving as i32);

    // A call the server holds for two seconds.
    let mut slow_request = tonic::Request::new(GetUserRequest {
        id: user.id.clone(),
    });
    slow_request
        .metadata_mut()
        .insert("x-orderly-fault-delay", "2s".parse().expect("metadata"));
    let slow = tokio::spawn(async move { client.get_user(slow_request).await });
    server.log("injecting fault").await;

    server.signal(Signal::SIGTERM);
    let update = tokio::time::timeout(PATIENCE, watch.message())
        .await
        .expect("status in time")
        .expect("watch")
        .expect("status while draining");
    assert_eq!(update.status, ServingStatus::NotServing as i32);
    assert!(
        !slow.is_finished(),
        "NOT_SERVING is reported while the slow call is still running"
    );
    let end = tokio::time::timeout(PATIENCE, watch.message())
        .await
        .expect("watch streams end on drain instead of holding shutdown");
    assert!(
        end.map(|m| m.is_none()).unwrap_or(true),
        "no status after NOT_SERVING"
    );

    server
        .log("closing the listener; in-flight calls may finish")
        .await;
    let refused = match UserServiceClient::connect(format!("http://{}", server.addr)).await {
        Err(_) => true,
        Ok(mut late) => late
            .get_user(GetUserRequest {
                id: user.id.clone(),
            })
            .await
            .is_err(),
    };
    assert!(refused, "a new call after SIGTERM is refused");

    let response = tokio::time::timeout(PATIENCE, slow)
        .await
        .expect("in time")
        .expect("task");
    assert_eq!(
        response
            .expect("the in-flight call completes")
            .into_inner()
            .user,
        Some(user)
    );
    let status = server.exit().await;
    assert!(status.success(), "clean exit: {status:?}");
}

#[tokio::test]
async fn up_keeps_its_data_across_restarts() {
    let data = tempfile::tempdir().expect("data dir");
    let dir = data.path().to_str().expect("utf-8 path");
    let args = crate::common::up_args(dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut first = Orderly::start(&args).await;
    let user = first
        .users()
        .await
        .create_user(CreateUserRequest {
            name: "Kept".into(),
            email: "kept@example.com".into(),
        })
        .await
        .expect("create")
        .into_inner()
        .user
        .expect("user");
    first.signal(Signal::SIGTERM);
    assert!(first.exit().await.success());

    let mut second = Orderly::start(&args).await;
    let found = second
        .users()
        .await
        .get_user(GetUserRequest {
            id: user.id.clone(),
        })
        .await
        .expect("found");
    assert_eq!(found.into_inner().user, Some(user));
    second.signal(Signal::SIGINT);
    assert!(second.exit().await.success());
}

/// `orderly serve --target TARGET` on port 0 over a SQLite file in `dir`, plus `extra` flags.
async fn start_target(
    target: &str,
    service: &str,
    dir: &std::path::Path,
    extra: &[String],
) -> Orderly {
    let url = format!("sqlite://{}", dir.join(format!("{target}.db")).display());
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    crate::common::start(
        &crate::common::serve_args(target, "127.0.0.1:0", &url, &extra),
        service,
    )
    .await
}

#[tokio::test]
async fn an_order_stranded_by_a_crash_is_settled_on_restart_with_money_consistent() {
    use orderly::orders::v1::{OrderServiceClient, OrderStatus, WatchOrderRequest};

    let data = tempfile::tempdir().expect("data dir");
    let dir = data.path();
    let mut users = start_target("users", "UserService", dir, &[]).await;
    // Charges take a second, so the orders process can be killed between PENDING and CONFIRMED.
    let slow_charges = ["--latency", "1s", "--fault-methods", "Charge"].map(String::from);
    let mut payments = start_target("payments", "PaymentService", dir, &slow_charges).await;
    let mut delivery = start_target("delivery", "DeliveryService", dir, &[]).await;
    let demo = ["--demo-catalog".to_owned()];
    let mut catalog = start_target("catalog", "CatalogService", dir, &demo).await;
    let downstreams = vec![
        "--catalog-url".to_owned(),
        format!("http://{}", catalog.addr),
        "--users-url".to_owned(),
        format!("http://{}", users.addr),
        "--payments-url".to_owned(),
        format!("http://{}", payments.addr),
        "--delivery-url".to_owned(),
        format!("http://{}", delivery.addr),
    ];
    let mut orders = start_target("orders", "OrderService", dir, &downstreams).await;

    let user = users
        .users()
        .await
        .create_user(CreateUserRequest {
            name: "Crash".into(),
            email: "crash@example.com".into(),
        })
        .await
        .expect("create user")
        .into_inner()
        .user
        .expect("user");
    let request = crate::common::order_request(&user.id, "crash-1");
    let mut client = OrderServiceClient::new(orders.channel().await);
    let placing = tokio::spawn(async move { client.create_order(request).await });
    let accepted = orders.log("order accepted").await;
    let order_id = accepted["order_id"]
        .as_str()
        .expect("order id in log")
        .to_owned();
    orders.signal(Signal::SIGKILL);
    assert!(!orders.exit().await.success());
    assert!(
        placing.await.expect("task").is_err(),
        "the caller saw the crash"
    );

    // A new orders process settles what the old one left behind.
    let mut restart = downstreams.clone();
    restart.extend(["--recover-after", "0s"].map(String::from));
    let mut orders = start_target("orders", "OrderService", dir, &restart).await;
    let mut client = OrderServiceClient::new(orders.channel().await);
    let mut updates = client
        .watch_order(WatchOrderRequest {
            id: order_id.clone(),
        })
        .await
        .expect("watch")
        .into_inner();
    let mut last = None;
    while let Some(update) = tokio::time::timeout(PATIENCE, updates.message())
        .await
        .expect("in time")
        .expect("watch")
    {
        last = update.order;
    }
    let last = last.expect("the order survived the crash");
    assert_eq!(last.status(), OrderStatus::Failed, "{}", last.status_reason);

    // Whatever the charge did, none of the money stays taken, and no parcel stays booked.
    let money = orderly_kit::db::connect(
        &format!("sqlite://{}", dir.join("payments.db").display()),
        1,
    )
    .await
    .expect("payments db");
    let (charged, refunded) = orderly_testkit::db::money_taken(&money).await;
    assert_eq!(
        charged - refunded,
        0,
        "charged {charged}, refunded {refunded}"
    );
    let parcels = orderly_kit::db::connect(
        &format!("sqlite://{}", dir.join("delivery.db").display()),
        1,
    )
    .await
    .expect("delivery db");
    let booked = parcels
        .fetch_optional(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM deliveries WHERE status = 'SCHEDULED'",
            &[],
            |row| row.int("n"),
        )
        .await
        .expect("count");
    assert_eq!(booked, Some(0));

    // The books reserved for it are back on hand: none reserved, none sold, none lost.
    let stock =
        orderly_kit::db::connect(&format!("sqlite://{}", dir.join("catalog.db").display()), 1)
            .await
            .expect("catalog db");
    let books = stock
        .fetch_optional(
            "SELECT on_hand, reserved, sold FROM products WHERE sku = 'BOOK-1'",
            &[],
            |row| Ok((row.int("on_hand")?, row.int("reserved")?, row.int("sold")?)),
        )
        .await
        .expect("stock");
    let start = orderly_catalog::seed::demo_catalog()
        .into_iter()
        .find(|p| p.sku == "BOOK-1")
        .expect("BOOK-1 in the demo catalog")
        .on_hand;
    assert_eq!(books, Some((start, 0, 0)));

    for process in [
        &mut orders,
        &mut users,
        &mut payments,
        &mut delivery,
        &mut catalog,
    ] {
        process.signal(Signal::SIGTERM);
        assert!(process.exit().await.success());
    }
}

/// Replicas starting at once over one fresh PostgreSQL database (a Kubernetes rollout) all come
/// up, and the schema is applied once: sqlx's migrator holds a PostgreSQL advisory lock while it
/// migrates, so one process applies each migration and the others find it applied.
#[tokio::test]
async fn replicas_starting_at_once_on_one_fresh_postgres_database_all_come_up() {
    let Some(db) = TestDatabase::create(TestBackend::Postgres).await else {
        return;
    };
    let args = serve_users(db.url(), &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (mut first, mut second) = tokio::join!(Orderly::start(&args), Orderly::start(&args));
    for replica in [&first, &second] {
        let (status, _) = crate::common::http_get(replica.admin, "/readyz").await;
        assert_eq!(status, 200, "both replicas are ready");
    }
    let database = orderly_kit::db::connect(db.url(), 1)
        .await
        .expect("the database");
    let versions = database
        .fetch_all("SELECT version FROM _sqlx_migrations", &[], |row| {
            row.int("version")
        })
        .await
        .expect("sqlx's record of applied migrations");
    let distinct: std::collections::BTreeSet<i64> = versions.iter().copied().collect();
    assert_eq!(
        versions.len(),
        orderly_users::store::MIGRATIONS.len(),
        "{versions:?}"
    );
    assert_eq!(
        distinct.len(),
        versions.len(),
        "each applied once: {versions:?}"
    );
    database.close().await;
    for replica in [&mut first, &mut second] {
        replica.signal(Signal::SIGTERM);
        assert!(replica.exit().await.success());
    }
    db.remove().await;
}

/// `--health-listen` serves `grpc.health.v1` alone, in plaintext, with the server's own statuses:
/// what Kubernetes' native gRPC probes (which cannot present a certificate) call.
#[tokio::test]
async fn health_alone_answers_in_plaintext_on_its_own_port() {
    let db = TestDatabase::create(TestBackend::Sqlite)
        .await
        .expect("SQLite is always available");
    let port = crate::common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut served = start_users(db.url(), &["--health-listen", &listen]).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{listen}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("the health port answers");
    let mut health = HealthClient::new(channel.clone());
    for service in ["orderly.users.v1.UserService", ""] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("checked")
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
    let business = UserServiceClient::new(channel)
        .get_user(GetUserRequest { id: "x".into() })
        .await
        .expect_err("health only");
    assert_eq!(business.code(), tonic::Code::Unimplemented);
    served.signal(Signal::SIGTERM);
    assert!(served.exit().await.success());
}
