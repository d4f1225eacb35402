//! The REST gateway in front of the whole stack ([`crate::stack`]) on fresh SQLite databases, every
//! service honouring the per-call fault headers; requests go over real HTTP. What the gateway's
//! own tests and the cross-service suite call it through.

use std::net::SocketAddr;

use crate::{Options, TestBackend};
use orderly_gateway::GatewayConfig;
use orderly_kit::http::client::{self, Response};
use serde_json::{Value, json};

pub use crate::stack::PATIENCE;

/// The services and the gateway, running in this test.
#[derive(Debug)]
pub struct Stack {
    /// Where the gateway listens.
    pub addr: SocketAddr,
    inner: crate::Stack,
}

impl Stack {
    /// Everything with the default gateway settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Everything (each service honouring the per-call fault metadata), the gateway's settings
    /// changed by `tune`.
    pub async fn start_with(tune: impl FnOnce(&mut GatewayConfig) + Send + 'static) -> Self {
        Self::start_with_options(Options {
            gateway: Some(Box::new(tune)),
            ..Options::default()
        })
        .await
    }

    /// Everything as `options` say (each service honouring the per-call fault metadata), with
    /// the gateway (default settings unless `options` tune them).
    pub async fn start_with_options(options: Options) -> Self {
        let inner = crate::Stack::start(Options {
            backend: TestBackend::Sqlite,
            fault_metadata: true,
            gateway: options.gateway.or_else(|| Some(Box::new(|_| {}))),
            ..options
        })
        .await
        .expect("SQLite is always available");
        let addr = inner.gateway.expect("a gateway was asked for");
        Self { addr, inner }
    }

    /// `method path` with `headers` and a raw `body`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        client::request(self.addr, method, path, headers, body, PATIENCE)
            .await
            .expect("the gateway answers")
    }

    /// `method path` with a JSON `body` and extra `headers`.
    pub async fn json(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Response {
        client::request_json(self.addr, method, path, headers, body, PATIENCE)
            .await
            .expect("the gateway answers")
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Response {
        self.send("GET", path, &[], b"").await
    }

    /// Creates a user with a fresh email; returns its JSON.
    pub async fn user(&self, name: &str) -> Value {
        let email = format!("{}-{}@example.com", name.to_lowercase(), fastrand::u64(..));
        let response = self
            .json(
                "POST",
                "/v1/users",
                &[],
                &json!({"name": name, "email": email}),
            )
            .await;
        assert_eq!(response.status, 201, "{}", response.body);
        body(&response)
    }

    /// Stops everything gracefully and checks that it all stopped cleanly.
    pub async fn stop(self) {
        self.inner.stop().await;
    }
}

/// A response's JSON body.
pub fn body(response: &Response) -> Value {
    response
        .json()
        .unwrap_or_else(|e| panic!("JSON body ({e}): {}", response.body))
}

/// A response's problem+json body, after checking its media type and that its `status` member is
/// the response's status.
pub fn problem(response: &Response) -> Value {
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json"),
        "{} {}",
        response.status,
        response.body
    );
    let problem = body(response);
    assert_eq!(problem["status"], response.status, "{problem}");
    assert!(problem["title"].is_string(), "{problem}");
    assert!(problem["detail"].is_string(), "{problem}");
    problem
}

/// The fields named by a problem's violations.
pub fn violated_fields(problem: &Value) -> Vec<String> {
    problem["violations"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|v| v["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// An order of two lamps (the test catalog's LAMP, at 19.99 EUR) for `user_id`, expecting 39.98 EUR.
pub fn order_body(user_id: &str) -> Value {
    json!({
        "userId": user_id,
        "items": [{"sku": "LAMP", "quantity": 2}],
        "expectedTotal": {"currencyCode": "EUR", "amountMinor": "3998"},
        "shippingAddress": {
            "recipient": "Ada Lovelace", "line1": "12 St James's Square", "city": "London",
            "postalCode": "SW1Y 4JH", "countryCode": "GB"
        }
    })
}
