//! Keys from a JWKS URL, served over HTTPS on loopback by a certificate of a test CA: fetched at
//! start, fetched again when a token names a key the set lacks (a burst of such tokens makes one
//! fetch, not one each), and a URL that is neither https nor loopback is refused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orderly_kit::auth::AuthError;
use orderly_kit::auth::fetch::{FetchError, Fetcher};
use orderly_kit::auth::remote::JwksUrl;
use orderly_kit::auth::signing::{SigningKey, TokenSpec};
use orderly_kit::auth::verify::Verifier;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const ISSUER: &str = "https://issuer.test";

/// An HTTPS server on loopback answering every request with the current `document`; counts
/// the requests. Its certificate is the `users` one of a fresh CA (it names `localhost`).
struct Provider {
    url: String,
    document: Arc<Mutex<String>>,
    requests: Arc<AtomicUsize>,
    certs: tempfile::TempDir,
}

impl Provider {
    async fn start(document: String) -> Self {
        let certs = tempfile::tempdir().expect("temporary directory");
        orderly_kit::tls::issue::issue(certs.path(), &["users"], Duration::from_secs(600), false)
            .expect("certificates");
        let chain = orderly_kit::tls::files::certificates(&certs.path().join("users.pem"))
            .expect("certificate");
        let key = PrivateKeyDer::from_pem_file(certs.path().join("users.key")).expect("key");
        let config = rustls::ServerConfig::builder_with_provider(orderly_kit::tls::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let document = Arc::new(Mutex::new(document));
        let requests = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (document.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, served, counted) =
                    (acceptor.clone(), served.clone(), counted.clone());
                tokio::spawn(async move {
                    let Ok(mut stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let body = served.lock().expect("document").clone();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self {
            url: format!("https://localhost:{port}/.well-known/jwks.json"),
            document,
            requests,
            certs,
        }
    }

    fn fetcher(&self) -> Fetcher {
        let ca = self.certs.path().join("ca.pem");
        Fetcher::new(&self.url, Some(&ca), Duration::from_secs(5)).expect("fetcher")
    }
}

fn token(key: &SigningKey) -> String {
    key.token(&TokenSpec {
        subject: "u1".into(),
        roles: vec![],
        issuer: ISSUER.into(),
        audience: "orderly".into(),
        ttl: Duration::from_secs(600),
    })
    .expect("token")
}

#[tokio::test]
async fn keys_are_fetched_at_start_and_again_once_for_a_burst_of_unknown_keys() {
    let first = SigningKey::generate().expect("key");
    let provider = Provider::start(first.jwks()).await;
    let keys = JwksUrl::fetch_at_most_every(provider.fetcher(), Duration::from_millis(300))
        .await
        .expect("fetched at start");
    assert_eq!(provider.requests.load(Ordering::SeqCst), 1);
    let verifier = Verifier::new(keys, ISSUER, "orderly");
    assert_eq!(
        verifier
            .token(&token(&first))
            .expect("a key of the set")
            .subject,
        "u1"
    );

    // Rotation: the provider now publishes a second key, which signs new tokens.
    let second = SigningKey::generate().expect("key");
    *provider.document.lock().expect("document") = second.jwks();
    let rotated = token(&second);
    let started = Instant::now();
    for _ in 0..50 {
        assert_eq!(verifier.token(&rotated).err(), Some(AuthError::Invalid));
    }
    loop {
        match verifier.token(&rotated) {
            Ok(caller) => break assert_eq!(caller.subject, "u1"),
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("the new key was never fetched: {error}"),
        }
    }
    assert_eq!(
        provider.requests.load(Ordering::SeqCst),
        2,
        "51 tokens naming an unknown key made one fetch"
    );
}

#[test]
fn a_jwks_url_must_be_https_or_loopback() {
    let timeout = Duration::from_secs(1);
    assert!(matches!(
        Fetcher::new("http://idp.example.com/jwks.json", None, timeout),
        Err(FetchError::Url(_))
    ));
    assert!(matches!(
        Fetcher::new("ftp://idp.example.com/jwks.json", None, timeout),
        Err(FetchError::Url(_))
    ));
    assert!(Fetcher::new("http://127.0.0.1:8081/jwks.json", None, timeout).is_ok());
}
