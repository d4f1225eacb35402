//! No Docker engine runs on CI, so the cluster's files are checked against the code instead:
//! `docker-compose.yml`, the Prometheus config, the Grafana dashboard and the Dockerfile must name
//! targets, flags, environment variables, ports and metrics that the `orderly` binary really has.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

pub(crate) fn repo_file(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// A YAML file as JSON, with `<<` merge keys applied.
fn yaml(path: &str) -> Value {
    let mut value: yaml_serde::Value = yaml_serde::from_str(&repo_file(path)).expect("valid YAML");
    value.apply_merge().expect("merge keys");
    serde_json::to_value(value).expect("YAML as JSON")
}

fn orderly(args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orderly"))
        .args(args)
        .output()
        .expect("run orderly");
    assert!(output.status.success(), "orderly {args:?}");
    String::from_utf8(output.stdout).expect("utf-8 help")
}

/// What `orderly serve` accepts: its environment variables, and each target's default port.
pub(crate) struct Flags {
    pub(crate) env: BTreeSet<String>,
    pub(crate) ports: BTreeMap<String, u16>,
}

pub(crate) fn serve_flags() -> Flags {
    let help = orderly(&["serve", "--help"]);
    let env = help
        .split("[env: ")
        .skip(1)
        .map(|rest| {
            rest.split(['=', ']'])
                .next()
                .expect("a variable name")
                .to_owned()
        })
        .collect();
    // "- users:    UserService (gRPC port 50051)"
    let ports = help
        .lines()
        .filter_map(|line| {
            let (name, doc) = line.trim().strip_prefix("- ")?.split_once(':')?;
            let port = doc
                .split("port ")
                .nth(1)?
                .trim_end_matches(')')
                .parse()
                .ok()?;
            Some((name.to_owned(), port))
        })
        .collect();
    Flags { env, ports }
}

/// The variables the telemetry reads (`orderly_kit::observe::telemetry`).
pub(crate) const OTEL_VARS: [&str; 6] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
];

pub(crate) fn port_of(address: &str) -> u16 {
    address
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {address}"))
}

fn env_of(service: &Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_object()
        .map(|env| {
            env.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_compose_cluster_matches_the_binary() {
    let compose = yaml("docker-compose.yml");
    let prometheus = yaml("deploy/prometheus/prometheus.yml");
    let init_sql = repo_file("deploy/postgres/init.sql");
    let flags = serve_flags();
    let services = compose["services"].as_object().expect("services");

    let scraped: BTreeSet<String> = prometheus["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .flat_map(|job| {
            job["static_configs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|config| strings(&config["targets"]))
        .collect();

    let keys = &services["keys"];
    assert_eq!(
        strings(&keys["command"])[..3],
        ["token", "--data-dir", "/auth"],
        "the keys one-shot makes the signing key and JWKS in the auth volume"
    );
    let certs = &services["certs"];
    let certs_command = strings(&certs["command"]);
    assert_eq!(
        certs_command[..2],
        ["certs", "--out"],
        "the certs one-shot makes the CA and the services' certificates"
    );
    assert!(
        strings(&certs["volumes"]).contains(&format!("tls:{}", certs_command[2])),
        "it writes them into the tls volume"
    );
    let mut targets = BTreeSet::new();
    let mut admin_targets = BTreeSet::new();
    for (name, service) in services {
        let env = env_of(service);
        let Some(target) = env.get("ORDERLY_TARGET") else {
            continue;
        };
        assert!(
            service["build"].is_string(),
            "{name} is built from this repository"
        );
        assert_eq!(
            strings(&service["command"]),
            ["serve"],
            "{name} runs `orderly serve`"
        );
        assert!(targets.insert(target.clone()), "{target} runs once");
        // Callers are authenticated, against the JWKS the one-shot `keys` service writes.
        let jwks = env
            .get("ORDERLY_JWKS_FILE")
            .expect("a JWKS for every service");
        assert!(
            strings(&service["volumes"])
                .iter()
                .any(|v| v.starts_with("auth:")
                    && jwks.starts_with(v.split(':').nth(1).unwrap_or("?"))),
            "{name} mounts the volume its JWKS is in"
        );
        assert_eq!(
            service["depends_on"]["keys"]["condition"], "service_completed_successfully",
            "{name} starts once the keys exist"
        );
        // Every gRPC hop is mutual TLS, with the certificates the one-shot `certs` writes.
        let tls = env
            .get("ORDERLY_TLS_DIR")
            .expect("certificates for every service");
        assert!(
            strings(&service["volumes"]).contains(&format!("tls:{tls}:ro")),
            "{name} mounts the volume its certificates are in"
        );
        assert_eq!(
            service["depends_on"]["certs"]["condition"], "service_completed_successfully",
            "{name} starts once its certificate exists"
        );

        // Every variable is one the binary reads.
        for key in env.keys() {
            assert!(
                flags.env.contains(key) || OTEL_VARS.contains(&key.as_str()),
                "{name}: {key} is not a flag of `orderly serve` nor an OTEL variable it reads"
            );
        }
        // It listens on its target's port, and publishes that port.
        let port = port_of(&env["ORDERLY_LISTEN"]);
        assert_eq!(
            Some(&port),
            flags.ports.get(target),
            "{name} listens on its target's port"
        );
        assert!(
            strings(&service["ports"]).contains(&format!("{port}:{port}")),
            "{name} publishes {port}"
        );
        // It reaches the services it calls where they listen.
        let needs: &[&str] = match target.as_str() {
            "orders" => &["USERS", "PAYMENTS", "DELIVERY"],
            "gateway" => &["USERS", "ORDERS"],
            _ => &[],
        };
        for downstream in needs {
            let url = &env[&format!("ORDERLY_{downstream}_URL")];
            let host = url
                .trim_start_matches("http://")
                .split(':')
                .next()
                .expect("host");
            let other = env_of(&services[host]);
            let listen = other
                .get("ORDERLY_LISTEN")
                .unwrap_or_else(|| panic!("{host} sets no ORDERLY_LISTEN"));
            assert_eq!(
                other["ORDERLY_TARGET"],
                downstream.to_lowercase(),
                "{name}: {url}"
            );
            assert_eq!(port_of(url), port_of(listen), "{name}: {url}");
            assert!(
                service["depends_on"][host].is_object(),
                "{name} waits for {host}"
            );
        }
        // Its database exists in the cluster's PostgreSQL.
        if target != "gateway" {
            let url = &env["ORDERLY_DATABASE_URL"];
            assert!(url.starts_with("postgres://"), "{name}: {url}");
            let database = url.rsplit('/').next().expect("database");
            assert!(
                init_sql.contains(&format!("CREATE DATABASE {database};")),
                "{name}: database {database} is created"
            );
            assert!(url.contains("@postgres:5432/"), "{name}: {url}");
            assert!(
                service["depends_on"]["postgres"].is_object(),
                "{name} waits for postgres"
            );
        }
        // Traces go to Jaeger's OTLP port.
        assert_eq!(
            env["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://jaeger:4317",
            "{name}"
        );
        assert!(
            env["OTEL_SERVICE_NAME"].ends_with(target.as_str()),
            "{name}"
        );
        // Health-checked and scraped on its admin port.
        let admin = port_of(&env["ORDERLY_ADMIN_LISTEN"]);
        let check = strings(&service["healthcheck"]["test"]);
        assert_eq!(
            check,
            [
                "CMD",
                "/usr/local/bin/orderly",
                "check",
                "--admin",
                &format!("127.0.0.1:{admin}")
            ],
            "{name} is health-checked by `orderly check` on its admin port"
        );
        let scrape = format!("{name}:{admin}");
        assert!(scraped.contains(&scrape), "Prometheus scrapes {scrape}");
        admin_targets.insert(scrape);
    }
    let all: BTreeSet<String> = flags.ports.keys().cloned().collect();
    assert_eq!(
        targets, all,
        "every target of the binary runs in the cluster"
    );
    assert_eq!(
        scraped, admin_targets,
        "Prometheus scrapes exactly the Orderly services"
    );

    // The infrastructure: Jaeger takes OTLP, PostgreSQL creates the databases, Grafana has its files.
    assert!(
        strings(&services["jaeger"]["command"])
            .contains(&"--set=receivers.otlp.protocols.grpc.endpoint=0.0.0.0:4317".to_owned()),
        "Jaeger takes OTLP/gRPC on 4317 from other containers"
    );
    assert!(strings(&services["jaeger"]["ports"]).contains(&"16686:16686".to_owned()));
    assert!(
        strings(&services["postgres"]["volumes"])
            .iter()
            .any(|v| v.starts_with("./deploy/postgres/init.sql:/docker-entrypoint-initdb.d/"))
    );
    assert!(services["postgres"]["healthcheck"].is_object());
    assert!(strings(&services["prometheus"]["volumes"]).contains(
        &"./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro".to_owned()
    ));
    // The rules its configuration names (rule_files: rules/*.yml), beside it.
    assert!(
        strings(&services["prometheus"]["volumes"])
            .contains(&"./deploy/prometheus/rules:/etc/prometheus/rules:ro".to_owned())
    );
}

#[test]
fn the_dashboard_charts_metrics_the_code_records() {
    let dashboard: Value =
        serde_json::from_str(&repo_file("deploy/grafana/dashboards/orderly.json")).expect("JSON");
    let sources: String = [
        "server/admin",
        "client/breaker",
        "db/mod",
        "client/downstream",
        "client/call",
        "observe/metrics",
        "observe/rpc",
        "server/shed",
        "http/web",
        "conn/mod",
    ]
    .iter()
    .map(|m| repo_file(&format!("crates/kit/src/{m}.rs")))
    // The saga's own counters.
    .chain(std::iter::once(repo_file("crates/orders/src/outcomes.rs")))
    .collect();
    let mut charted = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        // A row has no queries of its own.
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("expr");
            // Metric names: the identifiers followed by `{` or `[` or `)`, without histogram
            // suffixes; names with a colon are the shipped recording rules' (checked against a
            // real Prometheus in prometheus.rs).
            let names = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'));
            for word in names.filter(|name| !name.contains(':')) {
                if !(word.starts_with("rpc_")
                    || word.starts_with("http_")
                    || word.starts_with("orderly_"))
                {
                    continue;
                }
                let metric = ["_bucket", "_count", "_sum"]
                    .iter()
                    .fold(word, |w, suffix| w.strip_suffix(suffix).unwrap_or(w));
                if sources.contains(&format!("\"{metric}\"")) {
                    charted += 1;
                } else if !metric.ends_with("_code")
                    && !metric.ends_with("_route")
                    && !metric.ends_with("_service")
                    && !metric.ends_with("_method")
                {
                    panic!("{metric} in {expr:?} is not recorded by the kit");
                }
            }
        }
    }
    assert!(charted >= 8, "the dashboard charts the RED metrics");
}

#[test]
fn the_image_runs_the_binary_as_a_non_root_user() {
    let dockerfile = repo_file("Dockerfile");
    assert!(
        dockerfile.contains(
            "cargo build --release --locked --features orderly-cli/jemalloc --bin orderly"
        )
    );
    assert!(dockerfile.contains("USER nonroot"));
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/usr/local/bin/orderly"]"#));
    assert!(
        dockerfile
            .contains(r#"CMD ["/usr/local/bin/orderly", "check", "--admin", "127.0.0.1:9090"]"#)
    );
    // The check it runs is a real subcommand with that flag.
    assert!(orderly(&["check", "--help"]).contains("--admin"));
}
