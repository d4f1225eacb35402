//! UserService: the people who place orders.
//!
//! - [`model`]: validated names, emails and ids;
//! - [`store`]: the users table (SQLite or PostgreSQL) and its migrations;
//! - [`service`]: the gRPC implementation;
//! - [`error`]: what can go wrong, and its gRPC status.
//!
//! [`serve`] runs the service on a listener the caller bound, with the kit's health checks,
//! reflection and graceful shutdown, until the shutdown future resolves.

pub mod error;
pub mod model;
pub mod service;
pub mod store;

use orderly::users::v1::UserServiceServer;
use orderly_kit::pagination::PageTokens;
use orderly_kit::server::GrpcServer;
use orderly_kit::server::config::ServerConfig;
use tokio::net::TcpListener;

pub use service::Users;
pub use store::UserStore;

/// What the users service needs besides the common server settings.
#[derive(Debug, Clone)]
pub struct UsersConfig {
    /// `sqlite://path/to/users.db` (created when missing) or `postgres://...`.
    pub database_url: String,
    /// The most database connections the service opens.
    pub max_connections: u32,
    /// The secret that signs page tokens; replicas must share it.
    pub page_token_secret: String,
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
    let pool = orderly_kit::db::open(
        "users",
        &config.database_url,
        config.max_connections,
        store::MIGRATIONS,
    )
    .await?;
    let store = UserStore::new(pool.clone());
    let users = Users::new(store, PageTokens::new(&config.page_token_secret));

    GrpcServer::new(server.clone())
        .add_service(orderly_kit::tune_service!(
            UserServiceServer::new(users),
            server
        ))
        .reflect(orderly::FILE_DESCRIPTOR_SET)
        .serve_with_pool(pool, listener, shutdown)
        .await?;
    Ok(())
}
