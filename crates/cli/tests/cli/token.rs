//! `orderly token`: a token signed by the development key under the data directory, which a
//! verifier over the JWKS written beside the key accepts.

use orderly_kit::auth::keys::JwksFile;
use orderly_kit::auth::signing::JWKS_FILE;
use orderly_kit::auth::verify::Verifier;
use orderly_kit::auth::{AUDIENCE, DEV_ISSUER, DEV_KEY_DIR};

fn token(data: &std::path::Path, extra: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orderly"))
        .args(["token", "--data-dir"])
        .arg(data)
        .args(extra)
        .output()
        .expect("run orderly token");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[test]
fn printed_tokens_verify_against_the_jwks_beside_the_key() {
    let data = tempfile::tempdir().expect("temporary directory");
    let user = token(data.path(), &["--sub", "user-1"]);
    let admin = token(data.path(), &["--sub", "root", "--admin", "--ttl", "5m"]);
    let jwks = data.path().join(DEV_KEY_DIR).join(JWKS_FILE);
    let verifier = Verifier::new(JwksFile::open(&jwks).expect("JWKS"), DEV_ISSUER, AUDIENCE);
    let caller = verifier.token(&user).expect("user token");
    assert_eq!(caller.subject, "user-1");
    assert!(!caller.is_admin());
    assert!(verifier.token(&admin).expect("admin token").is_admin());
}
