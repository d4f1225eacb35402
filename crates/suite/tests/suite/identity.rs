//! Service identity over the whole suite with mutual TLS on every hop (the stack's default): who
//! cannot connect at all, which service may call which method, and certificates rotated on disk
//! while calls run.

use std::time::{Duration, Instant};

use orderly::common::v1::Money;
use orderly::orders::v1::{OrderStatus, WatchOrderRequest};
use orderly::payments::v1::{ChargeRequest, PaymentServiceClient};
use orderly_kit::tls::{Identity, client::Connector};
use orderly_testkit::stack::{PATIENCE, client_channel, issue_certificates, order_request, slow};
use orderly_testkit::{Options, Stack, TestBackend};
use tonic::Code;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

async fn stack(options: Options) -> Stack {
    Stack::start(options)
        .await
        .expect("SQLite is always available")
}

/// A health check on `channel`'s server: what any client that completes the handshake may call.
async fn health(channel: tonic::transport::Channel) -> Result<(), tonic::Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(drop)
}

fn charge(key: &str) -> ChargeRequest {
    ChargeRequest {
        order_id: key.into(),
        amount: Some(Money {
            currency_code: "EUR".into(),
            amount_minor: 500,
        }),
        idempotency_key: key.into(),
    }
}

#[tokio::test]
async fn a_plaintext_client_and_a_client_of_another_ca_cannot_connect() {
    let stack = stack(Options::default()).await;
    let plain = Endpoint::from_shared(stack.users_url.clone())
        .expect("uri")
        .connect_lazy();
    let refused = health(plain).await.expect_err("plaintext refused");
    assert_ne!(refused.code(), Code::Ok);

    // Certificates for the right names, but signed by a CA the suite does not trust.
    let stranger = issue_certificates();
    let identity = Identity::load(stranger.path(), "gateway").expect("certificates");
    let connector = Connector::new(identity, "users").expect("name");
    let connected = Endpoint::from_shared(stack.users_url.clone())
        .expect("uri")
        .connect_with_connector(connector)
        .await;
    // rustls on the client refuses the server's certificate (not of its CA) during the handshake.
    assert!(connected.is_err(), "a client of another CA connected");

    // The suite's own certificate: the handshake completes and health is open to any service.
    let tls = stack.tls_dir.as_deref();
    health(client_channel(&stack.users_url, tls, "payments", "users").await)
        .await
        .expect("health is open to any service of the cluster");
    stack.stop().await;
}

#[tokio::test]
async fn only_orders_may_charge_and_delivery_is_refused_before_anything_is_charged() {
    let mut stack = stack(Options::default()).await;
    // The stack's payments client speaks as orders; this one as delivery.
    let dir = stack.tls_dir.clone().expect("the stack speaks TLS");
    let mut as_delivery = PaymentServiceClient::new(
        client_channel(&stack.payments_url, Some(&dir), "delivery", "payments").await,
    );
    let refused = as_delivery
        .charge(charge("by-delivery"))
        .await
        .expect_err("delivery may not charge");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let info = refused.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "CALLER_NOT_ALLOWED");
    assert!(
        stack.charges_for("by-delivery").await.is_empty(),
        "nothing charged"
    );
    assert_eq!(stack.net_charged().await, 0);

    let charged = stack
        .payments
        .charge(charge("by-orders"))
        .await
        .expect("orders may charge");
    assert!(charged.into_inner().payment.is_some());
    assert_eq!(stack.charges_for("by-orders").await, [(500, 0)]);
    stack.stop().await;
}

#[tokio::test]
async fn a_certificate_replaced_on_disk_serves_new_connections_while_a_watch_runs_on() {
    // Charges take long enough for a watch to stay open across the rotation.
    let mut stack = stack(Options {
        backend: TestBackend::Sqlite,
        payments: slow(Duration::from_secs(3), &["Charge"]),
        budget: Duration::from_secs(20),
        ..Options::default()
    })
    .await;
    let dir = stack.tls_dir.clone().expect("the stack speaks TLS");
    let user = stack.user().await;
    let placing = {
        let mut orders = stack.orders.clone();
        let request = order_request(&user, "rotate", &[("INK", 1, 700)]);
        tokio::spawn(async move { orders.create_order(request).await })
    };
    // The order is PENDING while its charge waits; its watch stream is opened before the swap.
    let listed_by = Instant::now() + PATIENCE;
    let order_id = loop {
        let listed = stack
            .orders
            .list_orders(orderly::orders::v1::ListOrdersRequest {
                user_id: user.clone(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        if let Some(order) = listed.orders.first() {
            break order.id.clone();
        }
        assert!(
            Instant::now() < listed_by && !placing.is_finished(),
            "the order was never listed while it was being placed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut watch = stack
        .orders
        .watch_order(WatchOrderRequest {
            id: order_id.clone(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("watch").expect("an update");
    assert_eq!(first.order.expect("order").status(), OrderStatus::Pending);

    // Rotation: every service's certificate issued again by the same CA, written over the old.
    let before = std::fs::read(dir.join("orders.pem")).expect("old certificate");
    orderly_kit::tls::issue::issue(
        &dir,
        &orderly_app::registry::names(),
        Duration::from_secs(3600),
        false,
    )
    .expect("issue again");
    let after = std::fs::read(dir.join("orders.pem")).expect("new certificate");
    assert_ne!(before, after);
    let new_leaf = orderly_kit::tls::files::certificates(&dir.join("orders.pem")).expect("pem");

    // A new connection to orders is served the new certificate within 10 s.
    let addr = stack.orders_url.trim_start_matches("http://").to_owned();
    let gateway = Identity::load(&dir, "gateway").expect("certificates");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let tls = tokio_rustls::TlsConnector::from(gateway.client_config());
        let name = "orders".try_into().expect("name");
        let stream = tls.connect(name, tcp).await.expect("handshake");
        let served = stream
            .get_ref()
            .1
            .peer_certificates()
            .expect("certificates")[0]
            .clone();
        if served == new_leaf[0] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new connections still get the old certificate after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The watch opened before the swap carries on to the end, and the order went through.
    let mut last = None;
    while let Some(update) = tokio::time::timeout(PATIENCE, watch.message())
        .await
        .expect("an update in time")
        .expect("the watch survives the rotation")
    {
        last = update.order;
    }
    assert_eq!(
        last.expect("a last update").status(),
        OrderStatus::Confirmed
    );
    let placed = placing.await.expect("task").expect("order placed");
    assert_eq!(
        placed.into_inner().order.expect("order").status(),
        OrderStatus::Confirmed
    );
    stack.stop().await;
}

/// Twice as many half-sent TLS handshakes as a gRPC port's cap (no certificate is needed to send
/// a ClientHello): a new client with a certificate still connects, the oldest half-open connection
/// making room, and is answered within a second.
#[tokio::test]
async fn half_sent_tls_handshakes_beyond_the_cap_make_room_for_a_new_client() {
    use tokio::io::AsyncWriteExt;

    orderly_kit::conn::raise_fd_limit().expect("open file limit");
    let stack = stack(Options {
        max_client_connections: Some(200),
        ..Options::default()
    })
    .await;
    let addr = stack
        .users_url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_owned();
    let mut half_open = Vec::with_capacity(400);
    for _ in 0..400 {
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        // The first bytes of a TLS record carrying a ClientHello, and no more.
        stream
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])
            .await
            .expect("half a ClientHello");
        half_open.push(stream);
    }
    let tls = stack.tls_dir.as_deref();
    for _ in 0..3 {
        let started = Instant::now();
        let channel = client_channel(&stack.users_url, tls, "gateway", "users").await;
        health(channel).await.expect("a new client is served");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "connected and answered in {:?}",
            started.elapsed()
        );
    }
    drop(half_open);
    stack.stop().await;
}
