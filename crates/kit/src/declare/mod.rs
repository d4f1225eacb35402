//! What a service declares so that one builder can start it beside any others, or alone: its
//! name, default port, whether it is a gRPC server, whom it calls, its own flags, and how it runs
//! from a [`Launch`] (the listener, database, settings and peers the builder settled).
//!
//! The kit knows no service: each service crate implements [`Service`] once, and the
//! application's registry lists their [`Declared`] forms. A builder then starts any set of them
//! the same way, whether for `orderly up`, `orderly serve` or a test.

pub mod launch;

use std::any::Any;
use std::pin::Pin;

pub use launch::{Launch, Peers};

/// Why a declared service could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// Its own flags did not parse.
    #[error("{service}'s flags: {source}")]
    Flags {
        /// The service.
        service: &'static str,
        /// What clap said.
        source: clap::Error,
    },
    /// A test's adjustment was written for another configuration type.
    #[error("an adjustment of {service} does not fit its configuration")]
    Tune {
        /// The service.
        service: &'static str,
    },
    /// The service itself failed.
    #[error("{service}: {source}")]
    Service {
        /// The service.
        service: &'static str,
        /// Its error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A service the application can start: implemented once by each service crate.
pub trait Service: 'static {
    /// Its short name: `--target`, its certificate, its database file, its spans.
    const NAME: &'static str;
    /// What it is, for `--help`.
    const TITLE: &'static str;
    /// Its port when none is given.
    const PORT: u16;
    /// Whether it is a gRPC server, which the process's `/readyz` waits for (the REST gateway is
    /// not).
    const GRPC: bool = true;
    /// Whether it signs page tokens, and so needs a secret its replicas share.
    const SIGNS_PAGES: bool = false;
    /// Whether it keeps a database.
    const DATABASE: bool = true;
    /// The services it calls, by name.
    const CALLS: &'static [&'static str] = &[];

    /// Its own flags ([`NoFlags`] when it has none); their names must not clash with another
    /// service's.
    type Flags: clap::Args + clap::FromArgMatches;
    /// Everything it runs with, built from its flags and the launch (tests may adjust it).
    type Config: Send + 'static;
    /// Why it can fail.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Its configuration, from its flags and what the builder settled.
    fn configure(flags: Self::Flags, launch: &Launch) -> Result<Self::Config, Self::Error>;

    /// Runs the service until the launch's shutdown, then drains and stops.
    fn run(
        config: Self::Config,
        launch: Launch,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// No flags of its own.
#[derive(Debug, Clone, Default, clap::Args)]
// Several services have none: no group named after this struct, which would be declared twice.
#[group(skip)]
pub struct NoFlags {}

/// A test's adjustment of a service's configuration, applied after [`Service::configure`].
pub type Tune<C> = Box<dyn FnOnce(&mut C) + Send>;

/// A running service's outcome.
pub type Running = Pin<Box<dyn Future<Output = Result<(), LaunchError>> + Send>>;

/// A [`Service`] in a form a list can hold: what the builder and the command line read of it.
#[derive(Clone, Copy)]
pub struct Declared {
    /// [`Service::NAME`].
    pub name: &'static str,
    /// [`Service::TITLE`].
    pub title: &'static str,
    /// [`Service::PORT`].
    pub port: u16,
    /// [`Service::GRPC`].
    pub grpc: bool,
    /// [`Service::SIGNS_PAGES`].
    pub signs_pages: bool,
    /// [`Service::DATABASE`].
    pub database: bool,
    /// [`Service::CALLS`].
    pub calls: &'static [&'static str],
    flags: fn(clap::Command) -> clap::Command,
    start: fn(Launch) -> Running,
}

impl std::fmt::Debug for Declared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Declared")
            .field("name", &self.name)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Declared {
    /// The declaration of `S`.
    pub const fn of<S: Service>() -> Self {
        Self {
            name: S::NAME,
            title: S::TITLE,
            port: S::PORT,
            grpc: S::GRPC,
            signs_pages: S::SIGNS_PAGES,
            database: S::DATABASE,
            calls: S::CALLS,
            flags: <S::Flags as clap::Args>::augment_args,
            start: start::<S>,
        }
    }

    /// Adds the service's own flags to `command`.
    pub fn flags(&self, command: clap::Command) -> clap::Command {
        (self.flags)(command)
    }

    /// Configures and runs the service with `launch`.
    pub fn start(&self, launch: Launch) -> Running {
        (self.start)(launch)
    }
}

fn start<S: Service>(mut launch: Launch) -> Running {
    Box::pin(async move {
        let service = S::NAME;
        let flags = <S::Flags as clap::FromArgMatches>::from_arg_matches(&launch.flags)
            .map_err(|source| LaunchError::Flags { service, source })?;
        let failed = |error: S::Error| LaunchError::Service {
            service,
            source: Box::new(error),
        };
        let mut config = S::configure(flags, &launch).map_err(failed)?;
        if let Some(tune) = launch.tune.take() {
            let tune = tune
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let tune: Box<Tune<S::Config>> = tune
                .downcast()
                .map_err(|_: Box<dyn Any + Send>| LaunchError::Tune { service })?;
            tune(&mut config);
        }
        S::run(config, launch).await.map_err(failed)
    })
}
