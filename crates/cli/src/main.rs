//! The `orderly` binary: parses the command line and runs services through their crates' `serve`.
//!
//! - `orderly up`: every service in one process, on embedded SQLite under `--data-dir`, still
//!   calling each other over real gRPC on loopback.
//! - `orderly serve --target users|orders|payments|delivery|catalog|gateway`: one service, for containers
//!   and replicas.
//! - `orderly check`: a container health check against a process's admin port.
//! - `orderly bench SCENARIO`: load against a running suite (see [`mod@bench`]).

// Every dependency is used (test builds excepted: they see the dev-dependencies too).
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

mod args;
mod bench;
mod dev;
mod run;

use std::io::IsTerminal as _;

use clap::Parser as _;
use orderly_kit::observe::telemetry::LogFormat;

use crate::args::{CheckArgs, Cli, Command};

/// jemalloc (feature `jemalloc`), with its background threads returning freed memory to the system
/// over time: glibc's allocator kept the peak of a burst of large listings for good
/// (`bench/heavy_lists.sh`; figures for both in the README's performance section).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // People read a terminal; machines read JSON lines.
    let format = cli
        .log_format
        .unwrap_or(if std::io::stdout().is_terminal() {
            LogFormat::Pretty
        } else {
            LogFormat::Json
        });
    match cli.command {
        Command::Check(args) => check(&args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Token(args) => dev::token(&args),
        Command::Certs(args) => dev::certs(&args),
        Command::Up(args) => {
            let services = orderly_app::registry::names();
            traced(format, "orderly", &services, run::up(args)).await
        }
        Command::Serve(args) => {
            let name = format!("orderly-{}", args.target.0.name);
            traced(format, &name, &[], run::serve(args)).await
        }
    }
}

/// Runs `work` with logs and traces set up as process `service_name` (each of `services`, when it
/// serves several, reporting as itself), then flushes the spans of the last calls.
async fn traced(
    format: LogFormat,
    service_name: &str,
    services: &[&'static str],
    work: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let telemetry = orderly_kit::observe::telemetry::init(format, service_name, services)?;
    // The connection caps, not the system's default descriptor limit, decide how many clients
    // are served.
    match orderly_kit::conn::raise_fd_limit() {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open file limit"),
    }
    let result = work.await;
    if let Err(error) = &result {
        tracing::error!(
            error = format!("{error:#}"),
            "orderly stopped with an error"
        );
    }
    telemetry.shutdown();
    result
}

/// `orderly check`: succeeds when the admin port at `args.admin` answers `args.path` with 200.
async fn check(args: &CheckArgs) -> anyhow::Result<()> {
    let response = orderly_kit::http::client::get(args.admin, &args.path).await?;
    anyhow::ensure!(
        response.status == 200,
        "{}{} answered {}: {}",
        args.admin,
        args.path,
        response.status,
        response.body.trim()
    );
    Ok(())
}
