//! Mutual TLS between services, and the identity each certificate gives its holder.
//!
//! Every service holds a certificate signed by the cluster's CA that names it by a URI SAN,
//! `spiffe://orderly.local/service/<name>` ([`spiffe_id`]). Servers demand such a certificate of
//! every client and know which service is calling ([`server::Peer`]); clients check that the server
//! they reached holds the certificate of the service they meant to call ([`client`]). Which
//! services may call which method is each service's rule table ([`crate::auth::rules`]).
//!
//! Programs outside the suite (a shop's backend, a script) hold certificates of their own, naming
//! them `spiffe://orderly.local/client/<name>` ([`outside_id`]): the CA vouches for them, so they
//! get past the handshake and may call what the tables open to outside programs (what the gateway
//! may call), but they are not services: nothing they claim about other clients is believed.
//!
//! - [`files`]: a directory of PEM files (`ca.pem`, `<name>.pem`, `<name>.key`) read again when
//!   they change, so certificates rotate without a restart; calls in flight keep their connection.
//! - [`identity`]: what a certificate says: its service and its expiry.
//! - [`server`]: the handshake of accepted connections, and the caller's identity per call.
//! - [`client`]: a connector that dials a service over TLS with this service's certificate.
//! - [`issue`]: a development CA and service certificates (`orderly certs`, `orderly up`).
//! - [`config`]: the `--tls-dir` and `--insecure-plaintext` flags.
//!
//! rustls with the `ring` provider: of rustls' two providers, it is the one built from a few C and
//! assembly files (aws-lc-rs compiles a whole C library with cmake: minutes on a cold build here).

pub mod client;
#[cfg(feature = "args")]
pub mod config;
pub mod files;
pub mod identity;
#[cfg(feature = "certs")]
pub mod issue;
#[cfg(feature = "server")]
pub mod server;

use std::sync::Arc;

pub use files::Identity;

/// The SPIFFE trust domain of Orderly's service identities.
pub const TRUST_DOMAIN: &str = "orderly.local";

/// The file holding the CA certificate(s) that every peer's certificate must chain to.
pub const CA_FILE: &str = "ca.pem";

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A file holds no PEM object of the kind expected.
    #[error("{path} holds no {what}")]
    Missing {
        /// The file.
        path: String,
        /// What it should hold (a certificate, a private key).
        what: &'static str,
    },
    /// The certificate does not name the service it is meant for.
    #[error("{path} does not name {expected} (found {found:?})")]
    WrongIdentity {
        /// The certificate file.
        path: String,
        /// The SPIFFE id it should carry.
        expected: String,
        /// What it carries.
        found: Option<String>,
    },
    /// rustls refused the material (a key that does not match its certificate, say).
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// The CA file's certificates cannot verify clients.
    #[error("the CA certificates cannot verify clients: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// Certificates could not be made or written.
    #[error("cannot issue certificates: {0}")]
    Issue(String),
}

/// The SPIFFE id of the service `name`: `spiffe://orderly.local/service/<name>`.
pub fn spiffe_id(name: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/service/{name}")
}

/// The SPIFFE id of the program `name` outside the suite: `spiffe://orderly.local/client/<name>`.
pub fn outside_id(name: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/client/{name}")
}

/// The outside program a SPIFFE id names, if it is one of this trust domain's client ids.
pub fn outside_of(spiffe_id: &str) -> Option<&str> {
    let name = spiffe_id
        .strip_prefix("spiffe://")?
        .strip_prefix(TRUST_DOMAIN)?
        .strip_prefix("/client/")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// The service a SPIFFE id names, if it is one of this trust domain's service ids.
pub fn service_of(spiffe_id: &str) -> Option<&str> {
    let name = spiffe_id
        .strip_prefix("spiffe://")?
        .strip_prefix(TRUST_DOMAIN)?
        .strip_prefix("/service/")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// The crypto provider every TLS configuration uses (ring), made once.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<rustls::crypto::CryptoProvider>> =
        std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spiffe_ids_round_trip_and_strangers_are_not_services() {
        assert_eq!(spiffe_id("orders"), "spiffe://orderly.local/service/orders");
        assert_eq!(service_of(&spiffe_id("orders")), Some("orders"));
        assert_eq!(service_of("spiffe://example.org/service/orders"), None);
        assert_eq!(service_of("spiffe://orderly.local/service/"), None);
        assert_eq!(service_of("spiffe://orderly.local/service/a/b"), None);
        assert_eq!(service_of("https://orderly.local/service/orders"), None);
    }

    #[test]
    fn outside_programs_are_named_apart_from_services() {
        assert_eq!(outside_id("shop"), "spiffe://orderly.local/client/shop");
        assert_eq!(outside_of(&outside_id("shop")), Some("shop"));
        assert_eq!(service_of(&outside_id("shop")), None, "not a service");
        assert_eq!(outside_of(&spiffe_id("orders")), None);
        assert_eq!(outside_of("spiffe://orderly.local/client/"), None);
        assert_eq!(outside_of("spiffe://example.org/client/shop"), None);
    }
}
