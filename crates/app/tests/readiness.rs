//! `/readyz` answers for what the builder started, with no state shared between two systems in
//! one process: the REST gateway is not a gRPC server and is not waited for, and a system that
//! stops takes nothing of another's readiness with it.

use std::net::SocketAddr;
use std::time::Duration;

use orderly_app::registry::find;
use orderly_app::{Builder, Settings, System};
use orderly_kit::db::DatabaseConfig;

const PATIENCE: Duration = Duration::from_secs(30);

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// `names` on port 0 over SQLite files in `dir`, with an admin port.
async fn start(names: &[&str], dir: &std::path::Path) -> System {
    let mut builder = Builder::new(Settings::defaults(
        "a page-token secret of at least 32 bytes".into(),
    ))
    .admin(local())
    // Where the gateway would find the services this test does not start: nothing answers there.
    .peer("orders", "http://127.0.0.1:9")
    .peer("catalog", "http://127.0.0.1:9");
    for name in names {
        let service = find(name).expect("a declared service");
        let database = service.database.then(|| DatabaseConfig {
            url: format!("sqlite://{}", dir.join(format!("{name}.db")).display()),
            max_connections: 2,
        });
        builder = builder.service(service, local(), database);
    }
    builder.start().await.expect("the services start")
}

async fn readyz(system: &System) -> u16 {
    let admin = system.admin_addr().expect("an admin port");
    orderly_kit::http::client::get(admin, "/readyz")
        .await
        .expect("the admin port answers")
        .status
}

/// Polls `/readyz` (the readiness signal itself) until it answers 200.
async fn ready(system: &System) {
    tokio::time::timeout(PATIENCE, async {
        while readyz(system).await != 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("ready in time");
}

#[tokio::test]
async fn readyz_waits_for_the_grpc_servers_the_builder_started_and_no_other() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let users = start(&["users", "gateway"], dir.path()).await;
    ready(&users).await;
    assert!(users.ready());
    assert!(users.addr("gateway").is_some(), "the gateway runs");

    let payments = start(&["payments"], dir.path()).await;
    ready(&payments).await;
    payments.stop().await.expect("payments stops cleanly");
    assert_eq!(
        readyz(&users).await,
        200,
        "another system's stop leaves this one ready"
    );
    users
        .stop()
        .await
        .expect("users and the gateway stop cleanly");
}

#[tokio::test]
async fn a_service_that_cannot_start_stops_the_system_with_its_error() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let users = find("users").expect("users");
    let payments = find("payments").expect("payments");
    let sqlite = DatabaseConfig {
        url: format!("sqlite://{}", dir.path().join("users.db").display()),
        max_connections: 2,
    };
    let unopenable = DatabaseConfig {
        url: "mysql://127.0.0.1:9/payments".into(),
        max_connections: 2,
    };
    let system = Builder::new(Settings::defaults(
        "a page-token secret of at least 32 bytes".into(),
    ))
    .service(users, local(), Some(sqlite))
    .service(payments, local(), Some(unopenable))
    .start()
    .await
    .expect("the listeners bind");
    let error = tokio::time::timeout(PATIENCE, system.wait())
        .await
        .expect("the system stops by itself")
        .expect_err("payments' database cannot be opened");
    assert!(error.to_string().contains("payments"), "{error}");
}
