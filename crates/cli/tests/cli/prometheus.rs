//! A real Prometheus (Debian's) scraping `orderly up` with the shipped configuration, its targets
//! rewritten to the test's admin port, and the shipped rules: after a little traffic of every kind,
//! every recording rule and every query of the Grafana dashboard returns at least one series.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use orderly::orders::v1::OrderServiceClient;
use orderly::users::v1::{CreateUserRequest, GetUserRequest, UserServiceClient};
use serde_json::Value;

use crate::common::{EVERYTHING_UP_SERVES, Orderly, free_port, http_get, order_request, up_args};

/// How long every expression has to return a series.
const WITHIN: Duration = Duration::from_secs(90);

/// The repository's `deploy/` directory.
fn deploy() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// `text` percent-encoded for a query string.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The shipped Prometheus configuration with every scrape target replaced by `admin`, scraping and
/// evaluating every second, and its rule files named by absolute path.
fn config(admin: SocketAddr) -> String {
    let shipped = std::fs::read_to_string(deploy().join("prometheus/prometheus.yml"))
        .expect("the shipped configuration");
    let mut config: yaml_serde::Value = yaml_serde::from_str(&shipped).expect("YAML");
    config["global"]["scrape_interval"] = "1s".into();
    config["global"]["evaluation_interval"] = "1s".into();
    let rules = config["rule_files"]
        .as_sequence()
        .expect("rule_files")
        .iter()
        .map(|file| {
            let file = file.as_str().expect("a path");
            deploy()
                .join("prometheus")
                .join(file)
                .display()
                .to_string()
                .into()
        })
        .collect::<Vec<yaml_serde::Value>>();
    config["rule_files"] = rules.into();
    let jobs = config["scrape_configs"]
        .as_sequence_mut()
        .expect("scrape_configs");
    assert!(!jobs.is_empty());
    for job in jobs {
        job["static_configs"] = yaml_serde::from_str(&format!(
            "[{{targets: [\"{admin}\"], labels: {{service: orderly}}}}]"
        ))
        .expect("YAML");
    }
    yaml_serde::to_string(&config).expect("YAML")
}

/// The shipped rule files: `rules/*.yml`, as prometheus.yml names them (the directory also holds
/// the kustomization that renders them for Kubernetes).
fn rule_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(deploy().join("prometheus/rules"))
        .expect("rules")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

/// Every rule (recording or alerting) of every group in the shipped rule files.
fn rules() -> Vec<yaml_serde::Value> {
    let mut all = Vec::new();
    for path in rule_files() {
        let text = std::fs::read_to_string(path).expect("rules");
        let file: yaml_serde::Value = yaml_serde::from_str(&text).expect("YAML");
        for group in file["groups"].as_sequence().expect("groups") {
            all.extend(group["rules"].as_sequence().expect("rules").iter().cloned());
        }
    }
    all
}

/// Every recording rule's name in the shipped rule files.
fn recorded() -> Vec<String> {
    let mut names: Vec<String> = rules()
        .iter()
        .filter_map(|rule| rule["record"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Every query of the Grafana dashboard, with its template variables given values.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(deploy().join("grafana/dashboards/orderly.json"))
        .expect("the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("JSON");
    let mut queries = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .collect();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                queries.push(
                    expr.replace("$__rate_interval", "1m")
                        .replace("$__range", "5m"),
                );
            }
        }
    }
    assert!(queries.len() >= 12, "{queries:?}");
    queries
}

/// How many series `query` returns now.
async fn series(prometheus: SocketAddr, query: &str) -> usize {
    let (status, body) = http_get(
        prometheus,
        &format!("/api/v1/query?query={}", encoded(query)),
    )
    .await;
    assert_eq!(status, 200, "{query}: {body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    answer["data"]["result"].as_array().map_or(0, Vec::len)
}

/// Calls of every kind through `up`: REST reads and a refusal, sign-ups, reads and a NOT_FOUND
/// over gRPC, and an order (whose saga calls every other service).
async fn traffic(up: &Orderly, round: usize) {
    let gateway = up.addrs["gateway"];
    let (status, _) = http_get(gateway, "/v1/products").await;
    assert_eq!(status, 200);
    let (status, _) = http_get(gateway, "/v1/users/not-a-uuid").await;
    assert_eq!(status, 400);
    let mut users = UserServiceClient::new(up.channel_to("UserService").await);
    let user = users
        .create_user(CreateUserRequest {
            name: "Ada".into(),
            email: format!("ada+{round}@example.com"),
        })
        .await
        .expect("signed up")
        .into_inner()
        .user
        .expect("user");
    users
        .get_user(GetUserRequest {
            id: user.id.clone(),
        })
        .await
        .expect("read");
    let missing = GetUserRequest {
        id: "0193a5b2-7c1e-7d30-9f41-2b8c6d0e4a17".into(),
    };
    users.get_user(missing).await.expect_err("no such user");
    let mut orders = OrderServiceClient::new(up.channel_to("OrderService").await);
    orders
        .create_order(order_request(&user.id, &format!("prometheus-{round}")))
        .await
        .expect("ordered");
}

#[tokio::test]
async fn a_real_prometheus_finds_a_series_for_every_rule_and_dashboard_query() {
    let Some(binary) = std::env::var_os("ORDERLY_PROMETHEUS") else {
        eprintln!("skipped: set ORDERLY_PROMETHEUS to Prometheus' path (Debian's `prometheus`)");
        return;
    };
    let data = tempfile::tempdir().expect("data dir");
    let args = up_args(data.path().to_str().expect("utf-8 path"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Every call sampled, so that the duration histograms carry exemplars (the spans themselves
    // go nowhere: nothing listens at the collector's address).
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", nowhere.as_str()),
        ("OTEL_TRACES_SAMPLER", "always_on"),
    ];
    let up = Orderly::start_with_env(&args, &EVERYTHING_UP_SERVES, &env).await;

    let config_file = data.path().join("prometheus.yml");
    std::fs::write(&config_file, config(up.admin)).expect("write the configuration");
    let web = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut prometheus = tokio::process::Command::new(binary)
        .arg(format!("--config.file={}", config_file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            data.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .arg("--enable-feature=exemplar-storage")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start prometheus");

    let queries: Vec<String> = recorded().into_iter().chain(dashboard_queries()).collect();
    let started = Instant::now();
    let mut round = 0;
    let mut missing = queries.clone();
    while !missing.is_empty() && started.elapsed() < WITHIN {
        traffic(&up, round).await;
        round += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let ready = orderly_kit::http::client::get(web, "/-/ready").await;
        if !ready.is_ok_and(|response| response.status == 200) {
            continue;
        }
        let mut still = Vec::new();
        for query in missing {
            if series(web, &query).await == 0 {
                still.push(query);
            }
        }
        missing = still;
    }
    // The exemplars came through the OpenMetrics scrape, with their trace ids.
    let (status, body) = http_get(
        web,
        &format!(
            "/api/v1/query_exemplars?query={}&start=0&end=9999999999",
            encoded("rpc_server_duration_seconds_bucket")
        ),
    )
    .await;
    prometheus.kill().await.expect("stop prometheus");
    assert!(
        missing.is_empty(),
        "no series within {WITHIN:?} for: {missing:#?}"
    );
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    let trace_ids: Vec<&str> = answer["data"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|series| series["exemplars"].as_array().into_iter().flatten())
        .filter_map(|exemplar| exemplar["labels"]["trace_id"].as_str())
        .collect();
    assert!(
        trace_ids.iter().any(|id| id.len() == 32),
        "exemplars with trace ids: {body}"
    );
}

#[test]
fn every_alert_has_a_runbook_in_the_readme() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README");
    let anchors: Vec<String> = readme
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| heading.trim_start_matches('#').trim().to_lowercase())
        .collect();
    let mut alerts = 0;
    for rule in rules() {
        let Some(alert) = rule["alert"].as_str() else {
            continue;
        };
        alerts += 1;
        let runbook = rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_else(|| panic!("{alert} has no runbook_url"));
        let anchor = runbook
            .rsplit_once("README.md#")
            .map(|(_, anchor)| anchor)
            .unwrap_or_else(|| panic!("{alert}: {runbook} is not a README section"));
        assert!(
            anchors.iter().any(|heading| heading == anchor),
            "{alert}: no README section #{anchor}"
        );
        assert!(
            ["page", "ticket"].contains(&rule["labels"]["severity"].as_str().unwrap_or("")),
            "{alert}: severity"
        );
    }
    assert!(alerts >= 4, "{alerts} alerts");
}
