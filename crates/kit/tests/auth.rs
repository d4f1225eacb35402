//! The authentication layer in front of a real gRPC service on loopback, for a unary call
//! (`grpc.health.v1.Health/Check`) and a streaming one (`Health/Watch`): tokens are checked
//! before the service runs, and refusals carry their reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orderly_kit::auth::keys::JwksFile;
use orderly_kit::auth::rules::{Authenticate, Rule, Rules};
use orderly_kit::auth::signing::{SigningKey, TokenSpec};
use orderly_kit::auth::verify::Verifier;
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

const ISSUER: &str = "https://issuer.test";

/// Serves the health service behind rules where Check needs any valid token and Watch the admin
/// role; returns its address and the key that signs valid tokens.
async fn serve() -> (SocketAddr, SigningKey, tempfile::TempDir) {
    let key = SigningKey::generate().expect("key");
    let dir = tempfile::tempdir().expect("temporary directory");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, key.jwks()).expect("JWKS");
    let verifier = Verifier::new(JwksFile::open(&jwks).expect("JWKS"), ISSUER, "orderly");
    let rules = Rules::new(
        "grpc.health.v1.Health",
        &[("Check", Rule::User), ("Watch", Rule::Admin)],
    );
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        let _reporter = reporter;
        tonic::transport::Server::builder()
            .add_service(Authenticate::new(
                health,
                Some(Arc::new(verifier)),
                Arc::new(rules),
            ))
            .serve_with_incoming(incoming)
            .await
    });
    (addr, key, dir)
}

fn token(key: &SigningKey, admin: bool, ttl: Duration, issued_ago: u64) -> String {
    let spec = TokenSpec {
        subject: "user-1".into(),
        roles: if admin { vec!["admin".into()] } else { vec![] },
        issuer: ISSUER.into(),
        audience: "orderly".into(),
        ttl,
    };
    let now = jsonwebtoken_now() - issued_ago;
    key.token_at(&spec, now).expect("token")
}

fn jsonwebtoken_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

async fn client(addr: SocketAddr) -> HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    HealthClient::new(channel)
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    request
}

fn assert_refused(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, reason);
    assert_eq!(info.domain, "auth.orderly");
}

#[tokio::test]
async fn unary_calls_need_a_valid_token() {
    let (addr, key, _dir) = serve().await;
    let mut client = client(addr).await;
    let check = || HealthCheckRequest {
        service: String::new(),
    };
    let missing = client
        .check(with_token(check(), None))
        .await
        .expect_err("no token");
    assert_refused(&missing, Code::Unauthenticated, "TOKEN_MISSING");
    let expired = token(&key, false, Duration::from_secs(60), 3600);
    let refused = client
        .check(with_token(check(), Some(&expired)))
        .await
        .expect_err("expired");
    assert_refused(&refused, Code::Unauthenticated, "TOKEN_EXPIRED");
    let forged = format!("{}x", token(&key, false, Duration::from_secs(600), 0));
    let refused = client
        .check(with_token(check(), Some(&forged)))
        .await
        .expect_err("bad signature");
    assert_refused(&refused, Code::Unauthenticated, "TOKEN_INVALID");
    let valid = token(&key, false, Duration::from_secs(600), 0);
    client
        .check(with_token(check(), Some(&valid)))
        .await
        .expect("a valid token is let through");
}

#[tokio::test]
async fn streaming_calls_are_checked_like_unary_ones() {
    let (addr, key, _dir) = serve().await;
    let mut client = client(addr).await;
    let watch = || HealthCheckRequest {
        service: String::new(),
    };
    let missing = client
        .watch(with_token(watch(), None))
        .await
        .expect_err("no token");
    assert_refused(&missing, Code::Unauthenticated, "TOKEN_MISSING");
    let user = token(&key, false, Duration::from_secs(600), 0);
    let refused = client
        .watch(with_token(watch(), Some(&user)))
        .await
        .expect_err("not an admin");
    assert_refused(&refused, Code::PermissionDenied, "MISSING_ROLE");
    let admin = token(&key, true, Duration::from_secs(600), 0);
    let mut stream = client
        .watch(with_token(watch(), Some(&admin)))
        .await
        .expect("admin may watch")
        .into_inner();
    let first = stream.message().await.expect("message").expect("status");
    assert_eq!(
        first.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}
