//! Starts the users service on a fresh database and hands back a typed client.

use orderly::users::v1::{CreateUserRequest, User, UserServiceClient};
use orderly_kit::server::config::ServerConfig;
use orderly_testkit::{Served, TestBackend, TestDatabase};
use orderly_users::UsersConfig;
use tonic::transport::Channel;

pub use orderly_testkit::channel;
pub use orderly_testkit::details::{reason, violated_fields};

/// Runs `scenario(server)` as a test on SQLite and as a test on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        orderly_testkit::on_both_backends!($crate::support::start; $($scenario),*);
    };
}

/// A users service running in this test, with a client connected to it.
pub type TestServer = Served<UserServiceClient<Channel>>;

/// A server on a fresh database of `backend`; `None` when that backend is skipped.
pub async fn start(backend: TestBackend) -> Option<TestServer> {
    let db = TestDatabase::create(backend).await?;
    Some(start_with(db, ServerConfig::default()).await)
}

/// A server on `db` with `server` settings.
pub async fn start_with(db: TestDatabase, server: ServerConfig) -> TestServer {
    let serve = move |database_url, listener, stop| {
        let config = UsersConfig {
            database: orderly_kit::db::DatabaseConfig {
                url: database_url,
                max_connections: 8,
            },
            page_token_secret: "test-secret".into(),
            closed_signup: false,
        };
        orderly_users::serve(config, server, listener, stop)
    };
    Served::start(db, serve, UserServiceClient::new).await
}

/// Creates a user and returns it.
pub async fn create(client: &mut UserServiceClient<Channel>, name: &str, email: &str) -> User {
    client
        .create_user(CreateUserRequest {
            name: name.into(),
            email: email.into(),
        })
        .await
        .expect("create user")
        .into_inner()
        .user
        .expect("user in response")
}
