//! Connecting as a program outside the suite does: over mutual TLS with a certificate of its own
//! (the one `orderly up` writes for outside programs, `client.pem`), and, when the setup is wrong,
//! failing in `connect()` with the cause named, not at the first call with "transport error".

use orderly::client::{Client, ClientError, ConnectCause};
use orderly::error::{Reason, StatusExt};
use orderly::payments::v1::{ChargeRequest, PaymentServiceClient};
use orderly::rpc::{Certificate, ClientTlsConfig, Code};
use orderly::users::v1::{CreateUserRequest, GetUserRequest};
use orderly_testkit::{Options, Stack};

/// `url` (`http://host:port`, as the stack gives it) spoken to over TLS.
fn https(url: &str) -> String {
    url.replacen("http://", "https://", 1)
}

/// The cause of a failed connect, or a panic naming what happened instead.
fn cause(connected: Result<Client, ClientError>) -> ConnectCause {
    match connected {
        Err(ClientError::Connect { cause, .. }) => cause,
        Err(other) => panic!("not a connect failure: {other}"),
        Ok(_) => panic!("connected"),
    }
}

#[tokio::test]
async fn an_outside_program_calls_with_its_own_certificate_what_the_gateway_may() {
    let stack = Stack::start(Options::default())
        .await
        .expect("SQLite is always available");
    let dir = stack.tls_dir.clone().expect("the stack speaks mutual TLS");
    let client = Client::builder(https(&stack.users_url))
        .tls_dir(&dir, "client")
        .connect()
        .await
        .expect("an outside program's certificate gets past the handshake");
    let created = client
        .users()
        .create_user(CreateUserRequest {
            name: "Ada".into(),
            email: "ada@example.com".into(),
        })
        .await
        .expect("users admits outside programs")
        .into_inner()
        .user
        .expect("a user");
    let read = client
        .users()
        .get_user(GetUserRequest { id: created.id })
        .await
        .expect("read back");
    assert_eq!(
        read.into_inner().user.map(|user| user.name).as_deref(),
        Some("Ada")
    );

    // What only a service of the suite may call stays closed to it: charging is for orders.
    let payments = Client::builder(https(&stack.payments_url))
        .tls_dir(&dir, "client")
        .connect()
        .await
        .expect("the handshake passes");
    let refused = PaymentServiceClient::new(payments.transport())
        .charge(ChargeRequest::default())
        .await
        .expect_err("charging is for orders only");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(refused.reason(), Some(Reason::CallerNotAllowed));
}

#[tokio::test]
async fn a_wrong_setup_fails_in_connect_naming_its_cause() {
    let mtls = Stack::start(Options::default())
        .await
        .expect("SQLite is always available");
    let dir = mtls.tls_dir.clone().expect("the stack speaks mutual TLS");

    // Plaintext against a TLS server.
    let plain = Client::builder(mtls.users_url.clone()).connect().await;
    assert_eq!(cause(plain), ConnectCause::TlsExpected);

    // TLS without a client certificate, against a server that demands one.
    let ca = std::fs::read(dir.join("ca.pem")).expect("the CA");
    let anonymous = Client::builder(https(&mtls.users_url))
        .tls(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
        .connect()
        .await;
    let failure = anonymous.expect_err("no client certificate");
    assert!(
        matches!(
            failure,
            ClientError::Connect {
                cause: ConnectCause::ClientCertificateRefused,
                ..
            }
        ),
        "{failure}"
    );
    assert!(
        failure.to_string().contains("orderly certs --client"),
        "the message says what to do: {failure}"
    );

    // TLS configured with an http:// URL, and https:// without TLS: refused before dialling.
    let mixed = Client::builder(mtls.users_url.clone())
        .tls_dir(&dir, "client")
        .connect()
        .await;
    assert!(
        matches!(mixed, Err(ClientError::InvalidEndpoint { .. })),
        "{mixed:?}"
    );
    let bare = Client::builder(https(&mtls.users_url)).connect().await;
    assert!(
        matches!(bare, Err(ClientError::InvalidEndpoint { .. })),
        "{bare:?}"
    );

    // A missing certificate file is named.
    let missing = Client::builder(https(&mtls.users_url))
        .tls_dir(&dir, "nobody")
        .connect()
        .await;
    match missing {
        Err(ClientError::TlsFiles { path, .. }) => assert!(path.ends_with("nobody.pem"), "{path}"),
        other => panic!("{other:?}"),
    }

    // TLS against a plaintext server, and gRPC against the REST gateway's port.
    let plaintext = Stack::start(Options {
        tls: false,
        gateway: Some(Box::new(|_| {})),
        ..Options::default()
    })
    .await
    .expect("SQLite is always available");
    let tls_to_plain = Client::builder(https(&plaintext.users_url))
        .tls_dir(&dir, "client")
        .connect()
        .await;
    assert_eq!(cause(tls_to_plain), ConnectCause::NotTls);
    let gateway = plaintext.gateway.expect("a gateway");
    let rest = Client::builder(format!("http://{gateway}")).connect().await;
    assert_eq!(cause(rest), ConnectCause::NotGrpc);
    plaintext.stop().await;
    mtls.stop().await;

    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let nobody = Client::builder(format!("http://127.0.0.1:{port}"))
        .connect()
        .await;
    assert_eq!(cause(nobody), ConnectCause::Unreachable);
}
