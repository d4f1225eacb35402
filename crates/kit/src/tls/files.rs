//! A service's TLS material, from a directory of PEM files, read again when they change: the CA
//! (`ca.pem`), and the service's certificate chain and key (`<name>.pem`, `<name>.key`).
//!
//! The files are looked at (their modification times and sizes) at most once a second, when a
//! connection is accepted or dialled; when any changed, the configurations are built again and
//! used for new connections, while connections already open keep the one they were made with. A
//! set of files that does not make a configuration (written halfway, a key that does not match
//! its certificate) is skipped with a warning, and the previous one stays in use.
//!
//! Each load sets `orderly_tls_certificate_expiry_seconds{certificate}` (the service's name, or
//! `ca`) to the certificate's `notAfter`, as Unix seconds: alert on it minus `time()`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::{CA_FILE, TlsError, identity, provider, spiffe_id};

/// How often the files are looked at for changes, at most.
const RECHECK: Duration = Duration::from_secs(1);

/// The protocol every hop speaks inside TLS.
const ALPN_H2: &[u8] = b"h2";

/// One service's identity: its TLS configurations as a server and as a client, kept in step with
/// the files they were read from. Clones share them.
#[derive(Debug, Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    name: String,
    state: RwLock<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    stamp: Stamp,
    checked: Instant,
}

/// The modification times and sizes of the three files: what tells that they changed.
type Stamp = [Option<(SystemTime, u64)>; 3];

impl Identity {
    /// The identity of service `name` from the PEM files in `dir`: they must exist, chain to the
    /// CA, and the certificate must name `spiffe://orderly.local/service/<name>`.
    pub fn load(dir: impl Into<PathBuf>, name: &str) -> Result<Self, TlsError> {
        let dir = dir.into();
        let stamp = stamp(&dir, name);
        let (server, client) = build(&dir, name)?;
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                name: name.to_owned(),
                state: RwLock::new(Loaded {
                    server,
                    client,
                    stamp,
                    checked: Instant::now(),
                }),
            }),
        })
    }

    /// The service this identity is.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The directory its files are in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The configuration to accept a connection with: the service's certificate, and a client
    /// certificate chaining to the CA demanded.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.current(|loaded| loaded.server.clone())
    }

    /// The configuration to dial another service with: the service's certificate as the client's,
    /// and the server checked against the CA and the service it is meant to be
    /// ([`super::client::ServerIdentity`]).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.current(|loaded| loaded.client.clone())
    }

    /// `pick` of the configurations in use, after reading the files again if they changed.
    fn current<T>(&self, pick: impl Fn(&Loaded) -> T) -> T {
        {
            let loaded = self.inner.state.read().unwrap_or_else(|p| p.into_inner());
            if loaded.checked.elapsed() < RECHECK {
                return pick(&loaded);
            }
        }
        let mut loaded = self.inner.state.write().unwrap_or_else(|p| p.into_inner());
        loaded.checked = Instant::now();
        let stamp = stamp(&self.inner.dir, &self.inner.name);
        if stamp != loaded.stamp {
            match build(&self.inner.dir, &self.inner.name) {
                Ok((server, client)) => {
                    tracing::info!(dir = %self.inner.dir.display(), service = %self.inner.name,
                        "TLS certificates changed: new connections use them");
                    loaded.server = server;
                    loaded.client = client;
                    loaded.stamp = stamp;
                }
                Err(error) => tracing::warn!(%error, service = %self.inner.name,
                    "TLS certificates changed but cannot be used; keeping the ones read before"),
            }
        }
        pick(&loaded)
    }
}

/// The paths of the CA, certificate and key files of `name` under `dir`.
pub fn paths(dir: &Path, name: &str) -> [PathBuf; 3] {
    [
        dir.join(CA_FILE),
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    ]
}

fn stamp(dir: &Path, name: &str) -> Stamp {
    paths(dir, name).map(|path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// The certificates of the PEM file at `path`; at least one.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certificates: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certificates.is_empty() {
        return Err(TlsError::Missing {
            path: path.display().to_string(),
            what: "PEM certificate",
        });
    }
    Ok(certificates)
}

/// `certificates` as a root store.
fn roots(certificates: &[CertificateDer<'static>]) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate.clone())?;
    }
    Ok(Arc::new(roots))
}

/// Both configurations of service `name` from the files in `dir`.
fn build(dir: &Path, name: &str) -> Result<(Arc<ServerConfig>, Arc<ClientConfig>), TlsError> {
    let [ca, cert, key] = paths(dir, name);
    let authorities = certificates(&ca)?;
    let roots = roots(&authorities)?;
    let chain = certificates(&cert)?;
    let key = PrivateKeyDer::from_pem_slice(&read(&key)?).map_err(|_| TlsError::Missing {
        path: key.display().to_string(),
        what: "PEM private key",
    })?;
    let found = identity::spiffe_ids(&chain[0]);
    if identity::service_among(&found) != Some(name) {
        return Err(TlsError::WrongIdentity {
            path: cert.display().to_string(),
            expected: spiffe_id(name),
            found: found.into_iter().next(),
        });
    }
    let versions = &[&rustls::version::TLS13];

    let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider()).build()?;
    let mut server = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .with_client_cert_verifier(clients)
        .with_single_cert(chain.clone(), key.clone_key())?;
    server.alpn_protocols = vec![ALPN_H2.to_vec()];

    let servers = super::client::ServerIdentity::new(roots)?;
    let mut client = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(servers))
        .with_client_auth_cert(chain.clone(), key)?;
    client.alpn_protocols = vec![ALPN_H2.to_vec()];

    gauge_expiry(name, &chain[0]);
    gauge_expiry("ca", &authorities[0]);
    Ok((Arc::new(server), Arc::new(client)))
}

/// Sets `orderly_tls_certificate_expiry_seconds{certificate}` to `der`'s `notAfter`.
fn gauge_expiry(certificate: &str, der: &[u8]) {
    let Some(not_after) = identity::not_after(der) else {
        return;
    };
    let seconds = not_after
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    metrics::gauge!("orderly_tls_certificate_expiry_seconds", "certificate" => certificate.to_owned())
        .set(seconds);
}
