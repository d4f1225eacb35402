//! The command line: flags with `ORDERLY_*` environment fallbacks.

use std::net::SocketAddr;
use std::path::PathBuf;

use orderly_kit::observe::telemetry::LogFormat;
use orderly_kit::server::config::ServerConfig;

/// Orderly: gRPC microservices for users, orders, payments, delivery and the catalog.
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
    /// Drive load against a running suite and summarise what it saw.
    Bench(crate::bench::BenchArgs),
    /// Print a bearer token signed by the development key under --data-dir (made if missing).
    Token(TokenArgs),
    /// Write a CA and one mutual-TLS certificate per service into a directory (the CA already
    /// there is kept and signs the new certificates: run it again to rotate them).
    Certs(CertsArgs),
}

/// Flags of `orderly certs`.
#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// The directory to write `ca.pem`, `ca.key` and `<service>.pem`/`<service>.key` into.
    #[arg(long)]
    pub out: PathBuf,

    /// How long the service certificates are valid.
    #[arg(long, default_value = "24h")]
    pub lifetime: humantime::Duration,

    /// Make a new CA even if the directory has one (services holding certificates of the old CA
    /// then refuse the new ones, and the other way round).
    #[arg(long)]
    pub new_ca: bool,

    /// The services to write certificates for (all of them by default).
    #[arg(long, value_delimiter = ',', default_values_t = orderly_kit::tls::SERVICES.map(String::from))]
    pub services: Vec<String>,
}

/// Flags of `orderly token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The token's subject: the id of the user it speaks for.
    #[arg(long)]
    pub sub: String,

    /// Give the token the `admin` role.
    #[arg(long)]
    pub admin: bool,

    /// How long the token is valid.
    #[arg(long, default_value = "1h")]
    pub ttl: humantime::Duration,

    /// The data directory of `orderly up`, whose `auth/` holds the development key.
    #[arg(long, env = "ORDERLY_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// The token's issuer (`iss`).
    #[arg(long, env = "ORDERLY_JWT_ISSUER", default_value = orderly_kit::auth::DEV_ISSUER)]
    pub issuer: String,

    /// The token's audience (`aud`).
    #[arg(long, env = "ORDERLY_JWT_AUDIENCE", default_value = orderly_kit::auth::AUDIENCE)]
    pub audience: String,
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
    /// CatalogService (gRPC port 50055).
    Catalog,
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
            Self::Catalog => 50055,
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
            Self::Catalog => "catalog",
            Self::Gateway => "gateway",
        }
    }
}

/// Where the services a service calls are (for `serve`; `up` wires them itself).
#[derive(Debug, Clone, clap::Args)]
pub struct PeerUrls {
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

    /// CatalogService's address, for `--target orders` and `--target gateway`.
    #[arg(
        long,
        env = "ORDERLY_CATALOG_URL",
        default_value = "http://127.0.0.1:50055"
    )]
    pub catalog_url: String,
}

/// How the gateway treats requests, for `serve --target gateway` and `up` alike; the defaults are
/// the gateway crate's.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayTuning {
    /// How long a REST request may take, service calls and retries included.
    #[arg(long, env = "ORDERLY_REQUEST_TIMEOUT", default_value_t = orderly_gateway::DEFAULT_REQUEST_TIMEOUT.into())]
    pub request_timeout: humantime::Duration,

    /// The largest REST request body accepted, in bytes (larger ones get 413).
    #[arg(long, env = "ORDERLY_MAX_BODY_BYTES", default_value_t = orderly_gateway::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
}

/// Everything that shapes the services' work beyond where they listen, for `serve` and `up`.
#[derive(Debug, Clone, clap::Args)]
pub struct Tuning {
    /// How orders times its work.
    #[command(flatten)]
    pub orders: orderly_orders::OrdersArgs,

    /// How the catalog keeps its stock.
    #[command(flatten)]
    pub catalog: orderly_catalog::CatalogArgs,

    /// How orders and the gateway protect their calls.
    #[command(flatten)]
    pub calls: orderly_kit::client::downstream::CallArgs,

    /// How the gateway treats requests.
    #[command(flatten)]
    pub gateway: GatewayTuning,

    /// Secret that signs page tokens; every replica of a service must share it. `serve` needs one
    /// for users and orders (unless --insecure-no-auth); `up` makes one under its data directory.
    #[arg(long, env = "ORDERLY_PAGE_TOKEN_SECRET", hide_env_values = true)]
    pub page_token_secret: Option<orderly_kit::secret::Secret>,

    /// Sign-up only by admins: CreateUser then needs a token with the `admin` role (when tokens
    /// are checked).
    #[arg(long, env = "ORDERLY_CLOSED_SIGNUP")]
    pub closed_signup: bool,

    /// Server settings shared by every service.
    #[command(flatten)]
    pub server: ServerConfig,
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

    /// The admin HTTP address (`/metrics`, `/healthz`, `/readyz`); port 0 picks a free port. It
    /// answers anyone who reaches it, so by default only this machine: a container whose scraper
    /// and probes come from outside sets `0.0.0.0:9090` (the image, compose and Kubernetes do).
    #[arg(long, env = "ORDERLY_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,

    /// `sqlite://path/to/file.db` or `postgres://user:password@host/db`. Default: `sqlite://data/<target>.db`.
    #[arg(long, env = "ORDERLY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// The most database connections to open.
    #[arg(long, env = "ORDERLY_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub max_connections: u32,

    /// Where the services it calls are.
    #[command(flatten)]
    pub peers: PeerUrls,

    /// How the service works.
    #[command(flatten)]
    pub tuning: Tuning,
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

    /// CatalogService's gRPC address.
    #[arg(
        long,
        env = "ORDERLY_CATALOG_LISTEN",
        default_value = "127.0.0.1:50055"
    )]
    pub catalog_listen: SocketAddr,

    /// The REST/JSON gateway's HTTP address.
    #[arg(long, env = "ORDERLY_GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub gateway_listen: SocketAddr,

    /// Start with an empty catalog instead of the demo products.
    #[arg(long, env = "ORDERLY_EMPTY_CATALOG")]
    pub empty_catalog: bool,

    /// The most database connections each service opens.
    #[arg(long, env = "ORDERLY_DB_MAX_CONNECTIONS", default_value_t = 8)]
    pub max_connections: u32,

    /// How the services work.
    #[command(flatten)]
    pub tuning: Tuning,
}
