//! Dialling a service over mutual TLS: a connector for tonic channels that opens the TCP
//! connection, shakes hands with this service's certificate, and accepts the server only if its
//! certificate chains to the CA and names the service being called.
//!
//! The service being called travels as the TLS server name (`users`, `orders`, ...), so one
//! client configuration serves every downstream; the check is on the certificate's SPIFFE id, not
//! on DNS names, which differ from one deployment to the next (`dns://users.orderly.svc:50051`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{Identity, identity, provider, spiffe_id};

/// Checks a server's certificate: it chains to the CA, and its SPIFFE id names the service the
/// client meant to call (the TLS server name it was given).
#[derive(Debug)]
pub struct ServerIdentity {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerIdentity {
    /// Servers whose certificates chain to `roots`.
    pub fn new(roots: Arc<RootCertStore>) -> Result<Self, rustls::Error> {
        Ok(Self {
            roots,
            algorithms: provider().signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for ServerIdentity {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        let expected = match server_name {
            ServerName::DnsName(name) => name.as_ref(),
            _ => return Err(rustls::CertificateError::NotValidForName.into()),
        };
        if identity::service(end_entity).as_deref() == Some(expected) {
            Ok(ServerCertVerified::assertion())
        } else {
            tracing::warn!(expected = %spiffe_id(expected), found = ?identity::spiffe_ids(end_entity),
                "the server's certificate names another service");
            Err(rustls::CertificateError::NotValidForName.into())
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A tonic connector (`Endpoint::connect_with_connector`) that dials `service` over TLS as
/// `identity`, whatever host and port the endpoint's URI names.
#[derive(Debug, Clone)]
pub struct Connector {
    identity: Identity,
    service: ServerName<'static>,
}

impl Connector {
    /// Dials the service `service` (its name, as in its certificate) as `identity`.
    pub fn new(
        identity: Identity,
        service: &str,
    ) -> Result<Self, rustls::pki_types::InvalidDnsNameError> {
        Ok(Self {
            identity,
            service: ServerName::try_from(service.to_owned())?,
        })
    }
}

impl tower::Service<http::Uri> for Connector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let tls = tokio_rustls::TlsConnector::from(self.identity.client_config());
        let service = self.service.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .unwrap_or_default()
                .trim_matches(['[', ']'])
                .to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let stream = tls.connect(service, tcp).await?;
            Ok(TokioIo::new(stream))
        })
    }
}
