//! Starts the users service on a fresh database and hands back a typed client.

use std::net::SocketAddr;

use orderly::users::v1::{CreateUserRequest, User, UserServiceClient};
use orderly_kit::db::testing::{TestBackend, TestDatabase};
use orderly_kit::server::config::ServerConfig;
use orderly_users::{StartError, UsersConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// Runs `scenario(server)` as a test on SQLite and as a test on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    if let Some(server) = $crate::support::TestServer::start(orderly_kit::db::testing::TestBackend::Sqlite).await {
                        super::$scenario(server).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    if let Some(server) = $crate::support::TestServer::start(orderly_kit::db::testing::TestBackend::Postgres).await {
                        super::$scenario(server).await;
                    }
                }
            )*
        }
    };
}

/// A users service running in this test, with a client connected to it.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// A client on one shared connection.
    pub client: UserServiceClient<Channel>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), StartError>>,
    db: Option<TestDatabase>,
}

impl TestServer {
    /// A server on a fresh database of `backend`; `None` when that backend is skipped.
    pub async fn start(backend: TestBackend) -> Option<Self> {
        let db = TestDatabase::create(backend).await?;
        Some(Self::start_with(db, ServerConfig::default()).await)
    }

    /// A server on `db` with `server` settings.
    pub async fn start_with(db: TestDatabase, server: ServerConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let config = UsersConfig {
            database_url: db.url().to_owned(),
            max_connections: 8,
            page_token_secret: "test-secret".into(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(orderly_users::serve(config, server, listener, async {
            let _ = stopped.await;
        }));
        let client = UserServiceClient::new(channel(addr).await);
        Self {
            addr,
            client,
            stop,
            task,
            db: Some(db),
        }
    }

    /// Shuts the server down gracefully, checks it stopped cleanly, and removes the database.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("server task")
            .expect("server stopped cleanly");
        if let Some(db) = self.db {
            db.remove().await;
        }
    }

    /// Removes the database under the running server.
    pub async fn remove_database(&mut self) {
        if let Some(db) = self.db.take() {
            db.remove().await;
        }
    }
}

/// A connected channel to `addr`.
pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
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

/// The fields named by a status's `google.rpc.BadRequest`, in order.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The `google.rpc.ErrorInfo` reason of a status.
pub fn reason(status: &tonic::Status) -> Option<String> {
    status.get_details_error_info().map(|info| info.reason)
}
