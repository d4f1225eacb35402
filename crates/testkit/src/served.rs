//! One service served in the test's own runtime on `127.0.0.1:0` over a fresh database, with a
//! typed client on one shared connection; stopped gracefully and checked to have stopped cleanly.

use std::fmt::Display;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::db::TestDatabase;

/// A service running in this test, with a client `C` connected to it.
#[derive(Debug)]
pub struct Served<C> {
    /// Where it listens.
    pub addr: SocketAddr,
    /// A client on one shared connection.
    pub client: C,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), String>>,
    db: Option<TestDatabase>,
}

/// The future a served service stops on.
pub type StopSignal = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

impl<C> Served<C> {
    /// Serves `serve(database_url, listener, stop)` on `db`, and connects `client` to it.
    pub async fn start<F, Fut, E>(
        db: TestDatabase,
        serve: F,
        client: impl FnOnce(Channel) -> C,
    ) -> Self
    where
        F: FnOnce(String, TcpListener, StopSignal) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let signal: StopSignal = Box::pin(async {
            let _ = stopped.await;
        });
        let run = serve(db.url().to_owned(), listener, signal);
        let task = tokio::spawn(async move { run.await.map_err(|e| e.to_string()) });
        let client = client(channel(addr).await);
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
        if let Err(error) = self.task.await.expect("server task") {
            panic!("server stopped with an error: {error}");
        }
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
