//! What a service starts with: the listener bound for it, its database, the server settings, the
//! addresses of the services it calls and its own flags, all settled by whoever starts it; and
//! the one way every gRPC service serves, with its background tasks beside it.

use std::any::Any;
use std::collections::BTreeMap;
use std::pin::Pin;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::client::downstream::DownstreamConfig;
use crate::db::{Database, DatabaseConfig, EmbeddedMigration};
use crate::secret::Secret;
use crate::server::config::ServerConfig;
use crate::server::{GrpcServer, StartError};
use crate::shutdown::Shutdown;

/// Where the services a service calls listen, by name: one URL, a comma-separated list, or
/// `dns://host:port` each.
#[derive(Debug, Clone, Default)]
pub struct Peers(BTreeMap<&'static str, String>);

impl Peers {
    /// Says that `name` listens at `url` (replacing what was said before).
    pub fn insert(&mut self, name: &'static str, url: impl Into<String>) {
        self.0.insert(name, url.into());
    }

    /// Where `name` listens.
    pub fn url(&self, name: &'static str) -> Result<&str, StartError> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or(StartError::Peer { name })
    }
}

/// A future that resolves when a background task should end.
pub type Stopped = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Everything one service runs with (see the module documentation).
pub struct Launch {
    /// The service's short name.
    pub name: &'static str,
    /// The server settings every service shares (its readiness among the process's servers).
    pub server: ServerConfig,
    /// Its database.
    pub database: DatabaseConfig,
    /// The listener bound for it.
    pub listener: TcpListener,
    /// Where the services it calls listen.
    pub peers: Peers,
    /// Retries, retry budget and circuit breakers of its calls to other services.
    pub calls: DownstreamConfig,
    /// The secret that signs its page tokens; replicas share it.
    pub page_token_secret: Secret,
    /// Whether it starts with demonstration data (`orderly up`) unless its flags say otherwise.
    pub demo: bool,
    /// The command line its own flags are read from.
    pub flags: clap::ArgMatches,
    // In a mutex only so that a launch is `Sync`: it is taken once, before the service runs.
    pub(super) tune: Option<std::sync::Mutex<Box<dyn Any + Send>>>,
    shutdown: Shutdown,
    done: Shutdown,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launch")
            .field("name", &self.name)
            .field("database", &self.database.url)
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

impl Launch {
    /// A launch of `name` on `listener` until `shutdown` is triggered, with default settings, a
    /// database `data/<name>.db`, no peers, and no flags given.
    pub fn new(name: &'static str, listener: TcpListener, shutdown: Shutdown) -> Self {
        Self {
            name,
            server: ServerConfig::default(),
            database: DatabaseConfig {
                url: format!("sqlite://data/{name}.db"),
                max_connections: 16,
            },
            listener,
            peers: Peers::default(),
            calls: DownstreamConfig::default(),
            page_token_secret: Secret::from(String::new()),
            demo: false,
            flags: clap::ArgMatches::default(),
            tune: None,
            shutdown,
            done: Shutdown::new(),
            tasks: Vec::new(),
        }
    }

    /// A launch of `name` that stops when `shutdown` resolves: for a service's own `serve`.
    pub fn until(
        name: &'static str,
        server: ServerConfig,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        let stop = Shutdown::new();
        let trigger = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            trigger.trigger();
        });
        Self {
            server,
            ..Self::new(name, listener, stop)
        }
    }

    /// Runs the service `S` alone with `config` on `listener` until `shutdown` resolves, with
    /// the server settings `server`: each service crate's `serve`, for its own tests.
    pub async fn serve_alone<S: super::Service>(
        config: S::Config,
        server: ServerConfig,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), S::Error> {
        S::run(config, Self::until(S::NAME, server, listener, shutdown)).await
    }

    /// Adjusts the service's configuration with `tune` (a [`super::Tune`] of its configuration
    /// type) once it is configured.
    pub fn tuned(mut self, tune: Box<dyn Any + Send>) -> Self {
        self.tune = Some(std::sync::Mutex::new(tune));
        self
    }

    /// Resolves when the service is told to stop.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        self.shutdown.wait()
    }

    /// Opens the service's database `config` (its metrics labelled with the service's name) and
    /// applies `migrations`.
    pub async fn open_database(
        &self,
        config: &DatabaseConfig,
        migrations: &'static [EmbeddedMigration],
    ) -> Result<Database, StartError> {
        Ok(crate::db::open(self.name, &config.url, config.max_connections, migrations).await?)
    }

    /// Runs `task` beside the service until the service is told to stop or its server has
    /// stopped (whichever is first); the service's run returns after it has ended.
    pub fn background<F>(&mut self, task: impl FnOnce(Stopped) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let told = self.shutdown.wait();
        let done = self.done.wait();
        let stopped: Stopped = Box::pin(async move {
            tokio::select! {
                () = told => {}
                () = done => {}
            }
        });
        self.tasks.push(tokio::spawn(task(stopped)));
    }

    /// The gRPC server of this service, reflecting `descriptor_set`: its settings, its name,
    /// and mutual TLS as this service when configured. Add the service (built with
    /// [`crate::tune_service!`]) and hand it to [`Launch::serve_grpc`].
    pub fn grpc_server(&self, descriptor_set: &'static [u8]) -> Result<GrpcServer, StartError> {
        let identity = self.server.tls.identity(self.name)?;
        Ok(GrpcServer::new(self.server.clone())
            .named(self.name)
            .tls(identity)
            .reflect(descriptor_set))
    }

    /// The one way a gRPC service serves: `server` (from [`Launch::grpc_server`]) with health
    /// following `database`, on the listener until told to stop; then drains, stops, closes the
    /// database and waits for the background tasks.
    pub async fn serve_grpc(
        self,
        database: Database,
        server: GrpcServer,
    ) -> Result<(), StartError> {
        let served = server
            .serve_with_database(database, self.listener, self.shutdown.wait())
            .await;
        self.done.trigger();
        for task in self.tasks {
            let _ = task.await;
        }
        Ok(served?)
    }
}
