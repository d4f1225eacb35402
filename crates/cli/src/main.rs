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

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;
use clap::Parser as _;
use orderly_kit::db::DatabaseConfig;
use orderly_kit::observe::telemetry::LogFormat;
use orderly_kit::server::admin::Process;
use orderly_kit::shutdown::{Shutdown, signal};
use orderly_orders::downstream::DownstreamUrls;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::args::{
    CertsArgs, CheckArgs, Cli, Command, PeerUrls, ServeArgs, Target, TokenArgs, Tuning, UpArgs,
};
use orderly_kit::auth::signing::{SigningKey, TokenSpec, load_or_create_secret};

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
        Command::Token(args) => token(&args),
        Command::Certs(args) => certs(&args),
        Command::Up(args) => traced(format, "orderly", &orderly_kit::tls::SERVICES, up(args)).await,
        Command::Serve(args) => {
            let name = format!("orderly-{}", args.target.name());
            traced(format, &name, &[], serve(args)).await
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

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Everything one service needs to run.
struct Launch {
    target: Target,
    listener: TcpListener,
    database: DatabaseConfig,
    peers: PeerUrls,
    tuning: Tuning,
}

/// Runs one service until `shutdown` resolves: each crate's configuration from the flags, then
/// its `serve`.
async fn run(
    launch: Launch,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Launch {
        target,
        listener,
        database,
        peers,
        tuning,
    } = launch;
    let server = tuning.server;
    match target {
        Target::Gateway => {
            let mut config = orderly_gateway::GatewayConfig::new(peers.users_url, peers.orders_url);
            config.catalog_url = peers.catalog_url;
            config.request_timeout = tuning.gateway.request_timeout.into();
            config.max_body_bytes = tuning.gateway.max_body_bytes;
            config.max_concurrent_requests = server.max_concurrent_calls;
            config.connections = server.connection_limits();
            config.grace_period = server.grace_period;
            config.calls = tuning.calls.config();
            // The gateway calls users and orders as itself, over mutual TLS when configured.
            config.calls.client.tls = server.tls.identity(target.name())?;
            config.callers = orderly_gateway::callers::Callers {
                verifier: server.auth.verifier()?,
                limits: orderly_kit::rate::CallerLimits::new(server.rate),
            };
            orderly_gateway::serve(config, listener, shutdown).await?;
        }
        Target::Users => {
            let config = orderly_users::UsersConfig {
                database,
                page_token_secret: page_secret(tuning.page_token_secret)?,
                closed_signup: tuning.closed_signup,
            };
            orderly_users::serve(config, server, listener, shutdown).await?;
        }
        Target::Payments => {
            let config = orderly_payments::PaymentsConfig { database };
            orderly_payments::serve(config, server, listener, shutdown).await?;
        }
        Target::Delivery => {
            let config = orderly_delivery::DeliveryConfig { database };
            orderly_delivery::serve(config, server, listener, shutdown).await?;
        }
        Target::Catalog => {
            let mut config = orderly_catalog::CatalogConfig::new(database);
            config.page_token_secret = page_secret(tuning.page_token_secret)?;
            config.reservation_sweep = tuning.catalog.reservation_sweep;
            if tuning.catalog.demo_catalog {
                config.seed = orderly_catalog::seed::demo_catalog();
            }
            orderly_catalog::serve(config, server, listener, shutdown).await?;
        }
        Target::Orders => {
            let downstream = DownstreamUrls {
                users: peers.users_url,
                payments: peers.payments_url,
                delivery: peers.delivery_url,
                catalog: peers.catalog_url,
            };
            let mut config =
                orderly_orders::OrdersConfig::with_args(database, downstream, &tuning.orders);
            config.page_token_secret = page_secret(tuning.page_token_secret)?;
            config.calls = tuning.calls.config();
            orderly_orders::serve(config, server, listener, shutdown).await?;
        }
    }
    Ok(())
}

/// Serves the admin port of `process` until `shutdown` resolves.
async fn admin(
    addr: SocketAddr,
    process: Process,
    shutdown: &Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = bind(addr).await?;
    let stop = shutdown.wait();
    Ok(tokio::spawn(async move {
        if let Err(error) = orderly_kit::server::admin::serve(listener, process, stop).await {
            tracing::error!(%error, "admin server failed");
        }
    }))
}

/// `orderly serve`: one service until SIGTERM or SIGINT.
async fn serve(mut args: ServeArgs) -> anyhow::Result<()> {
    orderly_kit::observe::metrics::install();
    let pages = matches!(
        args.target,
        Target::Users | Target::Orders | Target::Catalog
    );
    if args.tuning.server.auth.insecure_no_auth {
        insecure();
        if pages && args.tuning.page_token_secret.is_none() {
            args.tuning.page_token_secret = Some(INSECURE_PAGE_SECRET.into());
        }
    } else {
        anyhow::ensure!(
            args.tuning.server.auth.enabled(),
            "orderly serve checks callers' bearer tokens: give it the JWKS of the keys that sign \
             them (--jwks-file, ORDERLY_JWKS_FILE, or --jwks-url, ORDERLY_JWKS_URL), or accept \
             every caller with --insecure-no-auth"
        );
        anyhow::ensure!(
            !pages || args.tuning.page_token_secret.is_some(),
            "orderly serve --target {} signs page tokens: give it a secret every replica shares \
             (--page-token-secret, ORDERLY_PAGE_TOKEN_SECRET)",
            args.target.name()
        );
    }
    if args.tuning.server.tls.insecure_plaintext {
        plaintext();
    } else {
        anyhow::ensure!(
            args.tuning.server.tls.tls_dir.is_some(),
            "orderly serve speaks mutual TLS to other services: give it a directory with the CA \
             and its certificate (--tls-dir, ORDERLY_TLS_DIR; `orderly certs --out DIR` makes \
             one), or accept plaintext with --insecure-plaintext"
        );
    }
    // A JWKS URL is fetched once, before the first call can need it.
    args.tuning.server.auth.fetch_jwks().await?;
    // From here on SIGTERM drains instead of killing the process, before any port answers.
    let signalled = signal();
    let shutdown = Shutdown::new();
    let process = process_of([args.target], &args.tuning);
    args.tuning.server.readiness = process.servers.clone();
    let admin = admin(args.admin_listen, process, &shutdown).await?;
    let listener = bind(args.listen.unwrap_or_else(|| args.target.default_listen())).await?;
    let launch = Launch {
        target: args.target,
        listener,
        database: DatabaseConfig {
            url: args
                .database_url
                .unwrap_or_else(|| format!("sqlite://data/{}.db", args.target.name())),
            max_connections: args.max_connections,
        },
        peers: args.peers,
        tuning: args.tuning,
    };
    let stop = shutdown.clone();
    let result = run(launch, async move {
        signalled.await;
        stop.trigger();
    })
    .await;
    shutdown.trigger();
    let _ = admin.await;
    result
}

/// What `/readyz` reports on for a process running `targets` with `tuning`: as many gRPC servers
/// as they start (the gateway is not one), so the process is not reported ready before the last of
/// them has started, and whether it authenticates no caller.
fn process_of(targets: impl IntoIterator<Item = Target>, tuning: &Tuning) -> Process {
    let servers = targets
        .into_iter()
        .filter(|target| *target != Target::Gateway)
        .count();
    Process {
        servers: orderly_kit::server::health::Servers::expecting(servers),
        insecure: tuning.server.auth.insecure_no_auth,
    }
}

fn sqlite_in(dir: &Path, target: Target) -> String {
    format!(
        "sqlite://{}",
        dir.join(format!("{}.db", target.name())).display()
    )
}

/// `orderly up`: every service in this process until SIGTERM or SIGINT; they still talk real gRPC.
async fn up(mut args: UpArgs) -> anyhow::Result<()> {
    orderly_kit::observe::metrics::install();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let auth = &mut args.tuning.server.auth;
    if auth.insecure_no_auth {
        insecure();
    } else if !auth.enabled() {
        // A development key of its own, kept under the data directory, for `orderly token`.
        let keys = args.data_dir.join(orderly_kit::auth::DEV_KEY_DIR);
        SigningKey::load_or_create(&keys)?;
        let jwks = keys.join(orderly_kit::auth::signing::JWKS_FILE);
        tracing::info!(jwks = %jwks.display(),
            hint = %format!("orderly token --data-dir {} --sub USER_ID", args.data_dir.display()),
            "callers need a bearer token signed by the development key");
        auth.jwks_file = Some(jwks);
    }
    let tls = &mut args.tuning.server.tls;
    if tls.insecure_plaintext {
        plaintext();
    } else if tls.tls_dir.is_none() {
        // A development CA of its own, and service certificates fresh from it at every start.
        let dir = args.data_dir.join(TLS_DIR);
        orderly_kit::tls::issue::issue(
            &dir,
            &orderly_kit::tls::SERVICES,
            DEV_CERT_LIFETIME,
            false,
        )?;
        tracing::info!(dir = %dir.display(), "services call each other over mutual TLS");
        tls.tls_dir = Some(dir);
    }
    args.tuning.server.auth.fetch_jwks().await?;
    if args.tuning.page_token_secret.is_none() {
        let keys = args.data_dir.join(orderly_kit::auth::DEV_KEY_DIR);
        args.tuning.page_token_secret = Some(load_or_create_secret(
            &keys.join(orderly_kit::auth::signing::PAGE_SECRET_FILE),
        )?);
    }
    // The demo catalog, unless asked for none.
    args.tuning.catalog.demo_catalog = !args.empty_catalog;
    // Bind every port first, so that each service knows where the others really are (port 0 works).
    let mut listeners = Vec::new();
    for (target, addr) in [
        (Target::Users, args.users_listen),
        (Target::Payments, args.payments_listen),
        (Target::Delivery, args.delivery_listen),
        (Target::Catalog, args.catalog_listen),
        (Target::Orders, args.orders_listen),
        (Target::Gateway, args.gateway_listen),
    ] {
        let listener = bind(addr).await?;
        let url = format!("http://{}", listener.local_addr()?);
        listeners.push((target, listener, url));
    }
    let url_of = |wanted: Target| {
        listeners
            .iter()
            .find(|(target, ..)| *target == wanted)
            .map(|(.., url)| url.clone())
            .unwrap_or_default()
    };
    let peers = PeerUrls {
        users_url: url_of(Target::Users),
        orders_url: url_of(Target::Orders),
        payments_url: url_of(Target::Payments),
        delivery_url: url_of(Target::Delivery),
        catalog_url: url_of(Target::Catalog),
    };

    // From here on SIGTERM drains instead of killing the process, before any port answers.
    let signalled = signal();
    let shutdown = Shutdown::new();
    let process = process_of(listeners.iter().map(|(target, ..)| *target), &args.tuning);
    args.tuning.server.readiness = process.servers.clone();
    let admin = admin(args.admin_listen, process, &shutdown).await?;
    // One line with every address, for the person who just typed `orderly up`.
    tracing::info!(
        rest = %url_of(Target::Gateway),
        users = %url_of(Target::Users),
        orders = %url_of(Target::Orders),
        payments = %url_of(Target::Payments),
        delivery = %url_of(Target::Delivery),
        catalog = %url_of(Target::Catalog),
        data_dir = %args.data_dir.display(),
        "orderly is up; Ctrl-C stops it"
    );
    let mut services = JoinSet::new();
    for (target, listener, url) in listeners {
        tracing::info!(service = target.name(), %url, "starting");
        let launch = Launch {
            target,
            listener,
            database: DatabaseConfig {
                url: sqlite_in(&args.data_dir, target),
                max_connections: args.max_connections,
            },
            peers: peers.clone(),
            tuning: args.tuning.clone(),
        };
        let stop = shutdown.wait();
        services.spawn(async move { run(launch, stop).await.with_context(|| target.name()) });
    }
    let signal_task = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            signalled.await;
            shutdown.trigger();
        })
    };
    // The first service to stop, for whatever reason, stops the others, gracefully.
    let mut result = Ok(());
    while let Some(joined) = services.join_next().await {
        shutdown.trigger();
        let outcome = joined.context("a service task panicked").and_then(|r| r);
        if result.is_ok() {
            result = outcome;
        }
    }
    signal_task.abort();
    let _ = admin.await;
    result
}

/// Where under `orderly up`'s data directory its CA and service certificates live.
const TLS_DIR: &str = "tls";

/// How long the certificates `orderly up` issues at start are valid.
const DEV_CERT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Says, at start, that this process's services trust any process that can connect.
fn plaintext() {
    tracing::warn!(
        "mutual TLS is off (--insecure-plaintext): any process that can connect may call any \
         service as if it were another service; never expose these ports"
    );
}

/// `orderly certs`: a CA (kept if there is one) and a certificate per service in `args.out`.
fn certs(args: &CertsArgs) -> anyhow::Result<()> {
    let services: Vec<&str> = args.services.iter().map(String::as_str).collect();
    orderly_kit::tls::issue::issue(&args.out, &services, *args.lifetime, args.new_ca)?;
    println!(
        "wrote {} (CA) and certificates for {} to {}, valid for {}",
        orderly_kit::tls::CA_FILE,
        services.join(", "),
        args.out.display(),
        args.lifetime
    );
    Ok(())
}

/// The page-token secret of `serve --insecure-no-auth` when none is given: public, like the
/// insecurity it goes with.
const INSECURE_PAGE_SECRET: &str = "orderly-insecure-development-secret";

/// The shortest page-token secret accepted, in bytes: an HMAC-SHA-256 key shorter than the hash's
/// 32 bytes is weaker than the hash (RFC 2104 §3), and a guessable one lets anyone forge page
/// tokens.
const MIN_PAGE_SECRET_BYTES: usize = 32;

/// The page-token secret settled at start (`serve` insists on one, `up` makes one), refused when
/// it is too short to be a key.
fn page_secret(
    secret: Option<orderly_kit::secret::Secret>,
) -> anyhow::Result<orderly_kit::secret::Secret> {
    let secret = secret.context("no page-token secret (--page-token-secret)")?;
    anyhow::ensure!(
        secret.expose().len() >= MIN_PAGE_SECRET_BYTES,
        "the page-token secret (--page-token-secret, ORDERLY_PAGE_TOKEN_SECRET) is {} bytes: it \
         signs page tokens, so it must be at least {MIN_PAGE_SECRET_BYTES} bytes of something \
         no one can guess (e.g. `openssl rand -base64 32`)",
        secret.expose().len()
    );
    Ok(secret)
}

/// Says, at start, that this process accepts every caller (`/readyz` says so too).
fn insecure() {
    tracing::warn!(
        "authentication is off (--insecure-no-auth): every caller may call anything; \
         never expose these ports"
    );
}

/// `orderly token`: prints a token signed by the development key of `args.data_dir`.
fn token(args: &TokenArgs) -> anyhow::Result<()> {
    let key = SigningKey::load_or_create(&args.data_dir.join(orderly_kit::auth::DEV_KEY_DIR))?;
    let token = key.token(&TokenSpec {
        subject: args.sub.clone(),
        roles: if args.admin {
            vec![orderly_kit::auth::ADMIN.to_owned()]
        } else {
            Vec::new()
        },
        issuer: args.issuer.clone(),
        audience: args.audience.clone(),
        ttl: *args.ttl,
    })?;
    println!("{token}");
    Ok(())
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
