//! The signatures behind jsonwebtoken, computed by `ring`: the library rustls already builds for
//! every TLS hop here.
//!
//! jsonwebtoken ships two backends, RustCrypto (pure Rust, but a second family of hash, big-number
//! and curve crates beside the ones sqlx and rustls use: 32 crates more in the workspace's graph)
//! and aws-lc-rs (a large C build); it also takes a provider of one's own, which this module is: a
//! few lines per algorithm over `ring`, a dependency Orderly has anyway, at a cost per check close
//! to RustCrypto's (the README has the figures). Verified tokens are remembered either way (see
//! `verify`).
//!
//! Verifiers exist for RS256, ES256 and EdDSA only, the algorithms Orderly accepts; HMAC is never
//! verified here (a key set's shared secrets are skipped before this, and this refuses them again).
//! Signers cover EdDSA (Orderly's development key), RS256, ES256 and HS256 — the last three for
//! tests that make tokens of other issuers, and forgeries.

use std::sync::Once;

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{Error as SigError, Signer, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair, RsaPublicKeyComponents,
    UnparsedPublicKey,
};

/// Makes `ring` jsonwebtoken's provider for this process. Every use of jsonwebtoken in the kit
/// calls it first; tests that sign tokens with jsonwebtoken directly call it too. Idempotent.
pub fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // Refused only if a provider was installed already, which then stays in use.
        let _ = PROVIDER.install_default();
    });
}

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(unsupported()),
        rsa_pub_components_from_public_key: |_| Err(unsupported()),
        ec_pub_components_from_private_key: ec_public_of_private,
        ed_pub_components_from_private_key: ed_public_of_private,
        compute_digest: digest,
    },
};

fn unsupported() -> Error {
    ErrorKind::InvalidAlgorithm.into()
}

/// A verifier of `algorithm` signatures by `key`.
fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if key.family() != algorithm.family() {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let public = match (algorithm, key.kind()) {
        (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e }) => Public::Rsa {
            n: n.clone(),
            e: e.clone(),
        },
        // A PKCS#1 RSAPublicKey, as `from_rsa_der`/`from_rsa_pem` hold it.
        (Algorithm::RS256, DecodingKeyKind::SecretOrDer(der)) => {
            Public::Encoded(&sig::RSA_PKCS1_2048_8192_SHA256, der.clone())
        }
        // The uncompressed point `from_ec_components` makes of a JWK's x and y.
        (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) => {
            Public::Encoded(&sig::ECDSA_P256_SHA256_FIXED, point.clone())
        }
        (Algorithm::EdDSA, DecodingKeyKind::SecretOrDer(raw)) => {
            Public::Encoded(&sig::ED25519, raw.clone())
        }
        _ => return Err(unsupported()),
    };
    Ok(Box::new(RingVerifier {
        algorithm: *algorithm,
        public,
    }))
}

/// A public key in the form `ring` verifies with.
enum Public {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Encoded(&'static dyn sig::VerificationAlgorithm, Vec<u8>),
}

struct RingVerifier {
    algorithm: Algorithm,
    public: Public,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), SigError> {
        let checked = match &self.public {
            Public::Rsa { n, e } => RsaPublicKeyComponents { n, e }.verify(
                &sig::RSA_PKCS1_2048_8192_SHA256,
                message,
                signature,
            ),
            Public::Encoded(algorithm, key) => {
                UnparsedPublicKey::new(*algorithm, key).verify(message, signature)
            }
        };
        checked.map_err(|_| SigError::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// A signer of `algorithm` signatures with `key` (PKCS#8 for EdDSA and ES256, PKCS#1 for RS256,
/// the secret for HS256).
fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if key.family() != algorithm.family() {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let bytes = key.as_bytes();
    let private = match algorithm {
        Algorithm::EdDSA => Private::Ed25519(
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes)
                .map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?,
        ),
        Algorithm::ES256 => Private::Ecdsa(
            EcdsaKeyPair::from_pkcs8(
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                bytes,
                &SystemRandom::new(),
            )
            .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?,
        ),
        Algorithm::RS256 => Private::Rsa(
            RsaKeyPair::from_der(bytes)
                .map_err(|e| Error::from(ErrorKind::InvalidRsaKey(e.to_string())))?,
        ),
        Algorithm::HS256 => Private::Hmac(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes)),
        _ => return Err(unsupported()),
    };
    Ok(Box::new(RingSigner {
        algorithm: *algorithm,
        private,
    }))
}

enum Private {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Hmac(ring::hmac::Key),
}

struct RingSigner {
    algorithm: Algorithm,
    private: Private,
}

impl Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, SigError> {
        match &self.private {
            Private::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Private::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|signed| signed.as_ref().to_vec())
                .map_err(|_| SigError::new()),
            Private::Rsa(pair) => {
                let mut signed = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &sig::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signed,
                )
                .map_err(|_| SigError::new())?;
                Ok(signed)
            }
            Private::Hmac(key) => Ok(ring::hmac::sign(key, message).as_ref().to_vec()),
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// The public point (x, y) of a P-256 private key in PKCS#8.
fn ec_public_of_private(
    pkcs8: &[u8],
    algorithm: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    if algorithm != Algorithm::ES256 {
        return Err(unsupported());
    }
    let pair = EcdsaKeyPair::from_pkcs8(
        &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?;
    // Uncompressed: 0x04, then x and y of 32 bytes each.
    let point = pair.public_key().as_ref();
    let (x, y) = point
        .get(1..)
        .ok_or(ErrorKind::InvalidEcdsaKey)?
        .split_at(32);
    Ok((EllipticCurve::P256, x.to_vec(), y.to_vec()))
}

/// The public key of an Ed25519 private key in PKCS#8.
fn ed_public_of_private(pkcs8: &[u8], curve: &EllipticCurve) -> Result<Vec<u8>> {
    if *curve != EllipticCurve::Ed25519 {
        return Err(unsupported());
    }
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
        .map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?;
    Ok(pair.public_key().as_ref().to_vec())
}

fn digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &ring::digest::SHA256,
        ThumbprintHash::SHA384 => &ring::digest::SHA384,
        ThumbprintHash::SHA512 => &ring::digest::SHA512,
        _ => return Err(unsupported()),
    };
    Ok(ring::digest::digest(algorithm, data).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use jsonwebtoken::Header;

    use super::*;
    use crate::auth::keys::JwksFile;
    use crate::auth::verify::Verifier;
    use crate::auth::{AuthError, Caller};

    /// A 2048-bit RSA key made for these tests alone (`openssl genrsa -traditional 2048`).
    const RSA_TEST_KEY: &str = include_str!("testdata/rs256-test-only.pem");

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A verifier over a JWKS file holding `jwk`.
    fn jwks_verifier(jwk: serde_json::Value) -> (tempfile::TempDir, Verifier) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, serde_json::json!({ "keys": [jwk] }).to_string()).expect("write");
        let keys = JwksFile::open(&path).expect("JWKS");
        (dir, Verifier::new(keys, "https://issuer.test", "orderly"))
    }

    fn token(algorithm: Algorithm, kid: &str, key: &EncodingKey) -> String {
        install();
        let mut header = Header::new(algorithm);
        header.kid = Some(kid.into());
        let now = jsonwebtoken::get_current_timestamp();
        let claims = serde_json::json!({
            "sub": "u1", "iss": "https://issuer.test", "aud": "orderly", "exp": now + 600
        });
        jsonwebtoken::encode(&header, &claims, key).expect("sign")
    }

    /// The same token with one byte of its signature changed.
    fn tampered(token: &str) -> String {
        let (signed, signature) = token.rsplit_once('.').expect("three parts");
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64");
        bytes[0] ^= 1;
        format!("{signed}.{}", b64(&bytes))
    }

    fn u1() -> Caller {
        Caller {
            subject: "u1".into(),
            roles: vec![],
        }
    }

    #[test]
    fn rs256_tokens_verify_by_the_modulus_and_exponent_of_a_jwk() {
        let der = STANDARD
            .decode(
                RSA_TEST_KEY
                    .lines()
                    .filter(|line| !line.starts_with("-----"))
                    .collect::<String>(),
            )
            .expect("PEM body");
        let pair = RsaKeyPair::from_der(&der).expect("RSA key");
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        let (_dir, verifier) = jwks_verifier(serde_json::json!({
            "kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig",
            "n": b64(&public.n), "e": b64(&public.e),
        }));
        let signed = token(Algorithm::RS256, "r1", &EncodingKey::from_rsa_der(&der));
        assert_eq!(verifier.token(&signed), Ok(u1()));
        assert_eq!(verifier.token(&tampered(&signed)), Err(AuthError::Invalid));
    }

    #[test]
    fn es256_tokens_verify_by_the_point_of_a_jwk() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("P-256 key");
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let (curve, x, y) = ec_public_of_private(pkcs8.as_ref(), Algorithm::ES256).expect("point");
        assert_eq!(curve, EllipticCurve::P256);
        let (_dir, verifier) = jwks_verifier(serde_json::json!({
            "kty": "EC", "kid": "e1", "alg": "ES256", "crv": "P-256", "x": b64(&x), "y": b64(&y),
        }));
        let signed = token(Algorithm::ES256, "e1", &key);
        assert_eq!(verifier.token(&signed), Ok(u1()));
        assert_eq!(verifier.token(&tampered(&signed)), Err(AuthError::Invalid));
    }

    #[test]
    fn hmac_is_never_verified_even_when_asked() {
        install();
        let key = DecodingKey::from_secret(b"a shared secret");
        assert!(verifier_of(Algorithm::HS256, &key).is_err());
        // And a key is used with its own algorithm only.
        let ed = DecodingKey::from_ed_components(&b64(&[7; 32])).expect("Ed25519 key");
        assert!(verifier_of(Algorithm::RS256, &ed).is_err());
    }

    fn verifier_of(algorithm: Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
        super::verifier(&algorithm, key)
    }
}
