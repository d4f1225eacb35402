//! One HTTP GET of a small document (a JWKS) from an `https://` URL, or `http://` on loopback:
//! hyper's HTTP/1.1 client over a rustls connection that trusts the system's CA certificates and
//! any given beside them.
//!
//! A connection per fetch, no pool: a JWKS is fetched at start and then at most once a minute.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use tokio::net::TcpStream;

/// The largest document fetched.
const MAX_BYTES: usize = 1024 * 1024;

/// Why a document could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not an `https://` URL (or `http://` to a loopback host).
    #[error("{0}: use an https:// URL (http:// only for 127.0.0.1, ::1 or localhost)")]
    Url(String),
    /// The connection, the TLS handshake or the exchange failed.
    #[error("{url}: {detail}")]
    Failed {
        /// The URL.
        url: String,
        /// What failed.
        detail: String,
    },
    /// No answer within the timeout.
    #[error("{0}: no answer in time")]
    Timeout(String),
    /// The answer was not 200 OK.
    #[error("{url}: answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: http::StatusCode,
    },
    /// The CA certificates to trust could not be read.
    #[error("cannot read CA certificates: {0}")]
    Roots(String),
}

/// Where documents are fetched from, and whom to trust.
#[derive(Debug, Clone)]
pub struct Fetcher {
    uri: http::Uri,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
}

impl Fetcher {
    /// Fetches from `url`, trusting the system's CA certificates and those in the PEM file
    /// `extra_ca`, within `timeout` per fetch.
    pub fn new(
        url: &str,
        extra_ca: Option<&std::path::Path>,
        timeout: Duration,
    ) -> Result<Self, FetchError> {
        let bad = || FetchError::Url(url.to_owned());
        let uri: http::Uri = url.parse().map_err(|_| bad())?;
        let host = uri.host().ok_or_else(bad)?;
        let tls = match uri.scheme_str() {
            Some("https") => Some(Arc::new(client_config(extra_ca)?)),
            Some("http") if matches!(host, "127.0.0.1" | "[::1]" | "localhost") => None,
            _ => return Err(bad()),
        };
        Ok(Self { uri, tls, timeout })
    }

    /// The URL fetched.
    pub fn url(&self) -> String {
        self.uri.to_string()
    }

    /// The body of a GET of the URL, if it answered 200.
    pub async fn get(&self) -> Result<Vec<u8>, FetchError> {
        tokio::time::timeout(self.timeout, self.exchange())
            .await
            .map_err(|_| FetchError::Timeout(self.url()))?
    }

    async fn exchange(&self) -> Result<Vec<u8>, FetchError> {
        let failed = |detail: &dyn std::fmt::Display| FetchError::Failed {
            url: self.url(),
            detail: detail.to_string(),
        };
        let host = self.uri.host().unwrap_or_default();
        let default_port = if self.tls.is_some() { 443 } else { 80 };
        let port = self.uri.port_u16().unwrap_or(default_port);
        let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| failed(&e))?;
        let request = http::Request::get(self.uri.clone())
            .header(http::header::HOST, host)
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::<hyper::body::Bytes>::new())
            .map_err(|e| failed(&e))?;
        let response = match &self.tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|e| failed(&e))?;
                let stream = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| failed(&e))?;
                send(TokioIo::new(stream), request).await
            }
            None => send(TokioIo::new(tcp), request).await,
        }
        .map_err(|e| failed(&e))?;
        if response.status() != http::StatusCode::OK {
            return Err(FetchError::Status {
                url: self.url(),
                status: response.status(),
            });
        }
        let body = Limited::new(response.into_body(), MAX_BYTES)
            .collect()
            .await
            .map_err(|e| failed(&e))?;
        Ok(body.to_bytes().to_vec())
    }
}

/// Sends `request` on a new HTTP/1.1 connection over `io`.
async fn send<I>(
    io: I,
    request: http::Request<Empty<hyper::body::Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender.send_request(request).await
}

/// A TLS client configuration trusting the system's CA certificates and those of `extra_ca`.
fn client_config(extra_ca: Option<&std::path::Path>) -> Result<rustls::ClientConfig, FetchError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_ca {
        let certificates =
            crate::tls::files::certificates(path).map_err(|e| FetchError::Roots(e.to_string()))?;
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|e| FetchError::Roots(e.to_string()))?;
        }
    }
    if roots.is_empty() {
        return Err(FetchError::Roots(
            "no system CA certificates found; give --jwks-ca".into(),
        ));
    }
    rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| FetchError::Roots(e.to_string()))
}
