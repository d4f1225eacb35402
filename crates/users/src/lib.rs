//! UserService: the people who place orders.
//!
//! - [`model`]: validated names, emails and ids;
//! - [`store`]: the users table (SQLite or PostgreSQL) and its migrations;
//! - [`service`]: the gRPC implementation;
//! - [`error`]: what can go wrong, and its gRPC status;
//! - [`access`]: who may call which method.
//!
//! [`serve`] runs the service on a listener the caller bound, with the kit's health checks,
//! reflection and graceful shutdown, until the shutdown future resolves.

// Every dependency is used (test builds excepted: they see the dev-dependencies too).
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod access;
pub mod error;
pub mod model;
pub mod service;
pub mod store;

use orderly::users::v1::UserServiceServer;
use orderly_kit::db::DatabaseConfig;
use orderly_kit::declare::Launch;
use orderly_kit::pagination::PageTokens;
use orderly_kit::server::config::ServerConfig;
use tokio::net::TcpListener;

pub use service::Users;
pub use store::UserStore;

/// What the users service needs besides the common server settings.
#[derive(Debug, Clone)]
pub struct UsersConfig {
    /// Its database (`sqlite://path/to/users.db` or `postgres://...`).
    pub database: DatabaseConfig,
    /// The secret that signs page tokens; replicas must share it.
    pub page_token_secret: orderly_kit::secret::Secret,
    /// Whether only admins may create users (when tokens are checked).
    pub closed_signup: bool,
}

pub use orderly_kit::server::StartError;

/// The users service's own flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UsersFlags {
    /// Sign-up only by admins: CreateUser then needs a token with the `admin` role (when tokens
    /// are checked).
    #[arg(long, env = "ORDERLY_CLOSED_SIGNUP")]
    pub closed_signup: bool,
}

/// UserService's declaration: what the application's builder starts.
#[derive(Debug, Clone, Copy)]
pub struct UsersService;

impl orderly_kit::declare::Service for UsersService {
    const NAME: &'static str = "users";
    const TITLE: &'static str = orderly::users::v1::user_service_methods::SERVICE;
    const PORT: u16 = 50051;
    const SIGNS_PAGES: bool = true;

    type Flags = UsersFlags;
    type Config = UsersConfig;
    type Error = StartError;

    fn configure(flags: UsersFlags, launch: &Launch) -> Result<UsersConfig, StartError> {
        Ok(UsersConfig {
            database: launch.database.clone(),
            page_token_secret: launch.page_token_secret.clone(),
            closed_signup: flags.closed_signup,
        })
    }

    async fn run(config: UsersConfig, launch: Launch) -> Result<(), StartError> {
        let db = launch
            .open_database(&config.database, store::MIGRATIONS)
            .await?;
        let users = Users::new(
            UserStore::new(db.clone()),
            PageTokens::new(config.page_token_secret.expose()),
        );
        let service = orderly_kit::tune_service!(
            UserServiceServer::new(users),
            launch.server,
            access::rules(config.closed_signup)
        )?;
        let server = launch
            .grpc_server(orderly::FILE_DESCRIPTOR_SET)?
            .add_service(service);
        launch.serve_grpc(db, server).await
    }
}

/// Opens the database, applies migrations, and serves UserService on `listener` until `shutdown`
/// resolves; then drains and stops gracefully.
pub async fn serve(
    config: UsersConfig,
    server: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    Launch::serve_alone::<UsersService>(config, server, listener, shutdown).await
}
