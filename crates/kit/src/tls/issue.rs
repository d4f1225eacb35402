//! A development CA and one certificate per service, made with `rcgen`: what `orderly certs`
//! writes and `orderly up` makes under its data directory.
//!
//! The CA is kept once made (`ca.pem`, `ca.key`) and signs fresh service certificates each time,
//! so services holding older certificates of the same CA keep trusting newer ones: rotation is
//! issuing again. Each service certificate names the service by its SPIFFE id (a URI SAN), and,
//! for tools such as grpcurl, by the DNS names `<service>` and `localhost` and the address
//! `127.0.0.1`. Files are written whole and renamed into place, keys readable by their owner only.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;
use time::OffsetDateTime;

use super::{CA_FILE, TlsError, outside_id, spiffe_id};

/// The CA's key file, beside [`CA_FILE`].
pub const CA_KEY_FILE: &str = "ca.key";

/// How long a CA made here is valid.
const CA_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// How far back a certificate's validity starts, for clocks a little behind.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

fn issue_error(error: impl std::fmt::Display) -> TlsError {
    TlsError::Issue(error.to_string())
}

/// The CA's parameters: the same each time, so that a CA key read back signs as the CA it made.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Orderly development CA");
    name.push(DnType::OrganizationName, "Orderly");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Writes a certificate for each of `services` into `dir`, valid for `lifetime`, signed by the CA
/// in `dir` (made first if there is none, if it expires within twice `lifetime`, or if `new_ca`).
pub fn issue(
    dir: &Path,
    services: &[&str],
    lifetime: Duration,
    new_ca: bool,
) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    let keep_ca = !new_ca && ca_outlives(&dir.join(CA_FILE), lifetime);
    let ca_key = match read_ca_key(dir) {
        Ok(key) if keep_ca => key,
        _ => make_ca(dir)?,
    };
    let issuer = Issuer::new(ca_params(), ca_key);
    for service in services {
        write_certificate(dir, &issuer, service, &spiffe_id(service), lifetime)?;
    }
    Ok(())
}

/// Writes a certificate for each of `programs` outside the suite into `dir` (named
/// `spiffe://orderly.local/client/<name>`, see [`super::outside_id`]), valid for `lifetime`,
/// signed by the CA already in `dir`: a new CA would be one no server trusts.
pub fn issue_outside(dir: &Path, programs: &[&str], lifetime: Duration) -> Result<(), TlsError> {
    let ca_key = read_ca_key(dir)?;
    let issuer = Issuer::new(ca_params(), ca_key);
    for program in programs {
        write_certificate(dir, &issuer, program, &outside_id(program), lifetime)?;
    }
    Ok(())
}

/// The CA key in `dir`.
fn read_ca_key(dir: &Path) -> Result<KeyPair, TlsError> {
    let path = dir.join(CA_KEY_FILE);
    let pem = std::fs::read_to_string(&path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(issue_error)?;
    KeyPair::try_from(&der).map_err(issue_error)
}

/// Makes a CA in `dir` (`ca.pem`, `ca.key`) and returns its key.
fn make_ca(dir: &Path) -> Result<KeyPair, TlsError> {
    let now = OffsetDateTime::now_utc();
    let key = KeyPair::generate().map_err(issue_error)?;
    let mut params = ca_params();
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_LIFETIME;
    let ca = params.self_signed(&key).map_err(issue_error)?;
    write(
        &dir.join(CA_KEY_FILE),
        &pem("PRIVATE KEY", &key.serialize_der()),
        true,
    )?;
    write(&dir.join(CA_FILE), &pem("CERTIFICATE", ca.der()), false)?;
    Ok(key)
}

/// Writes `<name>.pem` and `<name>.key` into `dir`: a certificate for client and server use
/// naming `spiffe` (and, for tools such as grpcurl, `name`, `localhost` and 127.0.0.1), signed
/// by `issuer`, valid for `lifetime`.
fn write_certificate(
    dir: &Path,
    issuer: &Issuer<'_, KeyPair>,
    name: &str,
    spiffe: &str,
    lifetime: Duration,
) -> Result<(), TlsError> {
    let now = OffsetDateTime::now_utc();
    let key = KeyPair::generate().map_err(issue_error)?;
    let mut params = CertificateParams::default();
    let mut distinguished = DistinguishedName::new();
    distinguished.push(DnType::CommonName, name);
    params.distinguished_name = distinguished;
    params.subject_alt_names = vec![
        SanType::URI(spiffe.try_into().map_err(issue_error)?),
        SanType::DnsName(name.try_into().map_err(issue_error)?),
        SanType::DnsName("localhost".try_into().map_err(issue_error)?),
        SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = now + lifetime;
    let certificate = params.signed_by(&key, issuer).map_err(issue_error)?;
    write(
        &dir.join(format!("{name}.key")),
        &pem("PRIVATE KEY", &key.serialize_der()),
        true,
    )?;
    write(
        &dir.join(format!("{name}.pem")),
        &pem("CERTIFICATE", certificate.der()),
        false,
    )
}

/// `der` as a PEM block labelled `label` (written here: rcgen's PEM feature would bring a second
/// base64 crate into the build for these few lines).
fn pem(label: &str, der: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Whether the CA certificate at `path` exists and stays valid for twice `lifetime` more: long
/// enough for certificates issued now and the next ones. A CA about to expire is replaced.
fn ca_outlives(path: &Path, lifetime: Duration) -> bool {
    let Ok(certificates) = super::files::certificates(path) else {
        return false;
    };
    let Some(not_after) = certificates
        .first()
        .and_then(|ca| super::identity::not_after(ca))
    else {
        return false;
    };
    not_after
        .duration_since(std::time::SystemTime::now())
        .is_ok_and(|left| left > lifetime * 2)
}

/// Writes `contents` to `path` whole: into a temporary file beside it, then renamed over it.
fn write(path: &Path, contents: &str, private: bool) -> Result<(), TlsError> {
    let failed = |source| TlsError::Read {
        path: path.display().to_string(),
        source,
    };
    let temporary = path.with_extension("tmp");
    {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(if private { 0o600 } else { 0o644 });
        }
        let mut file = options.open(&temporary).map_err(failed)?;
        file.write_all(contents.as_bytes()).map_err(failed)?;
        file.sync_all().map_err(failed)?;
    }
    std::fs::rename(&temporary, path).map_err(failed)
}
