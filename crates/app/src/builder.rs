//! The one way Orderly's services start: a [`Builder`] binds each service's listener first (so
//! that each knows where the others really are, port 0 included), counts the gRPC servers for the
//! process's `/readyz`, serves the admin port, and starts every service through its declaration.
//! The [`System`] it returns stops them all when one stops.

use std::any::Any;
use std::net::SocketAddr;

use orderly_kit::client::downstream::DownstreamConfig;
use orderly_kit::db::DatabaseConfig;
use orderly_kit::declare::{Declared, Launch, LaunchError, Peers, Tune};
use orderly_kit::secret::Secret;
use orderly_kit::server::admin::Process;
use orderly_kit::server::config::ServerConfig;
use orderly_kit::server::health::Servers;
use orderly_kit::shutdown::Shutdown;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::flags::ServiceFlags;

/// Why the services could not start, or how the first of them stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr} for {service}: {source}")]
    Bind {
        /// The service (or `admin`).
        service: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A service failed.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// A service's task panicked.
    #[error("a service panicked: {0}")]
    Panicked(#[from] tokio::task::JoinError),
}

/// What every service of the process shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The server settings (each service's copy may be adjusted: [`Builder::server_of`]).
    pub server: ServerConfig,
    /// Retries, retry budget and breakers of the calls services make to each other.
    pub calls: DownstreamConfig,
    /// The secret that signs page tokens.
    pub page_token_secret: Secret,
    /// Each service's own flags.
    pub flags: ServiceFlags,
    /// Whether services start with demonstration data (`orderly up`).
    pub demo: bool,
}

impl Settings {
    /// Every setting at its default, with `page_token_secret`: what a test starts from.
    pub fn defaults(page_token_secret: Secret) -> Self {
        Self {
            server: ServerConfig::default(),
            calls: DownstreamConfig::default(),
            page_token_secret,
            flags: ServiceFlags::defaults(),
            demo: false,
        }
    }
}

/// One service to start.
struct Planned {
    service: &'static Declared,
    listen: SocketAddr,
    database: Option<DatabaseConfig>,
    server: ServerConfig,
    tune: Option<Box<dyn Any + Send>>,
}

/// Starts any set of declared services in this process (see the module documentation).
pub struct Builder {
    settings: Settings,
    planned: Vec<Planned>,
    peers: Peers,
    admin: Option<SocketAddr>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.planned.iter().map(|p| p.service.name).collect();
        f.debug_struct("Builder")
            .field("services", &names)
            .field("peers", &self.peers)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A builder of services sharing `settings`, starting none yet.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            planned: Vec::new(),
            peers: Peers::default(),
            admin: None,
        }
    }

    /// Starts `service` on `listen` over `database` (for a service that keeps one; by default
    /// `data/<name>.db`).
    pub fn service(
        mut self,
        service: &'static Declared,
        listen: SocketAddr,
        database: Option<DatabaseConfig>,
    ) -> Self {
        self.planned.push(Planned {
            service,
            listen,
            database,
            server: self.settings.server.clone(),
            tune: None,
        });
        self
    }

    /// Says where a service that runs elsewhere listens; one this builder starts is found where
    /// it was bound.
    pub fn peer(mut self, name: &'static str, url: impl Into<String>) -> Self {
        self.peers.insert(name, url);
        self
    }

    /// Every peer of `peers` (see [`Builder::peer`]).
    pub fn peers(mut self, peers: Peers) -> Self {
        self.peers = peers;
        self
    }

    /// Adjusts the server settings of the service `name` (started with [`Builder::service`]).
    pub fn server_of(mut self, name: &str, adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        if let Some(planned) = self.planned.iter_mut().find(|p| p.service.name == name) {
            adjust(&mut planned.server);
        }
        self
    }

    /// Adjusts the configuration of the service `name` once it is configured, for a test that
    /// needs what no flag sets; `C` must be that service's configuration type, or it fails to
    /// start.
    pub fn tune<C: 'static>(
        mut self,
        name: &str,
        adjust: impl FnOnce(&mut C) + Send + 'static,
    ) -> Self {
        if let Some(planned) = self.planned.iter_mut().find(|p| p.service.name == name) {
            let tune: Tune<C> = Box::new(adjust);
            planned.tune = Some(Box::new(tune));
        }
        self
    }

    /// Serves the process's admin port (`/metrics`, `/healthz`, `/readyz`) on `addr`.
    pub fn admin(mut self, addr: SocketAddr) -> Self {
        self.admin = Some(addr);
        self
    }

    /// Binds every listener, then starts the admin port and every service; returns once they are
    /// all on their way (see [`System::ready`] for when they answer).
    pub async fn start(self) -> Result<System, AppError> {
        let Self {
            settings,
            planned,
            mut peers,
            admin,
        } = self;
        let mut bound = Vec::new();
        for plan in planned {
            let listener = bind(plan.service.name, plan.listen).await?;
            let addr = local(plan.service.name, &listener, plan.listen)?;
            peers.insert(plan.service.name, format!("http://{addr}"));
            bound.push((plan, listener, addr));
        }
        let process = Process {
            servers: Servers::expecting(bound.iter().filter(|(p, ..)| p.service.grpc).count()),
            insecure: settings.server.auth.insecure_no_auth,
        };
        let shutdown = Shutdown::new();
        let (admin_addr, admin_task) = match admin {
            Some(addr) => {
                let listener = bind("admin", addr).await?;
                let addr = local("admin", &listener, addr)?;
                let process = process.clone();
                let stop = shutdown.wait();
                let task = tokio::spawn(async move {
                    if let Err(error) =
                        orderly_kit::server::admin::serve(listener, process, stop).await
                    {
                        tracing::error!(%error, "admin server failed");
                    }
                });
                (Some(addr), Some(task))
            }
            None => (None, None),
        };
        let mut tasks = JoinSet::new();
        let mut addrs = Vec::new();
        for (plan, listener, addr) in bound {
            let service = plan.service;
            tracing::info!(service = service.name, url = %format!("http://{addr}"), "starting");
            let mut launch = Launch::new(service.name, listener, shutdown.clone());
            launch.server = plan.server;
            launch.server.readiness = process.servers.clone();
            if let Some(database) = plan.database {
                launch.database = database;
            }
            launch.peers = peers.clone();
            launch.calls = settings.calls.clone();
            launch.page_token_secret = settings.page_token_secret.clone();
            launch.demo = settings.demo;
            launch.flags = settings.flags.0.clone();
            if let Some(tune) = plan.tune {
                launch = launch.tuned(tune);
            }
            let running = service.start(launch);
            tasks.spawn(async move { (service.name, running.await) });
            addrs.push((service.name, addr));
        }
        Ok(System {
            addrs,
            admin: admin_addr,
            process,
            shutdown,
            tasks,
            admin_task,
        })
    }
}

async fn bind(service: &'static str, addr: SocketAddr) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind {
            service,
            addr,
            source,
        })
}

fn local(
    service: &'static str,
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<SocketAddr, AppError> {
    listener.local_addr().map_err(|source| AppError::Bind {
        service,
        addr,
        source,
    })
}

/// The services a [`Builder`] started, running.
pub struct System {
    addrs: Vec<(&'static str, SocketAddr)>,
    admin: Option<SocketAddr>,
    process: Process,
    shutdown: Shutdown,
    tasks: JoinSet<(&'static str, Result<(), LaunchError>)>,
    admin_task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("addrs", &self.addrs)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl System {
    /// Where the service `name` listens, if this system runs it.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.addrs
            .iter()
            .find(|(service, _)| *service == name)
            .map(|(_, addr)| *addr)
    }

    /// Every service this system runs, with its address, in the order they started.
    pub fn addrs(&self) -> &[(&'static str, SocketAddr)] {
        &self.addrs
    }

    /// Where the admin port listens, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// Whether every gRPC server of the system reports SERVING (what `/readyz` answers).
    pub fn ready(&self) -> bool {
        self.process.servers.all_serving()
    }

    /// The switch that stops every service: triggered by [`System::stop`] or the first service
    /// to stop; a signal handler may trigger it too.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Runs until the first service stops (or the shutdown is triggered), then stops the others
    /// gracefully; returns the first error.
    pub async fn wait(mut self) -> Result<(), AppError> {
        let mut result = Ok(());
        while let Some(joined) = self.tasks.join_next().await {
            self.shutdown.trigger();
            let outcome = match joined {
                Ok((_, outcome)) => outcome.map_err(AppError::from),
                Err(error) => Err(AppError::Panicked(error)),
            };
            if result.is_ok() {
                result = outcome;
            }
        }
        if let Some(admin) = self.admin_task {
            let _ = admin.await;
        }
        result
    }

    /// Stops every service gracefully and waits for them; returns the first error.
    pub async fn stop(self) -> Result<(), AppError> {
        self.shutdown.trigger();
        self.wait().await
    }
}
