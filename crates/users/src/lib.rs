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
use orderly_kit::pagination::PageTokens;
use orderly_kit::server::config::ServerConfig;
use orderly_kit::server::{Bootstrap, run_with_database};
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

/// Opens the database, applies migrations, and serves UserService on `listener` until `shutdown`
/// resolves; then drains and stops gracefully.
pub async fn serve(
    config: UsersConfig,
    server: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let service = Bootstrap {
        name: "users",
        database: config.database,
        migrations: store::MIGRATIONS,
        descriptor_set: orderly::FILE_DESCRIPTOR_SET,
    };
    let server_config = server.clone();
    run_with_database(service, server, listener, shutdown, |db| {
        let users = Users::new(
            UserStore::new(db),
            PageTokens::new(config.page_token_secret.expose()),
        );
        orderly_kit::tune_service!(
            UserServiceServer::new(users),
            server_config,
            access::rules(config.closed_signup)
        )
    })
    .await
}
