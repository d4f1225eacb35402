//! `orderly bench SCENARIO`: load against a running suite, measured honestly.
//!
//! - [`scenario`]: what is called (`get-user`, `create-order`, `rest-get-user`, `storefront`);
//! - [`load`]: closed loop (`--concurrency`) or open loop (`--rate`, latency from the scheduled
//!   start, so stalls are not hidden);
//! - [`record`]: HDR histograms and outcome counts; [`report`]: the summary, as text or JSON;
//! - [`check`]: `--assert` conditions that fail the command; [`rest`]: HTTP/1.1 keep-alive
//!   connections for the REST scenario.

pub mod check;
pub mod load;
pub mod record;
pub mod report;
pub mod rest;
pub mod scenario;

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use orderly::catalog::v1::CatalogServiceClient;
use orderly::orders::v1::OrderServiceClient;
use orderly::users::v1::UserServiceClient;
use tokio::sync::Mutex;

use self::load::{Model, Plan};
use self::scenario::{ACTIONS, CreateOrder, GetUser, RestGetUser, Storefront};

/// What `orderly bench` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScenarioName {
    /// gRPC GetUser over users it creates first.
    GetUser,
    /// gRPC CreateOrder, a fresh idempotency key per call, for users it creates first.
    CreateOrder,
    /// GET /v1/users/{id} through the gateway over HTTP/1.1.
    RestGetUser,
    /// GET of the one path given by --path through the gateway over HTTP/1.1.
    RestGet,
    /// A weighted mix of what a shop's clients do (see --weights).
    Storefront,
}

/// How the summary is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Text for people.
    Text,
    /// One JSON document.
    Json,
}

/// Flags of `orderly bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// What to call.
    #[arg(value_enum)]
    pub scenario: ScenarioName,

    /// UserService's address.
    #[arg(
        long,
        env = "ORDERLY_USERS_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub users_url: String,

    /// OrderService's address.
    #[arg(
        long,
        env = "ORDERLY_ORDERS_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub orders_url: String,

    /// CatalogService's address (the storefront browses it).
    #[arg(
        long,
        env = "ORDERLY_CATALOG_URL",
        default_value = "http://127.0.0.1:50055"
    )]
    pub catalog_url: String,

    /// The gateway's address.
    #[arg(
        long,
        env = "ORDERLY_GATEWAY_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub gateway_url: String,

    /// A bearer token every call carries (`orderly token --sub bench --admin` against `orderly up`,
    /// whose services check tokens); none for a suite started with `--insecure-no-auth`.
    #[arg(long, env = "ORDERLY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// A directory of mutual-TLS certificates (`orderly certs`): the gRPC scenarios then call
    /// over TLS, as the service `--tls-identity`. By default, `--data-dir`'s `tls/` when it holds
    /// a CA (what a default `orderly up` speaks), else plaintext.
    #[arg(long, env = "ORDERLY_TLS_DIR")]
    pub tls_dir: Option<std::path::PathBuf>,

    /// The data directory of the `orderly up` under test, whose `tls/` the gRPC scenarios use
    /// when no `--tls-dir` is given (as `orderly token` finds its key there).
    #[arg(long, env = "ORDERLY_DATA_DIR", default_value = "data")]
    pub data_dir: std::path::PathBuf,

    /// Call in plaintext even where `--data-dir` holds certificates (a suite started with
    /// `--insecure-plaintext` beside an older data directory).
    #[arg(long, conflicts_with = "tls_dir")]
    pub plaintext: bool,

    /// Whose certificate the gRPC scenarios present (`gateway` may call users and orders).
    #[arg(long, default_value = "gateway")]
    pub tls_identity: String,

    /// Closed loop: this many calls always in flight (the default model, 16).
    #[arg(long, conflicts_with = "rate")]
    pub concurrency: Option<usize>,

    /// Open loop: start this many calls per second on schedule, measuring each from when it
    /// should have started.
    #[arg(long)]
    pub rate: Option<f64>,

    /// Connections to each service.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,

    /// How long calls are counted.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// How long calls run first without being counted.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,

    /// The longest one call may take.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// The path (and query) of `rest-get`, e.g. `/v1/orders?user_id=ID&page_size=400`.
    #[arg(long, default_value = "/healthz")]
    pub path: String,

    /// How many users to create before the run.
    #[arg(long, default_value_t = 100)]
    pub users: usize,

    /// Read these users (comma-separated ids) instead of creating any: for servers that only
    /// answer reads, such as a bare baseline.
    #[arg(long, value_delimiter = ',')]
    pub user_ids: Vec<String>,

    /// Storefront weights, e.g.
    /// `create-user=1,get-user=10,browse=10,list-orders=3,place-order=3,cancel-order=1`. Placing
    /// an order first looks up the product it buys in the catalog.
    #[arg(
        long,
        default_value = "create-user=1,get-user=10,browse=10,list-orders=3,place-order=3,cancel-order=1"
    )]
    pub weights: String,

    /// The share of calls, 0 to 1, that send a W3C traceparent; the summary lists the slowest.
    #[arg(long, default_value_t = 0.0)]
    pub trace_sample: f64,

    /// Closed loop: a caller refused with RetryInfo waits that long before its next call, as a
    /// well-behaved client does.
    #[arg(long)]
    pub honor_retry_info: bool,

    /// Conditions the run must meet, e.g. `p99<50ms,errors<0.1%,rate>=1000` (or `goodput>=N`:
    /// successful calls per second of the counted window); the command fails when one does not
    /// hold.
    #[arg(long = "assert")]
    pub conditions: Option<String>,

    /// How the summary is printed.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

/// Reads `--weights`.
fn weights(text: &str) -> anyhow::Result<[u32; ACTIONS.len()]> {
    let mut weights = [0; ACTIONS.len()];
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .with_context(|| format!("weight {part:?}: use action=number"))?;
        let index = ACTIONS
            .iter()
            .position(|a| *a == name.trim())
            .with_context(|| format!("unknown action {name:?}: one of {}", ACTIONS.join(", ")))?;
        weights[index] = weight
            .trim()
            .parse()
            .with_context(|| format!("weight {part:?}"))?;
    }
    anyhow::ensure!(weights.iter().any(|w| *w > 0), "every weight is zero");
    Ok(weights)
}

/// The certificates the gRPC scenarios call with: `--tls-dir`, else `--data-dir`'s `tls/` if it
/// holds a CA (a default `orderly up`'s), unless `--plaintext`.
fn tls_dir(args: &BenchArgs) -> Option<std::path::PathBuf> {
    if args.plaintext {
        return None;
    }
    args.tls_dir.clone().or_else(|| {
        let up = args.data_dir.join("tls");
        up.join(orderly_kit::tls::CA_FILE).is_file().then_some(up)
    })
}

/// Runs the benchmark `args` asks for, prints its summary, and fails if a condition does not hold.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(token) = &args.token {
        scenario::carry_token(token)?;
    }
    let conditions = args
        .conditions
        .as_deref()
        .map(check::parse)
        .transpose()?
        .unwrap_or_default();
    let model = match (args.rate, args.concurrency) {
        (Some(rate), _) => {
            anyhow::ensure!(rate > 0.0, "--rate must be above 0");
            Model::Open { rate }
        }
        (None, concurrency) => Model::Closed {
            concurrency: concurrency.unwrap_or(16).max(1),
        },
    };
    let plan = Plan {
        model,
        duration: args.duration,
        warmup: args.warmup,
        timeout: args.timeout,
        trace_sample: args.trace_sample.clamp(0.0, 1.0),
        honor_retry_info: args.honor_retry_info,
    };
    let run = format!("{:x}", fastrand::u64(..));
    let connections = args.connections.max(1);
    let identity = tls_dir(&args)
        .map(|dir| orderly_kit::tls::Identity::load(dir, &args.tls_identity))
        .transpose()?;
    let users = || async {
        let channels =
            scenario::connect(&args.users_url, connections, identity.as_ref(), "users").await?;
        anyhow::Ok(
            channels
                .into_iter()
                .map(UserServiceClient::new)
                .collect::<Vec<_>>(),
        )
    };
    let orders = || async {
        let channels =
            scenario::connect(&args.orders_url, connections, identity.as_ref(), "orders").await?;
        anyhow::Ok(
            channels
                .into_iter()
                .map(OrderServiceClient::new)
                .collect::<Vec<_>>(),
        )
    };
    let given = args.user_ids.clone();
    let tally = load::tally();
    let model_text = match model {
        Model::Closed { concurrency } => format!("closed loop, {concurrency} in flight"),
        Model::Open { rate } => format!("open loop, {rate} calls/s on schedule"),
    };
    let title = format!(
        "orderly bench {}: {model_text}, {connections} connections, {} s counted after {} s warm-up",
        scenario_name(args.scenario),
        args.duration.as_secs_f64(),
        args.warmup.as_secs_f64()
    );
    match args.scenario {
        ScenarioName::GetUser => {
            let mut clients = users().await?;
            let ids = if given.is_empty() {
                scenario::create_users(&mut clients[0], &run, args.users).await?
            } else {
                given
            };
            let caller = GetUser {
                clients: clients.into(),
                ids: ids.into(),
                timeout: args.timeout,
            };
            drive(caller, plan, tally.clone()).await
        }
        ScenarioName::CreateOrder => {
            let mut user_clients = users().await?;
            let ids = scenario::create_users(&mut user_clients[0], &run, args.users).await?;
            let caller = CreateOrder {
                clients: orders().await?.into(),
                users: ids.into(),
                run: run.clone().into(),
                timeout: args.timeout,
            };
            drive(caller, plan, tally.clone()).await
        }
        ScenarioName::RestGetUser => {
            let ids = if given.is_empty() {
                let mut clients = users().await?;
                scenario::create_users(&mut clients[0], &run, args.users).await?
            } else {
                given
            };
            let caller = RestGetUser {
                pool: rest::Pool::new(&args.gateway_url, connections),
                ids: ids.into(),
            };
            drive(caller, plan, tally.clone()).await
        }
        ScenarioName::RestGet => {
            let caller = scenario::RestGet {
                pool: rest::Pool::new(&args.gateway_url, connections),
                path: args.path.clone().into(),
            };
            drive(caller, plan, tally.clone()).await
        }
        ScenarioName::Storefront => {
            let weights = weights(&args.weights)?;
            let mut user_clients = users().await?;
            let ids = scenario::create_users(&mut user_clients[0], &run, args.users).await?;
            let catalog =
                scenario::connect(&args.catalog_url, connections, identity.as_ref(), "catalog")
                    .await?
                    .into_iter()
                    .map(CatalogServiceClient::new)
                    .collect::<Vec<_>>();
            let caller = Storefront {
                users: user_clients.into(),
                orders: orders().await?.into(),
                catalog: catalog.into(),
                products: Arc::default(),
                known_users: Arc::new(Mutex::new(ids)),
                confirmed: Arc::default(),
                weights,
                run: run.clone().into(),
                timeout: args.timeout,
            };
            drive(caller, plan, tally.clone()).await
        }
    }
    let record = tally.snapshot();
    let counted = report::Counted {
        elapsed: tally.elapsed(args.duration),
        window: args.duration,
    };
    match args.output {
        Output::Text => print!("{}", report::text(&title, &record, counted)),
        Output::Json => {
            let mut summary = report::json(&title, &record, counted);
            summary["assertions"] = conditions
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "condition": c.text(),
                        "measured": c.measured(&record, counted),
                        "holds": c.holds(&record, counted),
                    })
                })
                .collect();
            println!("{summary}");
        }
    }
    let failed: Vec<&str> = conditions
        .iter()
        .filter(|c| !c.holds(&record, counted))
        .map(check::Assertion::text)
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "assertions failed: {}",
        failed.join(", ")
    );
    Ok(())
}

fn scenario_name(name: ScenarioName) -> &'static str {
    match name {
        ScenarioName::GetUser => "get-user",
        ScenarioName::CreateOrder => "create-order",
        ScenarioName::RestGetUser => "rest-get-user",
        ScenarioName::RestGet => "rest-get",
        ScenarioName::Storefront => "storefront",
    }
}

/// Runs `caller` under `plan` with a progress line each second: redrawn in place on a terminal,
/// plain lines on stderr otherwise.
async fn drive<C: load::Caller>(caller: C, plan: Plan, tally: Arc<load::Tally>) {
    let start = tokio::time::Instant::now();
    let progress = {
        let tally = tally.clone();
        tokio::spawn(async move {
            let terminal = std::io::stderr().is_terminal();
            let bar = if terminal {
                indicatif::ProgressBar::new_spinner()
            } else {
                indicatif::ProgressBar::hidden()
            };
            let mut last = 0;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let seen = tally.snapshot();
                let line = format!(
                    "{:>4.0} s  {:>8} calls/s  {} errors  p50 {:.2} ms  p99 {:.2} ms",
                    start.elapsed().as_secs_f64(),
                    seen.calls() - last,
                    seen.errors(),
                    seen.quantile(0.5).as_secs_f64() * 1000.0,
                    seen.quantile(0.99).as_secs_f64() * 1000.0,
                );
                last = seen.calls();
                if terminal {
                    bar.set_message(line);
                    bar.tick();
                } else {
                    eprintln!("{line}");
                }
            }
        })
    };
    load::run(caller, plan, start, tally).await;
    progress.abort();
}
