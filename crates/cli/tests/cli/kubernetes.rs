//! The Kubernetes manifests (`deploy/kubernetes`) against the binary, as `deploy.rs` checks the
//! compose file: every variable is one `orderly serve` reads, every port the one it listens on,
//! every probe calls a health service the server answers, and the NetworkPolicies allow exactly
//! the calls the services make, each one their callee's rules admit. (CI also renders both
//! overlays with `kubectl kustomize` and validates every object against the Kubernetes 1.33
//! schemas.)

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::deploy::{OTEL_VARS, port_of, repo_file, serve_flags};

const BASE: &str = "deploy/kubernetes/base";

/// Every document of a YAML file (separated by `---` lines), as JSON.
fn documents(path: &str) -> Vec<Value> {
    let text = repo_file(path);
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            documents.push(String::new());
        } else if let Some(last) = documents.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    documents
        .iter()
        .map(|document| {
            let value: yaml_serde::Value = yaml_serde::from_str(document).expect("valid YAML");
            serde_json::to_value(value).expect("YAML as JSON")
        })
        .filter(|value| !value.is_null())
        .collect()
}

/// The base's kustomization, and every object of the files it lists.
fn base() -> (Value, Vec<Value>) {
    let kustomization = documents(&format!("{BASE}/kustomization.yaml")).remove(0);
    let objects = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .flat_map(|file| documents(&format!("{BASE}/{}", file.as_str().expect("a file"))))
        .collect();
    (kustomization, objects)
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The variables the ConfigMap generator sets.
fn config_map(kustomization: &Value) -> BTreeMap<String, String> {
    kustomization["configMapGenerator"][0]["literals"]
        .as_array()
        .expect("literals")
        .iter()
        .map(|l| {
            let (k, v) = l.as_str().expect("literal").split_once('=').expect("k=v");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The services, by the full name of the gRPC service each serves (the gateway serves none).
const SERVICES: [(&str, Option<&str>); 6] = [
    (
        "users",
        Some(orderly::users::v1::user_service_methods::SERVICE),
    ),
    (
        "orders",
        Some(orderly::orders::v1::order_service_methods::SERVICE),
    ),
    (
        "payments",
        Some(orderly::payments::v1::payment_service_methods::SERVICE),
    ),
    (
        "delivery",
        Some(orderly::delivery::v1::delivery_service_methods::SERVICE),
    ),
    (
        "catalog",
        Some(orderly::catalog::v1::catalog_service_methods::SERVICE),
    ),
    ("gateway", None),
];

#[test]
fn every_deployment_runs_the_binary_as_it_is_and_locked_down() {
    let (kustomization, objects) = base();
    let flags = serve_flags();
    let config = config_map(&kustomization);
    let known = |name: &str| flags.env.contains(name) || OTEL_VARS.contains(&name);
    for name in config.keys() {
        assert!(
            known(name),
            "ConfigMap sets {name}, which serve does not read"
        );
    }
    let health_port = port_of(&config["ORDERLY_HEALTH_LISTEN"]);
    let admin_port = port_of(&config["ORDERLY_ADMIN_LISTEN"]);
    assert_eq!(of_kind(&objects, "Deployment").len(), SERVICES.len());

    for (name, grpc) in SERVICES {
        let deployment = named(&objects, "Deployment", name);
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        assert_eq!(
            container["args"],
            serde_json::json!(["serve", "--target", name])
        );
        let env: BTreeMap<String, Value> = container["env"]
            .as_array()
            .expect("env")
            .iter()
            .map(|e| (e["name"].as_str().expect("name").to_owned(), e.clone()))
            .collect();
        for variable in env.keys() {
            assert!(
                known(variable),
                "{name} sets {variable}, which serve does not read"
            );
        }
        let ports: BTreeMap<&str, u64> = container["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().expect("port name"),
                    p["containerPort"].as_u64().expect("port"),
                )
            })
            .collect();
        let listen = port_of(env["ORDERLY_LISTEN"]["value"].as_str().expect("listen"));
        assert_eq!(Some(&listen), flags.ports.get(name), "{name}'s port");
        let serving = if grpc.is_some() { "grpc" } else { "http" };
        assert_eq!(ports[serving], u64::from(listen), "{name}");
        assert_eq!(ports["admin"], u64::from(admin_port), "{name}");
        let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(annotations["prometheus.io/port"], admin_port.to_string());
        let service = named(&objects, "Service", name);
        assert_eq!(service["spec"]["ports"][0]["port"], u64::from(listen));
        assert_eq!(service["spec"]["ports"][0]["targetPort"], serving);

        match grpc {
            // Native gRPC probes on the plaintext health port: readiness and start-up on the
            // service's own name, liveness on the server's.
            Some(full_name) => {
                assert_eq!(ports["health"], u64::from(health_port), "{name}");
                for probe in ["startupProbe", "readinessProbe"] {
                    assert_eq!(container[probe]["grpc"]["port"], u64::from(health_port));
                    assert_eq!(
                        container[probe]["grpc"]["service"], full_name,
                        "{name} {probe}"
                    );
                }
                assert_eq!(
                    container["livenessProbe"]["grpc"]["port"],
                    u64::from(health_port)
                );
                assert!(container["livenessProbe"]["grpc"]["service"].is_null());
                assert_eq!(
                    service["spec"]["clusterIP"], "None",
                    "{name}: headless, so dns:// balancing sees every replica"
                );
            }
            None => {
                assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
                assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
                assert_eq!(container["readinessProbe"]["httpGet"]["port"], "admin");
            }
        }

        // Locked down: not root, nothing writable, no privileges, no API token.
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let security = &container["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert_eq!(pod["automountServiceAccountToken"], false, "{name}");
        assert_eq!(pod["serviceAccountName"], name);
        let account = named(&objects, "ServiceAccount", name);
        assert_eq!(account["automountServiceAccountToken"], false);
        let grace = pod["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("grace");
        let drain = humantime::parse_duration(&config["ORDERLY_DRAIN_DELAY"]).expect("drain");
        let calls = humantime::parse_duration(&config["ORDERLY_GRACE_PERIOD"]).expect("grace");
        assert!(
            grace > (drain + calls).as_secs(),
            "{name}: the pod outlives the drain and the calls' grace"
        );
    }
}

/// Calls as (caller, callee, port).
type Edges = BTreeSet<(String, String, u64)>;

/// Which pods a policy peer names (`podSelector` by `app.kubernetes.io/name`).
fn peer_name(peer: &Value) -> Option<String> {
    peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn the_network_policies_allow_exactly_the_calls_the_services_make() {
    let (_, objects) = base();
    // What the services call: the downstream URLs each Deployment is given.
    let mut calls = Edges::new();
    for (caller, _) in SERVICES {
        let deployment = named(&objects, "Deployment", caller);
        for env in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .expect("env")
        {
            let name = env["name"].as_str().expect("name");
            // A downstream's URL: ORDERLY_<SERVICE>_URL (the database's is not a call).
            let Some(callee) = name
                .strip_prefix("ORDERLY_")
                .and_then(|n| n.strip_suffix("_URL"))
                .map(str::to_lowercase)
                .filter(|callee| SERVICES.iter().any(|(service, _)| service == callee))
            else {
                continue;
            };
            let url = env["value"].as_str().expect("a URL");
            assert_eq!(
                url,
                format!("dns://{callee}:{}", port_of(url)),
                "{caller} balances over every replica of {callee}"
            );
            calls.insert((caller.to_owned(), callee, u64::from(port_of(url))));
        }
    }
    let expected: Edges = [
        ("gateway", "users", 50051),
        ("gateway", "orders", 50052),
        ("gateway", "catalog", 50055),
        ("orders", "users", 50051),
        ("orders", "catalog", 50055),
        ("orders", "payments", 50053),
        ("orders", "delivery", 50054),
    ]
    .iter()
    .map(|(a, b, p)| ((*a).to_owned(), (*b).to_owned(), *p))
    .collect();
    assert_eq!(calls, expected);

    // Every call is one its callee's rules admit (the allow-lists of `access.rs`).
    for (caller, callee, _) in &calls {
        let admitted = match callee.as_str() {
            "users" => orderly_users::access::rules(false).admits("GetUser", Some(caller)),
            "orders" => orderly_orders::access::rules().admits("CreateOrder", Some(caller)),
            "payments" => orderly_payments::access::rules().admits("Charge", Some(caller)),
            "delivery" => {
                orderly_delivery::access::rules().admits("ScheduleDelivery", Some(caller))
            }
            // Orders reserves stock; the gateway browses and, for admins, changes products.
            "catalog" => {
                let method = if caller == "orders" {
                    "ReserveStock"
                } else {
                    "CreateProduct"
                };
                orderly_catalog::access::rules().admits(method, Some(caller))
            }
            other => panic!("unknown callee {other}"),
        };
        assert_eq!(admitted, Ok(()), "{caller} -> {callee}");
    }

    // The policies: default deny, then ingress and egress edges between the services.
    let policies = of_kind(&objects, "NetworkPolicy");
    let deny = named(&objects, "NetworkPolicy", "default-deny");
    assert_eq!(deny["spec"]["podSelector"], serde_json::json!({}));
    assert_eq!(
        deny["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    let (mut ingress, mut egress) = (Edges::new(), Edges::new());
    for policy in policies {
        let Some(pod) = peer_name(&policy["spec"]) else {
            continue;
        };
        for (direction, peers, edges) in [
            ("ingress", "from", &mut ingress),
            ("egress", "to", &mut egress),
        ] {
            for rule in policy["spec"][direction].as_array().into_iter().flatten() {
                for peer in rule[peers].as_array().into_iter().flatten() {
                    let Some(other) = peer_name(peer).filter(|o| *o != "prometheus") else {
                        continue;
                    };
                    for port in rule["ports"].as_array().into_iter().flatten() {
                        let port = port["port"].as_u64().expect("port");
                        edges.insert(if direction == "ingress" {
                            (other.clone(), pod.clone(), port)
                        } else {
                            (pod.clone(), other.clone(), port)
                        });
                    }
                }
            }
        }
    }
    assert_eq!(ingress, calls, "each callee admits exactly its callers");
    assert_eq!(egress, calls, "each caller reaches exactly its callees");
}

#[test]
fn production_scales_every_service_and_keeps_one_up_through_disruptions() {
    let objects = documents("deploy/kubernetes/overlays/prod/scaling.yaml");
    for (name, _) in SERVICES {
        let hpa = named(&objects, "HorizontalPodAutoscaler", name);
        assert_eq!(hpa["apiVersion"], "autoscaling/v2");
        assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], name);
        assert_eq!(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu");
        let pdb = named(&objects, "PodDisruptionBudget", name);
        assert_eq!(
            pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
            name
        );
    }
}

#[test]
fn both_overlays_render_the_slo_rules_the_compose_prometheus_loads() {
    let rules = documents("deploy/prometheus/rules/kustomization.yaml").remove(0);
    let generator = &rules["configMapGenerator"][0];
    assert_eq!(generator["name"], "orderly-prometheus-rules");
    for file in generator["files"].as_array().expect("files") {
        let file = file.as_str().expect("a file");
        // The very file prometheus.yml's `rule_files: rules/*.yml` loads in the compose cluster.
        assert!(file.ends_with(".yml"), "{file}");
        assert!(!repo_file(&format!("deploy/prometheus/rules/{file}")).is_empty());
    }
    for overlay in ["dev", "prod"] {
        let kustomization = documents(&format!(
            "deploy/kubernetes/overlays/{overlay}/kustomization.yaml"
        ))
        .remove(0);
        let resources = kustomization["resources"].as_array().expect("resources");
        assert!(
            resources.iter().any(|r| r == "../../../prometheus/rules"),
            "{overlay}"
        );
    }
}
