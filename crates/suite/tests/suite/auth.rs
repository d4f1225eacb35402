//! Authentication and ownership over the whole suite with every service checking bearer tokens
//! against a JWKS: over gRPC for a unary and a streaming method, and over REST through the
//! gateway, which passes the caller's token on.

use std::time::Duration;

use orderly::orders::v1::{GetOrderRequest, ListOrdersRequest, WatchOrderRequest};
use orderly::users::v1::{GetUserRequest, ListUsersRequest};
use orderly_kit::auth::signing::{SigningKey, TokenSpec};
use orderly_kit::auth::{AUDIENCE, DEV_ISSUER};
use orderly_kit::http::client;
use orderly_testkit::stack::{PATIENCE, order_request, uuid_like};
use orderly_testkit::{Options, Stack, TestBackend};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

struct Authed {
    stack: Stack,
    key: SigningKey,
    _dir: tempfile::TempDir,
}

impl Authed {
    async fn start() -> Self {
        Self::start_limited(orderly_kit::rate::RateConfig::default()).await
    }

    async fn start_limited(rate: orderly_kit::rate::RateConfig) -> Self {
        let key = SigningKey::generate().expect("key");
        let dir = tempfile::tempdir().expect("temporary directory");
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, key.jwks()).expect("JWKS");
        let stack = Stack::start(Options {
            backend: TestBackend::Sqlite,
            jwks_file: Some(jwks),
            gateway: Some(Box::new(|_| {})),
            rate,
            ..Options::default()
        })
        .await
        .expect("SQLite is always available");
        Self {
            stack,
            key,
            _dir: dir,
        }
    }

    fn token(&self, subject: &str, admin: bool) -> String {
        self.key
            .token(&TokenSpec {
                subject: subject.into(),
                roles: if admin { vec!["admin".into()] } else { vec![] },
                issuer: DEV_ISSUER.into(),
                audience: AUDIENCE.into(),
                ttl: Duration::from_secs(600),
            })
            .expect("token")
    }
}

fn with<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    request
}

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// Asserts that `status` is a refusal with `code` and ErrorInfo reason `expected`.
#[track_caller]
fn assert_refused(status: &Status, code: Code, expected: &str) {
    assert_eq!(
        (status.code(), reason(status).as_str()),
        (code, expected),
        "{status:?}"
    );
}

#[tokio::test]
async fn users_read_only_their_own_record_and_admins_any() {
    let mut suite = Authed::start().await;
    // Sign-up is open.
    let alice = suite.stack.user().await;
    let bob = suite.stack.user().await;
    let (alice_token, admin) = (suite.token(&alice, false), suite.token("root", true));
    let users = &mut suite.stack.users;
    let get = |id: &str| GetUserRequest { id: id.into() };

    let missing = users
        .get_user(with(get(&alice), None))
        .await
        .expect_err("no token");
    assert_refused(&missing, Code::Unauthenticated, "TOKEN_MISSING");
    users
        .get_user(with(get(&alice), Some(&alice_token)))
        .await
        .expect("her own record");
    let other = users
        .get_user(with(get(&bob), Some(&alice_token)))
        .await
        .expect_err("another user's record");
    assert_refused(&other, Code::PermissionDenied, "NOT_OWNER");
    users
        .get_user(with(get(&bob), Some(&admin)))
        .await
        .expect("an admin reads anyone");
    let list = users
        .list_users(with(ListUsersRequest::default(), Some(&alice_token)))
        .await
        .expect_err("listing needs admin");
    assert_refused(&list, Code::PermissionDenied, "MISSING_ROLE");
}

#[tokio::test]
async fn an_order_for_another_user_is_refused_before_anything_is_stored() {
    let mut suite = Authed::start().await;
    let alice = suite.stack.user().await;
    let bob = suite.stack.user().await;
    let alice_token = suite.token(&alice, false);
    let admin = suite.token("root", true);

    let refused = suite
        .stack
        .orders
        .create_order(with(
            order_request(&bob, &uuid_like(), &[("BOOK", 1, 1000)]),
            Some(&alice_token),
        ))
        .await
        .expect_err("alice orders for bob");
    assert_refused(&refused, Code::PermissionDenied, "NOT_OWNER");
    let bobs = suite
        .stack
        .orders
        .list_orders(with(
            ListOrdersRequest {
                user_id: bob.clone(),
                ..Default::default()
            },
            Some(&admin),
        ))
        .await
        .expect("admin lists bob's orders")
        .into_inner();
    assert!(bobs.orders.is_empty(), "nothing stored for bob");
    assert_eq!(suite.stack.net_charged().await, 0, "nothing charged");

    // Her own order goes through: orders asks users about her with her own token.
    let order = suite
        .stack
        .orders
        .create_order(with(
            order_request(&alice, &uuid_like(), &[("BOOK", 1, 1000)]),
            Some(&alice_token),
        ))
        .await
        .expect("alice orders for herself")
        .into_inner()
        .order
        .expect("order");
    let bob_token = suite.token(&bob, false);
    let peek = suite
        .stack
        .orders
        .get_order(with(
            GetOrderRequest {
                id: order.id.clone(),
            },
            Some(&bob_token),
        ))
        .await
        .expect_err("bob reads alice's order");
    assert_eq!(peek.code(), Code::PermissionDenied);

    // The streaming method is checked like the unary ones.
    let watch = |token: Option<&str>| {
        with(
            WatchOrderRequest {
                id: order.id.clone(),
            },
            token,
        )
    };
    let anonymous = suite
        .stack
        .orders
        .watch_order(watch(None))
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let stranger = suite
        .stack
        .orders
        .watch_order(watch(Some(&bob_token)))
        .await
        .expect_err("bob watches alice's order");
    assert_eq!(stranger.code(), Code::PermissionDenied);
    let mut stream = suite
        .stack
        .orders
        .watch_order(watch(Some(&alice_token)))
        .await
        .expect("alice watches her order")
        .into_inner();
    let first = stream.message().await.expect("message").expect("order");
    assert_eq!(first.order.map(|o| o.id), Some(order.id));
}

#[tokio::test]
async fn the_gateway_passes_the_callers_token_on_and_answers_401_and_403() {
    let mut suite = Authed::start().await;
    let alice = suite.stack.user().await;
    let bob = suite.stack.user().await;
    let addr = suite.stack.gateway.expect("gateway");
    let get = |path: String, token: Option<String>| async move {
        let header = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = header
            .as_deref()
            .map(|h| vec![("Authorization", h)])
            .unwrap_or_default();
        client::request(addr, "GET", &path, &headers, b"", PATIENCE)
            .await
            .expect("the gateway answers")
    };
    let anonymous = get(format!("/v1/users/{alice}"), None).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    // Without a token, a route that needs one says so before it reads the input: not a 400 for
    // the body, which the document calls valid only with a token.
    let tokenless = client::request(addr, "POST", "/v1/orders", &[], b"{}", PATIENCE)
        .await
        .expect("the gateway answers");
    assert_eq!(tokenless.status, 401, "{}", tokenless.body);
    assert_eq!(
        tokenless.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    let stranger = get(format!("/v1/users/{alice}"), Some(suite.token(&bob, false))).await;
    assert_eq!(stranger.status, 403);
    let own = get(
        format!("/v1/users/{alice}"),
        Some(suite.token(&alice, false)),
    )
    .await;
    assert_eq!(own.status, 200, "{}", own.body);
}

#[tokio::test]
async fn a_burst_beyond_the_limit_is_refused_for_its_caller_only() {
    let mut suite = Authed::start_limited(orderly_kit::rate::RateConfig {
        rate_limit_per_second: 1,
        rate_limit_burst: 5,
        ..Default::default()
    })
    .await;
    let alice = suite.stack.user().await;
    let bob = suite.stack.user().await;
    let (alice_token, bob_token) = (suite.token(&alice, false), suite.token(&bob, false));
    let users = &mut suite.stack.users;
    let get = |id: &str, token: &str| with(GetUserRequest { id: id.into() }, Some(token));
    for _ in 0..5 {
        users
            .get_user(get(&alice, &alice_token))
            .await
            .expect("within the burst");
    }
    let limited = users
        .get_user(get(&alice, &alice_token))
        .await
        .expect_err("beyond the burst");
    assert_refused(&limited, Code::ResourceExhausted, "RATE_LIMITED");
    let wait = limited
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RetryInfo");
    assert!(wait <= Duration::from_secs(1), "{wait:?}");
    for _ in 0..5 {
        users
            .get_user(get(&bob, &bob_token))
            .await
            .expect("another caller keeps their allowance");
    }
}

#[tokio::test]
async fn the_gateway_refuses_bad_tokens_itself_and_limits_each_caller() {
    let mut suite = Authed::start_limited(orderly_kit::rate::RateConfig {
        rate_limit_per_second: 1,
        rate_limit_burst: 3,
        ..Default::default()
    })
    .await;
    let alice = suite.stack.user().await;
    let carol = suite.stack.user().await;
    let addr = suite.stack.gateway.expect("gateway");
    let send = |method: &'static str, path: String, token: String| async move {
        let header = format!("Bearer {token}");
        client::request(
            addr,
            method,
            &path,
            &[("Authorization", header.as_str())],
            b"",
            PATIENCE,
        )
        .await
        .expect("the gateway answers")
    };
    // Even a route open to anyone refuses a token that does not verify.
    let forged = format!("{}x", suite.token(&alice, false));
    let refused = send("POST", "/v1/users".into(), forged).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.header("www-authenticate").is_some());

    let alice_token = suite.token(&alice, false);
    for _ in 0..3 {
        let ok = send("GET", format!("/v1/users/{alice}"), alice_token.clone()).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
    }
    let limited = send("GET", format!("/v1/users/{alice}"), alice_token.clone()).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.header("ratelimit-limit"), Some("3"));
    assert_eq!(limited.header("ratelimit-remaining"), Some("0"));
    assert!(limited.header("retry-after").is_some());
    assert_eq!(limited.json().expect("problem")["reason"], "RATE_LIMITED");
    let carol_token = suite.token(&carol, false);
    let other = send("GET", format!("/v1/users/{carol}"), carol_token).await;
    assert_eq!(other.status, 200, "another caller keeps their allowance");
}

#[test]
fn the_openapi_document_declares_the_bearer_scheme_on_every_operation() {
    let document = orderly_gateway::openapi();
    let scheme = &document["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    let paths = document["paths"].as_object().expect("paths");
    let mut secured = 0;
    for (path, item) in paths.iter().filter(|(path, _)| path.starts_with("/v1/")) {
        for (method, operation) in item.as_object().expect("path item") {
            let security = operation["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} declares no security"));
            let bearer = serde_json::json!({"bearer": []});
            assert!(security.contains(&bearer), "{method} {path}: {security:?}");
            // Only sign-up and browsing the catalog may be called without a token.
            let optional = security.contains(&serde_json::json!({}));
            assert_eq!(
                optional,
                (path == "/v1/users" && method == "post")
                    || (path.starts_with("/v1/products") && method == "get"),
                "{method} {path}"
            );
            assert!(operation["responses"]["401"].is_object(), "{method} {path}");
            secured += 1;
        }
    }
    assert!(secured >= 8, "{secured} operations");
}

/// Every way a token can be wrong, against a gRPC unary call (GetUser), a gRPC streaming call
/// (WatchOrder) and a REST call through the gateway (GET /v1/users/{id}): each refused with the
/// right reason, and nothing in the reason says which check failed beyond it.
#[tokio::test]
async fn every_bad_token_is_refused_over_grpc_unary_and_streaming_and_over_rest() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let mut suite = Authed::start().await;
    let alice = suite.stack.user().await;
    let alice_token = suite.token(&alice, false);
    let order = suite
        .stack
        .orders
        .create_order(with(
            order_request(&alice, &uuid_like(), &[("BOOK", 1, 1000)]),
            Some(&alice_token),
        ))
        .await
        .expect("her order")
        .into_inner()
        .order
        .expect("order");
    let spec = |issuer: &str, audience: &str| TokenSpec {
        subject: alice.clone(),
        roles: vec![],
        issuer: issuer.into(),
        audience: audience.into(),
        ttl: Duration::from_secs(600),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let key = &suite.key;
    let claims =
        serde_json::json!({"sub": alice, "iss": DEV_ISSUER, "aud": AUDIENCE, "exp": now + 600});
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, key.kid())),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
    );
    orderly_kit::auth::crypto::install();
    let mut hs256 = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs256.kid = Some(key.kid().to_owned());
    let confused = jsonwebtoken::encode(
        &hs256,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key.jwks().as_bytes()),
    )
    .expect("forge");
    let stranger = SigningKey::generate().expect("key");
    let cases: Vec<(&str, Option<String>, Code, &str)> = vec![
        ("no token", None, Code::Unauthenticated, "TOKEN_MISSING"),
        (
            "expired",
            Some(
                key.token_at(&spec(DEV_ISSUER, AUDIENCE), now - 3600)
                    .expect("token"),
            ),
            Code::Unauthenticated,
            "TOKEN_EXPIRED",
        ),
        (
            "not yet valid",
            Some(
                key.token_at(&spec(DEV_ISSUER, AUDIENCE), now + 3600)
                    .expect("token"),
            ),
            Code::Unauthenticated,
            "TOKEN_INVALID",
        ),
        (
            "wrong issuer",
            Some(
                key.token(&spec("https://evil.test", AUDIENCE))
                    .expect("token"),
            ),
            Code::Unauthenticated,
            "TOKEN_INVALID",
        ),
        (
            "wrong audience",
            Some(key.token(&spec(DEV_ISSUER, "elsewhere")).expect("token")),
            Code::Unauthenticated,
            "TOKEN_INVALID",
        ),
        (
            "alg none",
            Some(alg_none),
            Code::Unauthenticated,
            "TOKEN_INVALID",
        ),
        (
            "HS256 keyed with the JWKS",
            Some(confused),
            Code::Unauthenticated,
            "TOKEN_INVALID",
        ),
        (
            "unknown kid",
            Some(stranger.token(&spec(DEV_ISSUER, AUDIENCE)).expect("token")),
            Code::Unauthenticated,
            "TOKEN_INVALID",
        ),
    ];
    let addr = suite.stack.gateway.expect("gateway");
    for (case, token, code, expected) in cases {
        let unary = suite
            .stack
            .users
            .get_user(with(GetUserRequest { id: alice.clone() }, token.as_deref()))
            .await
            .expect_err(case);
        assert_eq!(
            (unary.code(), reason(&unary)),
            (code, expected.to_owned()),
            "unary: {case}"
        );
        let streaming = suite
            .stack
            .orders
            .watch_order(with(
                WatchOrderRequest {
                    id: order.id.clone(),
                },
                token.as_deref(),
            ))
            .await
            .expect_err(case);
        assert_eq!(
            (streaming.code(), reason(&streaming)),
            (code, expected.to_owned()),
            "streaming: {case}"
        );
        let header = token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = header
            .as_deref()
            .map(|h| vec![("Authorization", h)])
            .unwrap_or_default();
        let rest = client::request(
            addr,
            "GET",
            &format!("/v1/users/{alice}"),
            &headers,
            b"",
            PATIENCE,
        )
        .await
        .expect("the gateway answers");
        assert_eq!(rest.status, 401, "REST: {case}: {}", rest.body);
        assert_eq!(
            rest.json().expect("problem")["reason"],
            expected,
            "REST: {case}"
        );
    }
    // Rotation: once the JWKS file lists the stranger's key, its tokens are good.
    let both = serde_json::json!({"keys": [
        serde_json::from_str::<serde_json::Value>(&key.jwks()).expect("JWKS")["keys"][0],
        serde_json::from_str::<serde_json::Value>(&stranger.jwks()).expect("JWKS")["keys"][0],
    ]});
    std::fs::write(suite._dir.path().join("jwks.json"), both.to_string()).expect("rotate");
    let rotated = stranger.token(&spec(DEV_ISSUER, AUDIENCE)).expect("token");
    suite
        .stack
        .users
        .get_user(with(GetUserRequest { id: alice.clone() }, Some(&rotated)))
        .await
        .expect("a key added to the JWKS file verifies without a restart");
}

/// Per-caller limits count the end caller at every hop: eight users placing orders (over REST and
/// gRPC) each within their own allowance are never refused, however many there are, and every
/// order settles (the catalog's commit is a settlement, limited against no one), while a ninth
/// user over the limit is refused on both; an anonymous flood spends the anonymous budget and no
/// user's.
#[tokio::test]
async fn many_users_within_their_limits_are_never_refused_while_one_over_it_is() {
    use orderly::orders::v1::OrderStatus;
    use orderly_testkit::rest::order_body;

    // Each order costs a user two catalog calls (pricing and reserving) and one of every other
    // hop: three orders each stay within a burst of six everywhere. Together the users make 48
    // catalog calls, eight times a burst, which counted as one caller would be refused.
    let mut suite = Authed::start_limited(orderly_kit::rate::RateConfig {
        rate_limit_per_second: 1,
        rate_limit_burst: 6,
        ..Default::default()
    })
    .await;
    let addr = suite.stack.gateway.expect("gateway");
    let mut users = Vec::new();
    for _ in 0..9 {
        let id = suite.stack.user().await;
        let token = suite.token(&id, false);
        users.push((id, token));
    }
    let greedy = users.pop().expect("a ninth user");

    let mut placing = tokio::task::JoinSet::new();
    for (id, token) in users.clone() {
        let mut orders = suite.stack.orders.clone();
        placing.spawn(async move {
            let bearer = format!("Bearer {token}");
            let mut placed = Vec::new();
            for n in 0..2 {
                let response = client::request_json(
                    addr,
                    "POST",
                    "/v1/orders",
                    &[
                        ("Authorization", bearer.as_str()),
                        ("Idempotency-Key", &format!("{id}-{n}")),
                    ],
                    &order_body(&id),
                    PATIENCE,
                )
                .await
                .expect("the gateway answers");
                assert_eq!(response.status, 201, "{}", response.body);
                let order = response.json().expect("order");
                placed.push(order["id"].as_str().expect("id").to_owned());
            }
            let order = orders
                .create_order(with(
                    order_request(&id, &uuid_like(), &[("BOOK", 1, 1000)]),
                    Some(&token),
                ))
                .await
                .unwrap_or_else(|status| panic!("a user within the limit was refused: {status:?}"))
                .into_inner()
                .order
                .expect("order");
            placed.push(order.id);
            placed
        });
    }
    // Meanwhile the ninth user goes over the limit on both protocols, and only they are refused.
    let greedy_bearer = format!("Bearer {}", greedy.1);
    let mut refused_rest = false;
    for _ in 0..20 {
        let response = client::request(
            addr,
            "GET",
            &format!("/v1/users/{}", greedy.0),
            &[("Authorization", greedy_bearer.as_str())],
            b"",
            PATIENCE,
        )
        .await
        .expect("the gateway answers");
        if response.status == 429 {
            assert_eq!(response.json().expect("problem")["reason"], "RATE_LIMITED");
            refused_rest = true;
            break;
        }
        assert_eq!(response.status, 200, "{}", response.body);
    }
    assert!(refused_rest, "the greedy user was never refused over REST");
    let mut refused_grpc = None;
    for _ in 0..20 {
        let listed = suite
            .stack
            .orders
            .list_orders(with(
                ListOrdersRequest {
                    user_id: greedy.0.clone(),
                    ..Default::default()
                },
                Some(&greedy.1),
            ))
            .await;
        if let Err(status) = listed {
            refused_grpc = Some(status);
            break;
        }
    }
    let refused_grpc = refused_grpc.expect("the greedy user was never refused over gRPC");
    assert_refused(&refused_grpc, Code::ResourceExhausted, "RATE_LIMITED");

    let mut placed = Vec::new();
    while let Some(orders) = placing.join_next().await {
        placed.extend(orders.expect("a user's orders"));
    }
    assert_eq!(placed.len(), 24);
    // Each user reads their own orders in one call, within what is left of their allowance.
    for (id, token) in &users {
        let listed = suite
            .stack
            .orders
            .list_orders(with(
                ListOrdersRequest {
                    user_id: id.clone(),
                    ..Default::default()
                },
                Some(token),
            ))
            .await
            .expect("their orders")
            .into_inner()
            .orders;
        assert_eq!(listed.len(), 3, "{listed:?}");
        for order in listed {
            assert!(placed.contains(&order.id));
            assert_eq!(order.status(), OrderStatus::Confirmed, "{order:?}");
        }
    }

    // An anonymous flood is refused once it has spent the anonymous allowance; a user's order
    // still goes through every hop.
    let (id, token) = {
        let id = suite.stack.user().await;
        let token = suite.token(&id, false);
        (id, token)
    };
    let mut flooded = false;
    for _ in 0..100 {
        let response = client::request(addr, "GET", "/v1/products/BOOK", &[], b"", PATIENCE)
            .await
            .expect("the gateway answers");
        if response.status == 429 {
            flooded = true;
            break;
        }
        assert_eq!(response.status, 200, "{}", response.body);
    }
    assert!(flooded, "the anonymous flood was never limited");
    let response = client::request_json(
        addr,
        "POST",
        "/v1/orders",
        &[
            ("Authorization", format!("Bearer {token}").as_str()),
            ("Idempotency-Key", "after-the-flood"),
        ],
        &order_body(&id),
        PATIENCE,
    )
    .await
    .expect("the gateway answers");
    assert_eq!(response.status, 201, "{}", response.body);
    assert_eq!(
        response.json().expect("order")["status"],
        "ORDER_STATUS_CONFIRMED"
    );
}

/// Two `authorization` headers are refused as an invalid token, even when one of them is good:
/// which one each reader would take is not defined.
#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let mut suite = Authed::start().await;
    let alice = suite.stack.user().await;
    let token = suite.token(&alice, false);
    let mut request = with(GetUserRequest { id: alice.clone() }, Some(&token));
    request.metadata_mut().append(
        "authorization",
        "Bearer someone-else".parse().expect("header"),
    );
    let refused = suite
        .stack
        .users
        .get_user(request)
        .await
        .expect_err("two tokens");
    assert_refused(&refused, Code::Unauthenticated, "TOKEN_INVALID");
    suite
        .stack
        .users
        .get_user(with(GetUserRequest { id: alice }, Some(&token)))
        .await
        .expect("one token is fine");
}
