//! Running the `orderly` binary as a child process in tests: start it on port 0, learn its
//! addresses from its JSON log lines, signal it, and scrape its admin port.

#![allow(dead_code)]

pub mod shop;

/// Held exclusively by a test that times what happens under load, so that no other load test
/// runs beside it; shared by load tests that count outcomes but time nothing.
static ALONE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Waits until no other load test runs; the test runs alone while it holds the guard.
pub async fn alone() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    ALONE.write().await
}

/// Waits until no test that times its load runs; other tests holding this guard may run beside
/// (they load the machine, but only outcomes are counted, not how long calls take).
pub async fn untimed() -> tokio::sync::RwLockReadGuard<'static, ()> {
    ALONE.read().await
}

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use orderly::common::v1::{Address, Money};
use orderly::orders::v1::{CreateOrderRequest, OrderLine};
use orderly::users::v1::UserServiceClient;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tonic::transport::Channel;

/// How long any one wait in these tests may take before the test fails instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running `orderly` process and its log lines.
pub struct Orderly {
    pub child: Child,
    /// Where the first of the awaited services listens.
    pub addr: SocketAddr,
    /// Where each awaited service listens, by its short name (`UserService`).
    pub addrs: HashMap<String, SocketAddr>,
    /// Where the admin port (`/metrics`, `/healthz`, `/readyz`) listens.
    pub admin: SocketAddr,
    pub logs: mpsc::UnboundedReceiver<Value>,
    /// The certificates its services speak mutual TLS with: `up`'s own under its data directory
    /// unless `--insecure-plaintext`, or `serve --tls-dir`'s.
    pub tls_dir: Option<std::path::PathBuf>,
    /// The service `addr` is.
    first: String,
}

/// The certificates `orderly ARGS` serves with, as [`Orderly::tls_dir`].
fn tls_dir_of(args: &[&str]) -> Option<std::path::PathBuf> {
    let value = |flag: &str| {
        args.iter()
            .position(|a| *a == flag)
            .and_then(|i| args.get(i + 1))
            .map(std::path::PathBuf::from)
    };
    if let Some(dir) = value("--tls-dir") {
        return Some(dir);
    }
    (args.first() == Some(&"up") && !args.contains(&"--insecure-plaintext")).then(|| {
        value("--data-dir")
            .unwrap_or_else(|| "data".into())
            .join("tls")
    })
}

/// The certificate name of a service listed by its short name (`UserService`), and whose
/// certificate a client calling it presents (one it accepts).
fn names_of(service: &str) -> (&'static str, &'static str) {
    match service {
        "UserService" => ("users", "gateway"),
        "OrderService" => ("orders", "gateway"),
        "PaymentService" => ("payments", "orders"),
        "DeliveryService" => ("delivery", "orders"),
        other => panic!("no certificate for {other}"),
    }
}

/// Everything `orderly up` serves, as [`Orderly::start_serving`] names it: once each of these
/// has logged that it listens, every server has probed its database and `/readyz` answers.
pub const EVERYTHING_UP_SERVES: [&str; 6] = [
    "UserService",
    "OrderService",
    "PaymentService",
    "DeliveryService",
    "CatalogService",
    "gateway",
];

impl Orderly {
    /// Starts `orderly ARGS` and waits until it logs that it listens for UserService.
    pub async fn start(args: &[&str]) -> Self {
        Self::start_serving(args, &["UserService"]).await
    }

    /// Starts `orderly ARGS` and waits until every one of `services` listens.
    pub async fn start_serving(args: &[&str], services: &[&str]) -> Self {
        Self::start_with_env(args, services, &[]).await
    }

    /// Like [`Orderly::start_serving`], with extra environment variables.
    pub async fn start_with_env(args: &[&str], services: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_orderly"))
            .args(args)
            .envs(env.iter().copied())
            .args(["--admin-listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info,orderly_kit::server::faults=debug")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn orderly");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, logs) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    let _ = sender.send(value);
                }
            }
        });
        let mut process = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            addrs: HashMap::new(),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            logs,
            tls_dir: tls_dir_of(args),
            first: String::new(),
        };
        let mut admin = None;
        while admin.is_none() || services.iter().any(|s| !process.addrs.contains_key(*s)) {
            let line = process.next_log().await;
            let addr: Option<SocketAddr> = line["addr"].as_str().and_then(|a| a.parse().ok());
            match line["message"].as_str() {
                Some("admin listening") => admin = addr,
                Some("gateway listening") => {
                    process
                        .addrs
                        .insert("gateway".to_owned(), addr.expect("addr in log"));
                }
                Some("listening") => {
                    let served = line["services"].as_str().unwrap_or_default();
                    for service in services
                        .iter()
                        .filter(|s| served.contains(&format!(".{s}")))
                    {
                        process
                            .addrs
                            .insert(service.to_string(), addr.expect("addr in log"));
                    }
                }
                _ => {}
            }
        }
        process.admin = admin.expect("admin addr");
        process.addr = process.addrs[services[0]];
        process.first = services[0].to_owned();
        process
    }

    /// The next log line.
    pub async fn next_log(&mut self) -> Value {
        tokio::time::timeout(PATIENCE, self.logs.recv())
            .await
            .expect("a log line in time")
            .expect("orderly exited")
    }

    /// Waits for the log line whose message is `message`.
    pub async fn log(&mut self, message: &str) -> Value {
        loop {
            let line = self.next_log().await;
            if line["message"] == message {
                return line;
            }
        }
    }

    /// The warnings and errors logged so far (and not yet read), for a failing assertion to show.
    pub fn warnings(&mut self) -> Vec<Value> {
        std::iter::from_fn(|| self.logs.try_recv().ok())
            .filter(|line| matches!(line["level"].as_str(), Some("WARN" | "ERROR")))
            .collect()
    }

    pub fn signal(&self, signal: Signal) {
        let pid = self.child.id().expect("running") as i32;
        kill(Pid::from_raw(pid), signal).expect("signal");
    }

    pub async fn exit(&mut self) -> ExitStatus {
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("exit in time")
            .expect("wait")
    }

    /// A connected channel to the first awaited service, over mutual TLS when it speaks it.
    pub async fn channel(&self) -> Channel {
        self.channel_to(&self.first.clone()).await
    }

    /// A connected channel to the awaited service `service` (e.g. `OrderService`), over mutual
    /// TLS when it speaks it (as a service it accepts calls from).
    pub async fn channel_to(&self, service: &str) -> Channel {
        let (to, from) = names_of(service);
        let url = format!("http://{}", self.addrs[service]);
        orderly_testkit::stack::client_channel(&url, self.tls_dir.as_deref(), from, to).await
    }

    pub async fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(self.channel().await)
    }
}

/// `GET path` from `addr`; the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = orderly_kit::http::client::get(addr, path)
        .await
        .expect("GET");
    (response.status, response.body)
}

/// The process's `/metrics`, parsed by a Prometheus text-format parser.
pub async fn scrape(admin: SocketAddr) -> prometheus_parse::Scrape {
    let (status, body) = http_get(admin, "/metrics").await;
    assert_eq!(status, 200, "GET /metrics");
    prometheus_parse::Scrape::parse(body.lines().map(|line| Ok(line.to_owned())))
        .expect("valid Prometheus text")
}

/// The sum over the samples of `name` whose labels include `labels`: a counter's or gauge's value,
/// a histogram's count of observations.
pub fn metric(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().map(|b| b.count).fold(0.0, f64::max)
            }
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

/// A port that was free a moment ago, for a server that must come back on the same address.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The arguments of `orderly serve --target TARGET --listen LISTEN --database-url DATABASE EXTRA...`.
pub fn serve_args(target: &str, listen: &str, database: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "serve",
        "--target",
        target,
        "--listen",
        listen,
        "--database-url",
        database,
        "--insecure-no-auth",
        "--insecure-plaintext",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// Runs `orderly COMMAND FLAG PATH EXTRA...` to its end, expecting success; returns what it
/// printed, trimmed.
pub fn run_orderly(command: &str, flag: &str, path: &std::path::Path, extra: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orderly"))
        .args([command, flag])
        .arg(path)
        .args(extra)
        .output()
        .expect("run orderly");
    assert!(
        output.status.success(),
        "orderly {command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Runs `orderly serve --target users` over `database` with `extra` flags and without the
/// environment variables `unset`, expecting it to refuse to start; returns what it said.
pub fn serve_refused(database: &str, extra: &[&str], unset: &[&str]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_orderly"));
    command
        .args(["serve", "--target", "users", "--listen", "127.0.0.1:0"])
        .args(["--admin-listen", "127.0.0.1:0", "--database-url", database])
        .args(extra);
    for name in unset {
        command.env_remove(name);
    }
    let output = command.output().expect("run orderly serve");
    assert!(!output.status.success(), "started with {extra:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Starts `orderly ARGS` and waits until `service` listens.
pub async fn start(args: &[String], service: &str) -> Orderly {
    Orderly::start_serving(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[service],
    )
    .await
}

/// The arguments of `orderly up` over `dir` with every port chosen by the system, accepting
/// every caller (`--insecure-no-auth`; see [`secured_up_args`]).
pub fn up_args(dir: &str) -> Vec<String> {
    let mut args = secured_up_args(dir);
    args.push("--insecure-no-auth".to_owned());
    args
}

/// The arguments of `orderly up` over `dir` with every port chosen by the system, checking
/// tokens signed by the development key under `dir`.
pub fn secured_up_args(dir: &str) -> Vec<String> {
    let mut args = vec!["up".to_owned(), "--data-dir".to_owned(), dir.to_owned()];
    for flag in [
        "--users-listen",
        "--orders-listen",
        "--payments-listen",
        "--delivery-listen",
        "--catalog-listen",
        "--gateway-listen",
    ] {
        args.extend([flag.to_owned(), "127.0.0.1:0".to_owned()]);
    }
    args
}

/// The total of [`order_request`]'s order at the demo catalog's price (two BOOK-1 at 19.99 EUR).
pub const ORDER_TOTAL: i64 = 2 * 1999;

/// A CreateOrder of two books of the demo catalog (BOOK-1 at 19.99 EUR) for `user_id` under `key`,
/// expecting [`ORDER_TOTAL`].
pub fn order_request(user_id: &str, key: &str) -> CreateOrderRequest {
    CreateOrderRequest {
        user_id: user_id.to_owned(),
        items: vec![OrderLine {
            sku: "BOOK-1".into(),
            quantity: 2,
        }],
        expected_total: Some(Money {
            currency_code: "EUR".into(),
            amount_minor: ORDER_TOTAL,
        }),
        shipping_address: Some(Address {
            recipient: "Ada".into(),
            line1: "1 Way".into(),
            line2: String::new(),
            city: "Oslo".into(),
            postal_code: "0150".into(),
            country_code: "NO".into(),
        }),
        idempotency_key: key.to_owned(),
    }
}
