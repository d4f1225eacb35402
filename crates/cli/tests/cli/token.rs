//! Authentication as `orderly` sets it up: `orderly token` signs with the development key under the
//! data directory; `orderly up` checks tokens signed by it unless told `--insecure-no-auth`;
//! `orderly serve` will not start without a JWKS or that flag.

use orderly::users::v1::{CreateUserRequest, GetUserRequest};
use orderly_kit::auth::keys::JwksFile;
use orderly_kit::auth::signing::JWKS_FILE;
use orderly_kit::auth::verify::Verifier;
use orderly_kit::auth::{AUDIENCE, DEV_ISSUER, DEV_KEY_DIR};

fn token(data: &std::path::Path, extra: &[&str]) -> String {
    crate::common::run_orderly("token", "--data-dir", data, extra)
}

#[test]
fn printed_tokens_verify_against_the_jwks_beside_the_key() {
    let data = tempfile::tempdir().expect("temporary directory");
    let user = token(data.path(), &["--sub", "user-1"]);
    let admin = token(data.path(), &["--sub", "root", "--admin", "--ttl", "5m"]);
    let jwks = data.path().join(DEV_KEY_DIR).join(JWKS_FILE);
    let verifier = Verifier::new(JwksFile::open(&jwks).expect("JWKS"), DEV_ISSUER, AUDIENCE);
    let caller = verifier.token(&user).expect("user token");
    assert_eq!(caller.subject, "user-1");
    assert!(!caller.is_admin());
    assert!(verifier.token(&admin).expect("admin token").is_admin());
}

#[tokio::test]
async fn up_checks_tokens_signed_by_its_development_key() {
    let data = tempfile::tempdir().expect("data dir");
    let dir = data.path().to_str().expect("utf-8 path");
    let args = crate::common::secured_up_args(dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut up =
        crate::common::Orderly::start_serving(&args, &crate::common::EVERYTHING_UP_SERVES).await;
    signs_up_and_reads_her_record_only_with_her_token(&up, |id| token(data.path(), &["--sub", id]))
        .await;
    let (status, body) = crate::common::http_get(up.admin, "/readyz").await;
    assert_eq!(status, 200, "{body}; warnings logged: {:?}", up.warnings());
    assert!(!body.contains("warning"), "{body}");

    // `orderly bench` carries a token to every call it makes, and finds the suite's
    // certificates under its data directory (here named by ORDERLY_DATA_DIR, as `orderly token`
    // finds its key), with no TLS flag.
    let admin = token(data.path(), &["--sub", "bench", "--admin"]);
    let url = format!("http://{}", up.addr);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_orderly"))
        .args(["bench", "get-user", "--users-url", &url, "--users", "2"])
        .args(["--concurrency", "2", "--duration", "1s", "--warmup", "0s"])
        .args(["--token", &admin, "--output", "json"])
        .env("ORDERLY_DATA_DIR", data.path())
        .env_remove("ORDERLY_TLS_DIR")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(crate::common::PATIENCE, output)
        .await
        .expect("bench ends in time")
        .expect("bench runs");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON summary");
    let outcomes = summary["outcomes"].as_object().expect("outcomes");
    assert!(
        outcomes.keys().all(|code| code == "OK") && summary["outcomes"]["OK"].as_u64() > Some(0),
        "{summary}"
    );

    // Told to call in plaintext, it says at once why it cannot.
    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_orderly"))
        .args(["bench", "get-user", "--users-url", &url, "--plaintext"])
        .args(["--duration", "1s", "--token", &admin])
        .kill_on_drop(true)
        .output();
    let refused = tokio::time::timeout(crate::common::PATIENCE, refused)
        .await
        .expect("bench ends in time")
        .expect("bench runs");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("TLS server"), "{said}");
}

#[tokio::test]
async fn the_typed_client_reaches_a_default_up_with_the_certificate_up_writes_for_it() {
    let data = tempfile::tempdir().expect("data dir");
    let dir = data.path().to_str().expect("utf-8 path");
    let args = crate::common::secured_up_args(dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let up =
        crate::common::Orderly::start_serving(&args, &crate::common::EVERYTHING_UP_SERVES).await;
    let admin = token(data.path(), &["--sub", "shop", "--admin"]);
    // What `Client::local_up(DATA_DIR)` sets, on the ports this `up` chose.
    let client = orderly::client::Client::builder(format!("https://{}", up.addrs["UserService"]))
        .orders_url(format!("https://{}", up.addrs["OrderService"]))
        .catalog_url(format!("https://{}", up.addrs["CatalogService"]))
        .tls_dir(data.path().join("tls"), "client")
        .bearer_token(&admin)
        .connect()
        .await
        .expect("connected over mutual TLS as an outside program");
    let user = client
        .users()
        .create_user(CreateUserRequest {
            name: "Grace".into(),
            email: "grace@example.com".into(),
        })
        .await
        .expect("signed up")
        .into_inner()
        .user
        .expect("user");
    let products = client
        .catalog()
        .list_products(orderly::catalog::v1::ListProductsRequest::default())
        .await
        .expect("browsed")
        .into_inner()
        .products;
    assert!(!products.is_empty(), "the demo catalog");
    // Acting for Grace over the same connections, with her own token.
    let grace = client
        .with_token(&token(data.path(), &["--sub", &user.id]))
        .expect("a valid token");
    let read = grace
        .users()
        .get_user(GetUserRequest { id: user.id })
        .await
        .expect("her own record");
    assert_eq!(
        read.into_inner().user.map(|u| u.name).as_deref(),
        Some("Grace")
    );
}

#[tokio::test]
async fn serve_starts_only_with_a_jwks_or_when_told_to_accept_everyone() {
    let data = tempfile::tempdir().expect("data dir");
    let database = format!("sqlite://{}", data.path().join("users.db").display());
    let stderr = crate::common::serve_refused(
        &database,
        &["--insecure-plaintext"],
        &[
            "ORDERLY_JWKS_FILE",
            "ORDERLY_JWKS_URL",
            "ORDERLY_INSECURE_NO_AUTH",
        ],
    );
    assert!(stderr.contains("--jwks-file"), "{stderr}");

    // With a JWKS, users (which signs page tokens) also needs a secret of its own.
    let jwks = data.path().join("jwks.json");
    std::fs::write(
        &jwks,
        orderly_kit::auth::signing::SigningKey::generate()
            .expect("key")
            .jwks(),
    )
    .expect("JWKS");
    let jwks = jwks.to_str().expect("utf-8 path");
    let stderr = crate::common::serve_refused(
        &database,
        &["--jwks-file", jwks, "--insecure-plaintext"],
        &["ORDERLY_PAGE_TOKEN_SECRET", "ORDERLY_INSECURE_NO_AUTH"],
    );
    assert!(stderr.contains("--page-token-secret"), "{stderr}");
    // A secret too short to be a key is refused too, saying how long it must be.
    let stderr = crate::common::serve_refused(
        &database,
        &[
            "--jwks-file",
            jwks,
            "--insecure-plaintext",
            "--page-token-secret",
            "x",
        ],
        &["ORDERLY_PAGE_TOKEN_SECRET", "ORDERLY_INSECURE_NO_AUTH"],
    );
    assert!(stderr.contains("at least 32 bytes"), "{stderr}");

    let args = crate::common::serve_args("users", "127.0.0.1:0", &database, &[]);
    let served = crate::common::start(&args, "UserService").await;
    let (status, body) = crate::common::http_get(served.admin, "/readyz").await;
    assert_eq!(status, 200);
    assert!(body.contains("authentication is off"), "{body}");
}

#[tokio::test]
async fn serve_checks_tokens_against_a_jwks_url_fetched_at_start() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // A loopback identity provider publishing one key's JWKS.
    let key = orderly_kit::auth::signing::SigningKey::generate().expect("key");
    let jwks = key.jwks();
    let provider = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/.well-known/jwks.json",
        provider.local_addr().expect("addr")
    );
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = provider.accept().await {
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{jwks}",
                jwks.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    let data = tempfile::tempdir().expect("data dir");
    let database = format!("sqlite://{}", data.path().join("users.db").display());
    let args = [
        "serve",
        "--target",
        "users",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &database,
        "--jwks-url",
        &url,
        "--page-token-secret",
        "a-page-token-secret-of-32-bytes-or-more",
        "--insecure-plaintext",
    ];
    let served = crate::common::Orderly::start(&args).await;
    signs_up_and_reads_her_record_only_with_her_token(&served, |id| {
        key.token(&orderly_kit::auth::signing::TokenSpec {
            subject: id.to_owned(),
            roles: vec![],
            issuer: DEV_ISSUER.into(),
            audience: AUDIENCE.into(),
            ttl: std::time::Duration::from_secs(600),
        })
        .expect("token")
    })
    .await;
}

/// Against the users service of `orderly`: sign-up needs no token; reading the new record needs
/// one, and the token `sign` makes for her id is enough.
async fn signs_up_and_reads_her_record_only_with_her_token(
    orderly: &crate::common::Orderly,
    sign: impl Fn(&str) -> String,
) {
    let mut users = orderly.users().await;
    let user = users
        .create_user(CreateUserRequest {
            name: "Ada".into(),
            email: "ada@example.com".into(),
        })
        .await
        .expect("sign-up needs no token")
        .into_inner()
        .user
        .expect("user");
    let get = || GetUserRequest {
        id: user.id.clone(),
    };
    let refused = users.get_user(get()).await.expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut request = tonic::Request::new(get());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", sign(&user.id))
            .parse()
            .expect("header"),
    );
    users
        .get_user(request)
        .await
        .expect("her own record, with her token");
}
