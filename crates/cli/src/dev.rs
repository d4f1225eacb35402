//! Development credentials: the CA and service certificates of `orderly up` and `orderly certs`,
//! and the bearer tokens of `orderly token`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use orderly_kit::auth::signing::{SigningKey, TokenSpec};

use crate::args::{CertsArgs, TokenArgs};

/// Where under `orderly up`'s data directory its CA and service certificates live.
const TLS_DIR: &str = "tls";

/// How long the certificates `orderly up` issues at start are valid.
const DEV_CERT_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The name of the certificate `orderly up` issues for programs outside the suite (`client.pem`,
/// `client.key`), which the typed client's `Client::local_up` presents.
pub const OUTSIDE_CLIENT: &str = "client";

/// A development CA of `orderly up` under `data_dir` (kept if there is one), and certificates
/// fresh from it for every declared service and for [`OUTSIDE_CLIENT`]; returns their directory.
pub fn certificates(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = data_dir.join(TLS_DIR);
    let names = orderly_app::registry::names();
    orderly_kit::tls::issue::issue(&dir, &names, DEV_CERT_LIFETIME, false)?;
    orderly_kit::tls::issue::issue_outside(&dir, &[OUTSIDE_CLIENT], DEV_CERT_LIFETIME)?;
    tracing::info!(dir = %dir.display(), "services call each other over mutual TLS");
    Ok(dir)
}

/// `orderly certs`: a CA (kept if there is one) and a certificate per service in `args.out`.
pub fn certs(args: &CertsArgs) -> anyhow::Result<()> {
    if !args.client.is_empty() {
        let programs: Vec<&str> = args.client.iter().map(String::as_str).collect();
        if let Some(service) = programs
            .iter()
            .find(|name| orderly_app::registry::names().contains(name))
        {
            anyhow::bail!(
                "{service:?} is a service of the suite; name the outside program otherwise"
            );
        }
        orderly_kit::tls::issue::issue_outside(&args.out, &programs, *args.lifetime).map_err(
            |error| anyhow::anyhow!("{error} (the directory needs the cluster's CA: ca.pem and ca.key, as `orderly up` or `orderly certs` wrote them)"),
        )?;
        println!(
            "wrote certificates for {} (programs outside the suite) to {}, signed by its CA, valid for {}",
            programs.join(", "),
            args.out.display(),
            args.lifetime
        );
        return Ok(());
    }
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

/// `orderly token`: prints a token signed by the development key of `args.data_dir`.
pub fn token(args: &TokenArgs) -> anyhow::Result<()> {
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
