//! `orderly up` and `orderly serve`: the flags settled into the application's builder's settings,
//! then the builder's services run until SIGTERM or SIGINT.

use std::path::Path;

use anyhow::Context as _;
use orderly_app::{Builder, Settings, System};
use orderly_kit::auth::signing::{SigningKey, load_or_create_secret};
use orderly_kit::db::DatabaseConfig;
use orderly_kit::secret::Secret;
use orderly_kit::shutdown::signal;

use crate::args::{ServeArgs, Tuning, UpArgs};

/// `orderly serve`: one service until SIGTERM or SIGINT.
pub async fn serve(mut args: ServeArgs) -> anyhow::Result<()> {
    orderly_kit::observe::metrics::install();
    let service = args.target.0;
    let tuning = &mut args.tuning;
    if tuning.server.auth.insecure_no_auth {
        insecure();
        if service.signs_pages && tuning.page_token_secret.is_none() {
            tuning.page_token_secret = Some(INSECURE_PAGE_SECRET.into());
        }
    } else {
        anyhow::ensure!(
            tuning.server.auth.enabled(),
            "orderly serve checks callers' bearer tokens: give it the JWKS of the keys that sign \
             them (--jwks-file, ORDERLY_JWKS_FILE, or --jwks-url, ORDERLY_JWKS_URL), or accept \
             every caller with --insecure-no-auth"
        );
        anyhow::ensure!(
            !service.signs_pages || tuning.page_token_secret.is_some(),
            "orderly serve --target {} signs page tokens: give it a secret every replica shares \
             (--page-token-secret, ORDERLY_PAGE_TOKEN_SECRET)",
            service.name
        );
    }
    if tuning.server.tls.insecure_plaintext {
        plaintext();
    } else {
        anyhow::ensure!(
            tuning.server.tls.tls_dir.is_some(),
            "orderly serve speaks mutual TLS to other services: give it a directory with the CA \
             and its certificate (--tls-dir, ORDERLY_TLS_DIR; `orderly certs --out DIR` makes \
             one), or accept plaintext with --insecure-plaintext"
        );
    }
    // A JWKS URL is fetched once, before the first call can need it.
    tuning.server.auth.fetch_jwks().await?;
    let page_token_secret = match tuning.page_token_secret.take() {
        Some(secret) if service.signs_pages => page_secret(secret)?,
        // Not used by a service that signs no page tokens.
        _ => Secret::from(String::new()),
    };
    // From here on SIGTERM drains instead of killing the process, before any port answers.
    let signalled = signal();
    let database = DatabaseConfig {
        url: args
            .database_url
            .unwrap_or_else(|| format!("sqlite://data/{}.db", service.name)),
        max_connections: args.max_connections,
    };
    let listen = args
        .listen
        .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], service.port)));
    let system = Builder::new(settings(args.tuning, page_token_secret, false))
        .peers(args.peers.0)
        .service(service, listen, Some(database))
        .admin(args.admin_listen)
        .start()
        .await?;
    until_signalled(system, signalled).await
}

/// `orderly up`: every service in this process until SIGTERM or SIGINT; they still talk real gRPC.
pub async fn up(mut args: UpArgs) -> anyhow::Result<()> {
    orderly_kit::observe::metrics::install();
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let auth = &mut args.tuning.server.auth;
    if auth.insecure_no_auth {
        insecure();
    } else if !auth.enabled() {
        // A development key of its own, kept under the data directory, for `orderly token`.
        let keys = dir.join(orderly_kit::auth::DEV_KEY_DIR);
        SigningKey::load_or_create(&keys)?;
        let jwks = keys.join(orderly_kit::auth::signing::JWKS_FILE);
        tracing::info!(jwks = %jwks.display(),
            hint = %format!("orderly token --data-dir {} --sub USER_ID", dir.display()),
            "callers need a bearer token signed by the development key");
        auth.jwks_file = Some(jwks);
    }
    let tls = &mut args.tuning.server.tls;
    if tls.insecure_plaintext {
        plaintext();
    } else if tls.tls_dir.is_none() {
        tls.tls_dir = Some(crate::dev::certificates(dir)?);
    }
    args.tuning.server.auth.fetch_jwks().await?;
    let page_token_secret = match args.tuning.page_token_secret.take() {
        Some(secret) => secret,
        None => {
            let keys = dir.join(orderly_kit::auth::DEV_KEY_DIR);
            load_or_create_secret(&keys.join(orderly_kit::auth::signing::PAGE_SECRET_FILE))?
        }
    };
    let page_token_secret = page_secret(page_token_secret)?;
    // From here on SIGTERM drains instead of killing the process, before any port answers.
    let signalled = signal();
    let mut builder =
        Builder::new(settings(args.tuning, page_token_secret, true)).admin(args.admin_listen);
    for (service, addr) in args.listen.addresses() {
        let database = service.database.then(|| DatabaseConfig {
            url: sqlite_in(&args.data_dir, service.name),
            max_connections: args.max_connections,
        });
        builder = builder.service(service, addr, database);
    }
    let system = builder.start().await?;
    // One line with every address, for the person who just typed `orderly up`.
    let services: Vec<String> = system
        .addrs()
        .iter()
        .map(|(name, addr)| format!("{name}=http://{addr}"))
        .collect();
    tracing::info!(
        services = %services.join(" "),
        data_dir = %args.data_dir.display(),
        "orderly is up; Ctrl-C stops it"
    );
    until_signalled(system, signalled).await
}

/// What every service of the process shares, from the flags.
fn settings(tuning: Tuning, page_token_secret: Secret, demo: bool) -> Settings {
    Settings {
        calls: tuning.calls.config(),
        server: tuning.server,
        page_token_secret,
        flags: tuning.services,
        demo,
    }
}

/// Runs `system` until `signalled` resolves or one of its services stops, then stops them all.
async fn until_signalled(
    system: System,
    signalled: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shutdown = system.shutdown().clone();
    let signal_task = tokio::spawn(async move {
        signalled.await;
        shutdown.trigger();
    });
    let result = system.wait().await;
    signal_task.abort();
    Ok(result?)
}

fn sqlite_in(dir: &Path, name: &str) -> String {
    format!("sqlite://{}", dir.join(format!("{name}.db")).display())
}

/// Says, at start, that this process's services trust any process that can connect.
fn plaintext() {
    tracing::warn!(
        "mutual TLS is off (--insecure-plaintext): any process that can connect may call any \
         service as if it were another service; never expose these ports"
    );
}

/// Says, at start, that this process accepts every caller (`/readyz` says so too).
fn insecure() {
    tracing::warn!(
        "authentication is off (--insecure-no-auth): every caller may call anything; \
         never expose these ports"
    );
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
fn page_secret(secret: Secret) -> anyhow::Result<Secret> {
    anyhow::ensure!(
        secret.expose().len() >= MIN_PAGE_SECRET_BYTES,
        "the page-token secret (--page-token-secret, ORDERLY_PAGE_TOKEN_SECRET) is {} bytes: it \
         signs page tokens, so it must be at least {MIN_PAGE_SECRET_BYTES} bytes of something \
         no one can guess (e.g. `openssl rand -base64 32`)",
        secret.expose().len()
    );
    Ok(secret)
}
