//! The `orderly` binary: parses the command line and runs services through their crates' `serve`.
//!
//! - `orderly up`: every service in one process, on embedded SQLite under `--data-dir`.
//! - `orderly serve --target users`: one service, for containers and replicas.

mod args;

use anyhow::Context as _;
use clap::Parser as _;
use orderly_kit::shutdown::{Shutdown, signal};
use tokio::net::TcpListener;

use crate::args::{Cli, Command, ServeArgs, Target, UpArgs};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    orderly_kit::telemetry::init_logs(cli.log_format)?;
    let result = match cli.command {
        Command::Up(args) => up(args).await,
        Command::Serve(args) => serve(args).await,
    };
    if let Err(error) = &result {
        tracing::error!(
            error = format!("{error:#}"),
            "orderly stopped with an error"
        );
    }
    result
}

/// Runs one service until SIGTERM or SIGINT.
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let listen = args.listen.unwrap_or_else(|| args.target.default_listen());
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    match args.target {
        Target::Users => {
            let config = orderly_users::UsersConfig {
                database_url: args
                    .database_url
                    .unwrap_or_else(|| "sqlite://data/users.db".into()),
                max_connections: args.max_connections,
                page_token_secret: args.page_token_secret,
            };
            orderly_users::serve(config, args.server, listener, signal()).await?;
        }
    }
    Ok(())
}

/// Runs every service in this process until SIGTERM or SIGINT; they still talk real gRPC.
async fn up(args: UpArgs) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    let data_dir = &args.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;

    let users_listener = TcpListener::bind(args.users_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.users_listen))?;
    let users = orderly_users::serve(
        orderly_users::UsersConfig {
            database_url: format!("sqlite://{}", data_dir.join("users.db").display()),
            max_connections: args.max_connections,
            page_token_secret: args.page_token_secret.clone(),
        },
        args.server.clone(),
        users_listener,
        shutdown.wait(),
    );

    let signal_task = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            signal().await;
            shutdown.trigger();
        })
    };
    let result = users.await.context("users service");
    // A service that fails takes the others down with it, gracefully.
    shutdown.trigger();
    signal_task.abort();
    result
}
