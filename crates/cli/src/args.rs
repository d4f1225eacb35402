//! The command line: flags with `ORDERLY_*` environment fallbacks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use orderly_kit::observe::telemetry::LogFormat;
use orderly_kit::server::config::ServerConfig;

/// Orderly: gRPC microservices for users, orders, payments and delivery.
#[derive(Debug, clap::Parser)]
#[command(name = "orderly", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,

    /// Log format on stdout. Default: pretty on a terminal, JSON lines otherwise.
    #[arg(long, global = true, env = "ORDERLY_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run every service in one process, on embedded SQLite under --data-dir.
    Up(UpArgs),
    /// Run one service, e.g. in a container.
    Serve(ServeArgs),
    /// Exit 0 when a process's admin port says it is ready (for container health checks).
    Check(CheckArgs),
}

/// A service `orderly serve` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// UserService (gRPC port 50051).
    Users,
    /// OrderService (gRPC port 50052).
    Orders,
    /// PaymentService (gRPC port 50053).
    Payments,
    /// DeliveryService (gRPC port 50054).
    Delivery,
    /// The REST/JSON gateway (HTTP port 8080).
    Gateway,
}

impl Target {
    /// The target's gRPC port.
    pub fn port(self) -> u16 {
        match self {
            Self::Users => 50051,
            Self::Orders => 50052,
            Self::Payments => 50053,
            Self::Delivery => 50054,
            Self::Gateway => 8080,
        }
    }

    /// Where the target listens when `--listen` is not given: every interface, its own port.
    pub fn default_listen(self) -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0], self.port()))
    }

    /// The target's name, as in `--target`, and its default database file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Orders => "orders",
            Self::Payments => "payments",
            Self::Delivery => "delivery",
            Self::Gateway => "gateway",
        }
    }
}

/// Where the services a service calls are (for `serve`; `up` wires them itself).
#[derive(Debug, Clone, clap::Args)]
pub struct OrdersArgs {
    /// UserService's address, for `--target orders` and `--target gateway`.
    #[arg(
        long,
        env = "ORDERLY_USERS_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub users_url: String,

    /// OrderService's address, for `--target gateway`.
    #[arg(
        long,
        env = "ORDERLY_ORDERS_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub orders_url: String,

    /// PaymentService's address, for `--target orders`.
    #[arg(
        long,
        env = "ORDERLY_PAYMENTS_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    pub payments_url: String,

    /// DeliveryService's address, for `--target orders`.
    #[arg(
        long,
        env = "ORDERLY_DELIVERY_URL",
        default_value = "http://127.0.0.1:50054"
    )]
    pub delivery_url: String,

    /// How orders times and protects its work.
    #[command(flatten)]
    pub tuning: OrdersTuning,
}

/// How the orders service times and protects its work, for `serve --target orders` and `up` alike.
#[derive(Debug, Clone, clap::Args)]
pub struct OrdersTuning {
    /// The most a CreateOrder's payment and delivery may take together.
    #[arg(long, env = "ORDERLY_ORDER_BUDGET", default_value = "5s", value_parser = humantime::parse_duration)]
    pub order_budget: Duration,

    /// How long an order's work may stand still before the recovery sweep settles it.
    #[arg(long, env = "ORDERLY_RECOVER_AFTER", default_value = "60s", value_parser = humantime::parse_duration)]
    pub recover_after: Duration,

    /// How often the recovery sweep runs.
    #[arg(long, env = "ORDERLY_SWEEP_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub sweep_interval: Duration,

    /// How long a downstream's circuit breaker stays open before it lets probe calls through.
    #[arg(long, env = "ORDERLY_BREAKER_COOL_DOWN", default_value = "5s", value_parser = humantime::parse_duration)]
    pub breaker_cool_down: Duration,

    /// Fewest calls in a breaker's 10 s window before its failure rate can open it.
    #[arg(long, env = "ORDERLY_BREAKER_MINIMUM_CALLS", default_value_t = 50)]
    pub breaker_minimum_calls: usize,

    /// Share of calls, 0 to 1, that must fail (after retries) within the window to open a breaker.
    #[arg(long, env = "ORDERLY_BREAKER_FAILURE_RATE", default_value_t = 0.5)]
    pub breaker_failure_rate: f64,

    /// Attempts per downstream call, the first included (retries only where safe).
    #[arg(long, env = "ORDERLY_RETRY_MAX_ATTEMPTS", default_value_t = 3)]
    pub retry_max_attempts: u32,
}

impl OrdersTuning {
    /// Applies the breaker and retry settings to the protection of a service's calls.
    pub fn protect(&self, calls: &mut orderly_kit::client::downstream::DownstreamConfig) {
        calls.breaker.cool_down = self.breaker_cool_down;
        calls.breaker.minimum_calls = self.breaker_minimum_calls;
        calls.breaker.failure_rate = self.breaker_failure_rate;
        calls.backoff.max_attempts = self.retry_max_attempts.max(1);
    }
}

/// How the gateway treats requests, for `serve --target gateway` and `up` alike.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayTuning {
    /// How long a REST request may take, service calls and retries included.
    #[arg(long, env = "ORDERLY_REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// The largest REST request body accepted, in bytes (larger ones get 413).
    #[arg(long, env = "ORDERLY_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
}

/// Flags of `orderly check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The admin address of the process to check.
    #[arg(long, env = "ORDERLY_CHECK_ADDR", default_value = "127.0.0.1:9090")]
    pub admin: SocketAddr,

    /// The path that answers 200 when ready.
    #[arg(long, default_value = "/readyz")]
    pub path: String,
}

/// Flags of `orderly serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Which service to run.
    #[arg(long, env = "ORDERLY_TARGET", value_enum)]
    pub target: Target,

    /// Address to listen on; port 0 picks a free port. Default: 0.0.0.0 and the target's port.
    #[arg(long, env = "ORDERLY_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// The admin HTTP address (`/metrics`, `/healthz`, `/readyz`); port 0 picks a free port.
    #[arg(long, env = "ORDERLY_ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    pub admin_listen: SocketAddr,

    /// `sqlite://path/to/file.db` or `postgres://user:password@host/db`. Default: `sqlite://data/<target>.db`.
    #[arg(long, env = "ORDERLY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// The most database connections to open.
    #[arg(long, env = "ORDERLY_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub max_connections: u32,

    /// Secret that signs page tokens; every replica of a service must share it.
    #[arg(
        long,
        env = "ORDERLY_PAGE_TOKEN_SECRET",
        default_value = "orderly-development-secret",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub page_token_secret: String,

    /// Orders settings.
    #[command(flatten)]
    pub orders: OrdersArgs,

    /// Gateway settings.
    #[command(flatten)]
    pub gateway: GatewayTuning,

    /// Server settings shared by every service.
    #[command(flatten)]
    pub server: ServerConfig,
}

/// Flags of `orderly up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Where the services keep their SQLite databases.
    #[arg(long, env = "ORDERLY_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// The admin HTTP address (`/metrics`, `/healthz`, `/readyz`) of the whole process.
    #[arg(long, env = "ORDERLY_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,

    /// UserService's gRPC address.
    #[arg(long, env = "ORDERLY_USERS_LISTEN", default_value = "127.0.0.1:50051")]
    pub users_listen: SocketAddr,

    /// OrderService's gRPC address.
    #[arg(long, env = "ORDERLY_ORDERS_LISTEN", default_value = "127.0.0.1:50052")]
    pub orders_listen: SocketAddr,

    /// PaymentService's gRPC address.
    #[arg(
        long,
        env = "ORDERLY_PAYMENTS_LISTEN",
        default_value = "127.0.0.1:50053"
    )]
    pub payments_listen: SocketAddr,

    /// DeliveryService's gRPC address.
    #[arg(
        long,
        env = "ORDERLY_DELIVERY_LISTEN",
        default_value = "127.0.0.1:50054"
    )]
    pub delivery_listen: SocketAddr,

    /// The REST/JSON gateway's HTTP address.
    #[arg(long, env = "ORDERLY_GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub gateway_listen: SocketAddr,

    /// How orders times and protects its work.
    #[command(flatten)]
    pub orders: OrdersTuning,

    /// How the gateway treats requests.
    #[command(flatten)]
    pub gateway: GatewayTuning,

    /// The most database connections each service opens.
    #[arg(long, env = "ORDERLY_DB_MAX_CONNECTIONS", default_value_t = 8)]
    pub max_connections: u32,

    /// Secret that signs page tokens.
    #[arg(
        long,
        env = "ORDERLY_PAGE_TOKEN_SECRET",
        default_value = "orderly-development-secret",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub page_token_secret: String,

    /// Server settings shared by every service.
    #[command(flatten)]
    pub server: ServerConfig,
}
