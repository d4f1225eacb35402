//! Starts users, payments, delivery and orders on port 0 over fresh SQLite databases (each honouring
//! the per-call fault headers), and the gateway in front of them; requests go over real HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use orderly_gateway::GatewayConfig;
use orderly_kit::http::client::{self, Response};
use orderly_kit::server::config::ServerConfig;
use orderly_kit::server::faults::FaultConfig;
use orderly_kit::shutdown::Shutdown;
use orderly_orders::downstream::DownstreamUrls;
use orderly_testkit::db::{TestBackend, TestDatabase};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// How long one request may take before the test fails instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The services and the gateway, running in this test.
pub struct Stack {
    /// Where the gateway listens.
    pub addr: SocketAddr,
    stop: Shutdown,
    tasks: JoinSet<Result<(), String>>,
    _dbs: Vec<TestDatabase>,
}

async fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, url)
}

fn server() -> ServerConfig {
    ServerConfig {
        faults: FaultConfig {
            fault_metadata: true,
            ..FaultConfig::default()
        },
        ..ServerConfig::default()
    }
}

impl Stack {
    /// Everything with the default gateway settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Everything, the gateway's settings changed by `tune`.
    pub async fn start_with(tune: impl FnOnce(&mut GatewayConfig)) -> Self {
        let mut dbs = Vec::new();
        for _ in 0..4 {
            dbs.push(
                TestDatabase::create(TestBackend::Sqlite)
                    .await
                    .expect("SQLite is always available"),
            );
        }
        let stop = Shutdown::new();
        let mut tasks = JoinSet::new();
        let (users_listener, users_url) = listener().await;
        let (payments_listener, payments_url) = listener().await;
        let (delivery_listener, delivery_url) = listener().await;
        let (orders_listener, orders_url) = listener().await;
        let gateway_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = gateway_listener.local_addr().expect("addr");

        let users = orderly_users::UsersConfig {
            database_url: dbs[0].url().to_owned(),
            max_connections: 4,
            page_token_secret: "test".into(),
        };
        let run = orderly_users::serve(users, server(), users_listener, stop.wait());
        tasks.spawn(async move { run.await.map_err(|e| e.to_string()) });
        let payments = orderly_payments::PaymentsConfig {
            database_url: dbs[1].url().to_owned(),
            max_connections: 4,
        };
        let run = orderly_payments::serve(payments, server(), payments_listener, stop.wait());
        tasks.spawn(async move { run.await.map_err(|e| e.to_string()) });
        let delivery = orderly_delivery::DeliveryConfig {
            database_url: dbs[2].url().to_owned(),
            max_connections: 4,
        };
        let run = orderly_delivery::serve(delivery, server(), delivery_listener, stop.wait());
        tasks.spawn(async move { run.await.map_err(|e| e.to_string()) });
        let downstream = DownstreamUrls {
            users: users_url.clone(),
            payments: payments_url,
            delivery: delivery_url,
        };
        let mut orders = orderly_orders::OrdersConfig::new(dbs[3].url().to_owned(), downstream);
        orders.max_connections = 4;
        let run = orderly_orders::serve(orders, server(), orders_listener, stop.wait());
        tasks.spawn(async move { run.await.map_err(|e| e.to_string()) });

        let mut config = GatewayConfig::new(users_url, orders_url);
        tune(&mut config);
        let run = orderly_gateway::serve(config, gateway_listener, stop.wait());
        tasks.spawn(async move { run.await.map_err(|e| e.to_string()) });
        Self {
            addr,
            stop,
            tasks,
            _dbs: dbs,
        }
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
    pub async fn stop(mut self) {
        self.stop.trigger();
        while let Some(joined) = self.tasks.join_next().await {
            joined.expect("task").expect("stopped cleanly");
        }
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

/// An order of two books at 19.99 EUR for `user_id`.
pub fn order_body(user_id: &str) -> Value {
    json!({
        "userId": user_id,
        "items": [{"sku": "BOOK-1843", "quantity": 2, "unitPrice": {"currencyCode": "EUR", "amountMinor": "1999"}}],
        "shippingAddress": {
            "recipient": "Ada Lovelace", "line1": "12 St James's Square", "city": "London",
            "postalCode": "SW1Y 4JH", "countryCode": "GB"
        }
    })
}
