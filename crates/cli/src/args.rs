//! The command line: flags with `ORDERLY_*` environment fallbacks.

use std::net::SocketAddr;
use std::path::PathBuf;

use orderly_kit::config::ServerConfig;
use orderly_kit::telemetry::LogFormat;

/// Orderly: gRPC microservices for users, orders, payments and delivery.
#[derive(Debug, clap::Parser)]
#[command(name = "orderly", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,

    /// Log format on stdout.
    #[arg(long, global = true, env = "ORDERLY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run every service in one process, on embedded SQLite under --data-dir.
    Up(UpArgs),
    /// Run one service, e.g. in a container.
    Serve(ServeArgs),
}

/// A service `orderly serve` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// UserService (gRPC port 50051).
    Users,
}

impl Target {
    /// Where the target listens when `--listen` is not given: every interface, its own port.
    pub fn default_listen(self) -> SocketAddr {
        match self {
            Self::Users => SocketAddr::from(([0, 0, 0, 0], 50051)),
        }
    }
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

    /// `sqlite://path/to/file.db` or `postgres://user:password@host/db`. Default: sqlite://data/<target>.db.
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

    /// UserService's gRPC address.
    #[arg(long, env = "ORDERLY_USERS_LISTEN", default_value = "127.0.0.1:50051")]
    pub users_listen: SocketAddr,

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
