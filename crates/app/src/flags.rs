//! The command line the registry makes: each service's own flags, `orderly up`'s address of each
//! service (`--users-listen`), `orderly serve`'s address of each service it may call
//! (`--users-url`), and `--target`. clap's derive cannot list a registry, so these implement its
//! traits by hand over the registry; the values are the same as when they were written out.

use std::net::SocketAddr;
use std::sync::LazyLock;

use clap::builder::PossibleValue;
use clap::{ArgMatches, Args, Command, FromArgMatches};
use orderly_kit::declare::{Declared, Peers};

use crate::registry::SERVICES;

/// Every declared service's own flags, kept as parsed for each service to read its own.
#[derive(Debug, Clone)]
pub struct ServiceFlags(pub ArgMatches);

impl ServiceFlags {
    /// The flags' declared defaults: no command line, no environment.
    pub fn defaults() -> Self {
        let command = Self::augment_args(Command::new("defaults")).mut_args(|arg| arg.env(None));
        Self(command.get_matches_from(["defaults"]))
    }
}

impl FromArgMatches for ServiceFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self(matches.clone()))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0 = matches.clone();
        Ok(())
    }
}

impl Args for ServiceFlags {
    fn augment_args(command: Command) -> Command {
        SERVICES
            .iter()
            .fold(command, |command, service| service.flags(command))
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

/// `--<name>-listen` of each service: where `orderly up` serves it.
#[derive(Debug, Clone)]
pub struct ListenFlags(Vec<(&'static Declared, SocketAddr)>);

impl ListenFlags {
    /// Every service with the address it is to listen on.
    pub fn addresses(&self) -> impl Iterator<Item = (&'static Declared, SocketAddr)> + '_ {
        self.0.iter().copied()
    }
}

fn listen_id(service: &Declared) -> String {
    format!("{}-listen", service.name)
}

fn url_id(service: &Declared) -> String {
    format!("{}-url", service.name)
}

fn env_of(id: &str) -> String {
    format!("ORDERLY_{}", id.replace('-', "_").to_uppercase())
}

impl FromArgMatches for ListenFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut addresses = Vec::new();
        for service in &SERVICES {
            let addr = matches
                .get_one::<SocketAddr>(&listen_id(service))
                .copied()
                .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::MissingRequiredArgument))?;
            addresses.push((service, addr));
        }
        Ok(Self(addresses))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ListenFlags {
    fn augment_args(command: Command) -> Command {
        SERVICES.iter().fold(command, |command, service| {
            let id = listen_id(service);
            command.arg(
                clap::Arg::new(id.clone())
                    .long(id.clone())
                    .env(env_of(&id))
                    .value_name("ADDR")
                    .value_parser(clap::value_parser!(SocketAddr))
                    .default_value(format!("127.0.0.1:{}", service.port))
                    .help(format!("{}'s address", service.title)),
            )
        })
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

/// `--<name>-url` of each gRPC service: where `orderly serve` finds the services it calls.
#[derive(Debug, Clone)]
pub struct PeerFlags(pub Peers);

impl FromArgMatches for PeerFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut peers = Peers::default();
        for service in SERVICES.iter().filter(|service| service.grpc) {
            if let Some(url) = matches.get_one::<String>(&url_id(service)) {
                peers.insert(service.name, url.clone());
            }
        }
        Ok(Self(peers))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for PeerFlags {
    fn augment_args(command: Command) -> Command {
        SERVICES
            .iter()
            .filter(|service| service.grpc)
            .fold(command, |command, service| {
                let callers: Vec<String> = SERVICES
                    .iter()
                    .filter(|caller| caller.calls.contains(&service.name))
                    .map(|caller| format!("`--target {}`", caller.name))
                    .collect();
                let id = url_id(service);
                command.arg(
                    clap::Arg::new(id.clone())
                        .long(id.clone())
                        .env(env_of(&id))
                        .value_name("URL")
                        .default_value(format!("http://127.0.0.1:{}", service.port))
                        .help(format!(
                            "{}'s address, for {}",
                            service.title,
                            callers.join(" and ")
                        )),
                )
            })
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

/// A service `orderly serve --target` can run: one of the registry's.
#[derive(Debug, Clone, Copy)]
pub struct Target(pub &'static Declared);

static TARGETS: LazyLock<Vec<Target>> = LazyLock::new(|| SERVICES.iter().map(Target).collect());

impl clap::ValueEnum for Target {
    fn value_variants<'a>() -> &'a [Self] {
        &TARGETS
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let kind = if self.0.grpc { "gRPC" } else { "HTTP" };
        Some(
            PossibleValue::new(self.0.name)
                .help(format!("{} ({kind} port {})", self.0.title, self.0.port)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Line {
        #[command(flatten)]
        listen: ListenFlags,
        #[command(flatten)]
        peers: PeerFlags,
        #[command(flatten)]
        services: ServiceFlags,
    }

    #[test]
    fn every_service_gets_its_flags_with_their_defaults() {
        use clap::Parser as _;
        let line = Line::try_parse_from(["line", "--orders-listen", "127.0.0.1:0"])
            .expect("the flags parse");
        let listen: Vec<(&str, SocketAddr)> = line
            .listen
            .addresses()
            .map(|(service, addr)| (service.name, addr))
            .collect();
        assert_eq!(listen.len(), SERVICES.len());
        assert!(listen.contains(&("orders", "127.0.0.1:0".parse().expect("addr"))));
        assert!(listen.contains(&("users", "127.0.0.1:50051".parse().expect("addr"))));
        assert_eq!(
            line.peers.0.url("catalog").ok(),
            Some("http://127.0.0.1:50055")
        );
        assert!(
            line.peers.0.url("gateway").is_err(),
            "the gateway is no gRPC peer"
        );
        let closed = line.services.0.get_one::<bool>("closed_signup").copied();
        assert_eq!(closed, Some(false), "each service's own flags are there");
    }
}
