//! schemathesis (PyPI) pointed at `orderly up` as a user would point it: requests generated from the
//! served OpenAPI document, valid and invalid, through every phase and check it has. A request the
//! document calls valid must be accepted, one it calls invalid refused, every answer must match
//! the document, and a route that needs a token must say 401 without one.

use std::time::Duration;

use crate::common::{Orderly, run_orderly, secured_up_args};

/// How long the run may take (it takes about 40 s here).
const RUN_FOR: Duration = Duration::from_secs(180);

/// Runs where `ORDERLY_SCHEMATHESIS` names schemathesis' executable (CI installs it) and says it
/// skipped otherwise. Fixed seed and a bounded number of examples, so that a failure can be
/// replayed and the run stays short.
#[tokio::test]
async fn schemathesis_finds_nothing_the_document_and_the_gateway_disagree_on() {
    let Some(schemathesis) = std::env::var_os("ORDERLY_SCHEMATHESIS") else {
        eprintln!("skipped: set ORDERLY_SCHEMATHESIS to schemathesis' path");
        return;
    };
    let data = tempfile::tempdir().expect("data dir");
    let args = secured_up_args(data.path().to_str().expect("utf-8 path"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let up = Orderly::start_serving(&args, &["UserService", "OrderService", "gateway"]).await;
    let admin = run_orderly(
        "token",
        "--data-dir",
        data.path(),
        &["--sub", "schemathesis", "--admin"],
    );
    // The checkout's own, which schemathesis finds by itself when run from the checkout.
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemathesis.toml");
    let document = format!("http://{}/openapi.json", up.addrs["gateway"]);
    let run = tokio::process::Command::new(schemathesis)
        .args(["--config-file", config, "run", &document, "--checks", "all"])
        .args([
            "--seed",
            "1",
            "--max-examples",
            "20",
            "--generation-database",
            "none",
        ])
        .args(["--header", &format!("Authorization: Bearer {admin}")])
        .env("NO_COLOR", "1")
        // Its cache (`.schemathesis/`) goes to the run's directory, not the checkout.
        .current_dir(data.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_FOR, run)
        .await
        .expect("schemathesis ends in time")
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}
