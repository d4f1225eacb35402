//! Mutual TLS as `orderly` sets it up: `orderly certs` writes a CA and a certificate per service
//! (keeping the CA when run again); `orderly serve` will not start without certificates or
//! `--insecure-plaintext`, and with them admits only clients holding a certificate of its CA;
//! `orderly up` makes its own.

use orderly_kit::tls::{Identity, files::certificates, identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

fn certs(out: &std::path::Path, extra: &[&str]) {
    crate::common::run_orderly("certs", "--out", out, extra);
}

#[test]
fn certs_names_every_service_and_keeps_its_ca_when_run_again() {
    let dir = tempfile::tempdir().expect("temporary directory");
    certs(dir.path(), &["--lifetime", "2h"]);
    for service in orderly_app::registry::names() {
        let leaf = certificates(&dir.path().join(format!("{service}.pem"))).expect("certificate");
        assert_eq!(identity::service(&leaf[0]).as_deref(), Some(service));
        let left = identity::not_after(&leaf[0])
            .expect("notAfter")
            .duration_since(std::time::SystemTime::now())
            .expect("in the future");
        assert!(left <= std::time::Duration::from_secs(2 * 3600), "{left:?}");
        Identity::load(dir.path(), service).expect("a usable identity");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let key = std::fs::metadata(dir.path().join(format!("{service}.key"))).expect("key");
            assert_eq!(key.permissions().mode() & 0o077, 0, "keys are private");
        }
    }
    let ca = std::fs::read(dir.path().join("ca.pem")).expect("CA");
    let users = std::fs::read(dir.path().join("users.pem")).expect("users");
    certs(dir.path(), &[]);
    assert_eq!(std::fs::read(dir.path().join("ca.pem")).expect("CA"), ca);
    assert_ne!(
        std::fs::read(dir.path().join("users.pem")).expect("users"),
        users
    );
    certs(dir.path(), &["--new-ca"]);
    assert_ne!(std::fs::read(dir.path().join("ca.pem")).expect("CA"), ca);
}

#[test]
fn certs_for_an_outside_program_keep_the_cluster_ca_and_name_no_service() {
    let dir = tempfile::tempdir().expect("temporary directory");
    certs(dir.path(), &[]);
    let ca = std::fs::read(dir.path().join("ca.pem")).expect("CA");
    let users = std::fs::read(dir.path().join("users.pem")).expect("users");
    certs(dir.path(), &["--client", "shop,reports"]);
    for program in ["shop", "reports"] {
        let leaf = certificates(&dir.path().join(format!("{program}.pem"))).expect("certificate");
        assert_eq!(identity::outside(&leaf[0]).as_deref(), Some(program));
        assert_eq!(identity::service(&leaf[0]), None, "not a service");
    }
    assert_eq!(std::fs::read(dir.path().join("ca.pem")).expect("CA"), ca);
    assert_eq!(
        std::fs::read(dir.path().join("users.pem")).expect("users"),
        users,
        "the services' certificates are left alone"
    );

    // Without the cluster's CA there is nothing to sign with; a service's name is refused.
    let empty = tempfile::tempdir().expect("temporary directory");
    for (dir, name) in [(empty.path(), "shop"), (dir.path(), "orders")] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_orderly"))
            .args(["certs", "--out"])
            .arg(dir)
            .args(["--client", name])
            .output()
            .expect("run orderly");
        assert!(!output.status.success(), "{name}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains("ca.key") || said.contains("service"),
            "{said}"
        );
    }
    assert!(!empty.path().join("ca.pem").exists(), "no stray CA made");
}

#[tokio::test]
async fn serve_needs_certificates_or_plaintext_and_then_admits_only_its_ca() {
    let data = tempfile::tempdir().expect("data dir");
    let database = format!("sqlite://{}", data.path().join("users.db").display());
    let stderr = crate::common::serve_refused(
        &database,
        &["--insecure-no-auth"],
        &["ORDERLY_TLS_DIR", "ORDERLY_INSECURE_PLAINTEXT"],
    );
    assert!(stderr.contains("--tls-dir"), "{stderr}");

    let tls = data.path().join("tls");
    certs(&tls, &[]);
    let tls_arg = tls.to_str().expect("utf-8 path");
    let args = [
        "serve",
        "--target",
        "users",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &database,
        "--insecure-no-auth",
        "--tls-dir",
        tls_arg,
    ];
    let served = crate::common::Orderly::start(&args).await;
    // Each certificate's expiry is a gauge, in Unix seconds.
    let scrape = crate::common::scrape(served.admin).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    for certificate in ["users", "ca"] {
        let expiry = crate::common::metric(
            &scrape,
            "orderly_tls_certificate_expiry_seconds",
            &[("certificate", certificate)],
        );
        assert!(expiry > now + 3600.0, "{certificate} expires at {expiry}");
    }
    // The test's own client holds the gateway's certificate: health answers.
    HealthClient::new(served.channel().await)
        .check(HealthCheckRequest::default())
        .await
        .expect("a client of the CA is served");
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{}", served.addr))
        .expect("uri")
        .connect_lazy();
    HealthClient::new(plain)
        .check(HealthCheckRequest::default())
        .await
        .expect_err("a plaintext client is refused");
}
