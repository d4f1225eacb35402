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
    #[arg(long, value_delimiter = ',', default_values_t = orderly_app::registry::SERVICES.map(|service| service.name.to_owned()))]
    pub services: Vec<String>,

    /// Instead of the services', write a certificate for each of these programs outside the suite
    /// (a shop's backend, a script), signed by the CA already in --out: `<name>.pem` and
    /// `<name>.key`, naming `spiffe://orderly.local/client/<name>`. They may call what the gateway
    /// may, with a user's token; never what only services may.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["services", "new_ca"])]
    pub client: Vec<String>,
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

/// Everything that shapes the services' work beyond where they listen, for `serve` and `up`.
#[derive(Debug, Clone, clap::Args)]
pub struct Tuning {
    /// Each service's own flags (the registry's).
    #[command(flatten)]
    pub services: orderly_app::flags::ServiceFlags,

    /// How services protect the calls they make to each other.
    #[command(flatten)]
    pub calls: orderly_kit::client::downstream::CallArgs,

    /// Secret that signs page tokens; every replica of a service must share it. `serve` needs one
    /// for users and orders (unless --insecure-no-auth); `up` makes one under its data directory.
    #[arg(long, env = "ORDERLY_PAGE_TOKEN_SECRET", hide_env_values = true)]
    pub page_token_secret: Option<orderly_kit::secret::Secret>,

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
    pub target: orderly_app::flags::Target,

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
    pub peers: orderly_app::flags::PeerFlags,

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

    /// Where each service listens.
    #[command(flatten)]
    pub listen: orderly_app::flags::ListenFlags,

    /// The most database connections each service opens.
    #[arg(long, env = "ORDERLY_DB_MAX_CONNECTIONS", default_value_t = 8)]
    pub max_connections: u32,

    /// How the services work.
    #[command(flatten)]
    pub tuning: Tuning,
}
