//! A bearer token to a [`Caller`]: signature by a key of the JWKS, with that key's algorithm only;
//! `iss` and `aud` as configured; `exp` and `nbf` with a small allowance for clock skew.
//!
//! Tokens verified recently are remembered, by the SHA-256 of their exact bytes, until the key set
//! changes: a signature check costs as much as a whole call or more (the README's "Who may call
//! what" has the figures), and a client sends the same token on every call until it expires. A remembered token answers exactly as checking it again would:
//! the same bytes under the same keys verify the same way, and its `exp` and `nbf` are checked
//! against the clock on every call. A token never verified, or changed in one byte, is checked in
//! full; a rotated JWKS forgets everything.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::keys::Jwks;
use super::{AuthError, Caller};

/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;

/// Verified tokens remembered at most; when full, the memory starts again empty.
const REMEMBERED: usize = 16_384;

/// What a service accepts tokens from and for.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Jwks,
    verified: Arc<Mutex<HashMap<[u8; 32], Verified>>>,
    /// One validation per algorithm a key may have, built once.
    validations: [(Algorithm, Validation); 3],
}

/// The claims Orderly reads; the standard ones are checked by the validation.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    roles: Vec<String>,
    exp: u64,
    #[serde(default)]
    nbf: u64,
}

/// A token that verified under key set `generation`, and its time bounds.
#[derive(Debug, Clone)]
struct Verified {
    generation: u64,
    caller: Caller,
    exp: u64,
    nbf: u64,
}

impl Verifier {
    /// Tokens signed by a key of `keys`, issued by `issuer` for `audience`.
    pub fn new(
        keys: impl Into<Jwks>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        super::crypto::install();
        let (issuer, audience) = (issuer.into(), audience.into());
        let validation = |algorithm| {
            let mut validation = Validation::new(algorithm);
            validation.leeway = LEEWAY_SECONDS;
            validation.validate_nbf = true;
            validation.set_issuer(&[&issuer]);
            validation.set_audience(&[&audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            (algorithm, validation)
        };
        Self {
            keys: keys.into(),
            verified: Arc::default(),
            validations: [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA].map(validation),
        }
    }

    /// The caller an `authorization` header value names (`Bearer <token>`).
    pub fn authorization(&self, header: Option<&[u8]>) -> Result<Caller, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let token = std::str::from_utf8(header)
            .ok()
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::Invalid)?;
        self.token(token)
    }

    /// The caller `token` names, if it is valid.
    pub fn token(&self, token: &str) -> Result<Caller, AuthError> {
        let generation = self.keys.generation();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let remembered = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&digest)
            .filter(|known| known.generation == generation)
            .cloned();
        if let Some(known) = remembered {
            // The time checks jsonwebtoken makes, on every call.
            let now = jsonwebtoken::get_current_timestamp();
            if known.exp.saturating_add(LEEWAY_SECONDS) < now {
                return Err(AuthError::Expired);
            }
            if known.nbf > now.saturating_add(LEEWAY_SECONDS) {
                return Err(invalid_because("not valid yet"));
            }
            return Ok(known.caller);
        }
        let (caller, exp, nbf) = self.check(token)?;
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= REMEMBERED {
            verified.clear();
        }
        verified.insert(
            digest,
            Verified {
                generation,
                caller: caller.clone(),
                exp,
                nbf,
            },
        );
        Ok(caller)
    }

    /// Verifies `token` in full: its caller, `exp` and `nbf`.
    fn check(&self, token: &str) -> Result<(Caller, u64, u64), AuthError> {
        let header = decode_header(token).map_err(|error| invalid("header", &error))?;
        if names_critical_extensions(token) {
            // RFC 7515 §4.1.11: a token whose `crit` lists extensions the verifier does not
            // understand must be refused; Orderly understands none.
            return Err(invalid_because(
                "the token's header lists critical extensions",
            ));
        }
        let key = self
            .keys
            .key(header.kid.as_deref())
            .ok_or_else(|| invalid_because("no key of the JWKS has the token's kid"))?;
        let (_, validation) = self
            .validations
            .iter()
            .find(|(algorithm, _)| *algorithm == key.algorithm)
            .ok_or_else(|| invalid_because("the key's algorithm is not one Orderly verifies"))?;
        match decode::<Claims>(token, &key.key, validation) {
            Ok(data) => Ok((
                Caller {
                    subject: data.claims.sub,
                    roles: data.claims.roles,
                },
                data.claims.exp,
                data.claims.nbf,
            )),
            Err(error) if matches!(error.kind(), ErrorKind::ExpiredSignature) => {
                Err(AuthError::Expired)
            }
            Err(error) => Err(invalid("claims or signature", &error)),
        }
    }
}

/// Whether the token's header has a `crit` parameter (jsonwebtoken's `Header` ignores it).
fn names_critical_extensions(token: &str) -> bool {
    use base64::Engine as _;
    let Some(segment) = token.split('.').next() else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .ok()
        .and_then(|json| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&json).ok()
        })
        .is_some_and(|header| header.contains_key("crit"))
}

/// An invalid token, with why in the debug log only: callers learn the reason, not the check.
fn invalid(part: &str, error: &jsonwebtoken::errors::Error) -> AuthError {
    tracing::debug!(part, %error, "bearer token refused");
    AuthError::Invalid
}

fn invalid_because(why: &'static str) -> AuthError {
    tracing::debug!(why, "bearer token refused");
    AuthError::Invalid
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header};

    use super::*;
    use crate::auth::signing::{SigningKey, TokenSpec};

    const ISSUER: &str = "https://issuer.test";
    const AUDIENCE: &str = "orderly";

    fn spec(subject: &str) -> TokenSpec {
        TokenSpec {
            subject: subject.into(),
            roles: vec![],
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            ttl: Duration::from_secs(600),
        }
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    /// A verifier over a JWKS file holding `key`, and the directory it lives in.
    fn verifier(key: &SigningKey) -> (tempfile::TempDir, Verifier) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, key.jwks()).expect("write JWKS");
        let keys = super::super::keys::JwksFile::open(&path).expect("JWKS");
        (dir, Verifier::new(keys, ISSUER, AUDIENCE))
    }

    fn bearer(token: &str) -> Vec<u8> {
        format!("Bearer {token}").into_bytes()
    }

    #[test]
    fn a_valid_token_names_its_caller_and_roles() {
        let key = SigningKey::generate().expect("key");
        let (_dir, verifier) = verifier(&key);
        let mut admin = spec("u1");
        admin.roles = vec!["admin".into()];
        let token = key.token(&admin).expect("token");
        let caller = verifier
            .authorization(Some(&bearer(&token)))
            .expect("valid");
        assert_eq!(caller.subject, "u1");
        assert!(caller.is_admin());
        assert_eq!(verifier.authorization(None), Err(AuthError::Missing));
        let basic = format!("Basic {token}").into_bytes();
        assert_eq!(
            verifier.authorization(Some(&basic)),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn expired_and_not_yet_valid_tokens_are_refused_beyond_the_skew() {
        let key = SigningKey::generate().expect("key");
        let (_dir, verifier) = verifier(&key);
        let ten_minutes = spec("u1");
        let expired = key
            .token_at(&ten_minutes, now() - 600 - LEEWAY_SECONDS - 5)
            .expect("token");
        assert_eq!(verifier.token(&expired), Err(AuthError::Expired));
        let just_expired = key.token_at(&ten_minutes, now() - 605).expect("token");
        assert!(verifier.token(&just_expired).is_ok(), "within the skew");
        let future = key
            .token_at(&ten_minutes, now() + LEEWAY_SECONDS + 60)
            .expect("token");
        assert_eq!(verifier.token(&future), Err(AuthError::Invalid));
    }

    #[test]
    fn tokens_of_another_issuer_or_audience_are_refused() {
        let key = SigningKey::generate().expect("key");
        let (_dir, verifier) = verifier(&key);
        let mut other_issuer = spec("u1");
        other_issuer.issuer = "https://evil.test".into();
        let mut other_audience = spec("u1");
        other_audience.audience = "someone-else".into();
        for spec in [other_issuer, other_audience] {
            let token = key.token(&spec).expect("token");
            assert_eq!(verifier.token(&token), Err(AuthError::Invalid));
        }
    }

    #[test]
    fn alg_none_and_hmac_signed_with_the_public_key_are_refused() {
        let key = SigningKey::generate().expect("key");
        let (_dir, verifier) = verifier(&key);
        let claims = serde_json::json!({
            "sub": "u1", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600,
        });
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, key.kid())),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
        );
        assert_eq!(verifier.token(&none), Err(AuthError::Invalid));

        // The key confusion attack: HS256 keyed with the public key, which anyone can read.
        let jwks: serde_json::Value = serde_json::from_str(&key.jwks()).expect("JWKS");
        let public = URL_SAFE_NO_PAD
            .decode(jwks["keys"][0]["x"].as_str().expect("x"))
            .expect("base64");
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid().to_owned());
        for secret in [public.as_slice(), key.jwks().as_bytes()] {
            let forged = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
                .expect("forge");
            assert_eq!(verifier.token(&forged), Err(AuthError::Invalid));
        }
    }

    #[test]
    fn a_token_whose_header_names_critical_extensions_is_refused() {
        let seed = [7u8; 32];
        let key = SigningKey::from_seed(seed);
        let (_dir, verifier) = verifier(&key);
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).expect("seed");
        let claims = serde_json::json!({
            "sub": "u1", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600,
        });
        let signed = |header: serde_json::Value| {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let signature = pair.sign(input.as_bytes());
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
        };
        let plain = signed(serde_json::json!({"alg": "EdDSA", "kid": key.kid()}));
        assert_eq!(verifier.token(&plain).map(|c| c.subject), Ok("u1".into()));
        let critical = signed(serde_json::json!({
            "alg": "EdDSA", "kid": key.kid(), "crit": ["urn:example:must-understand"],
            "urn:example:must-understand": true,
        }));
        assert_eq!(verifier.token(&critical), Err(AuthError::Invalid));
    }

    #[test]
    fn an_unknown_kid_is_found_once_the_jwks_file_has_it() {
        let old = SigningKey::generate().expect("key");
        let (dir, verifier) = verifier(&old);
        let new = SigningKey::generate().expect("key");
        let token = new.token(&spec("u1")).expect("token");
        assert_eq!(verifier.token(&token), Err(AuthError::Invalid));
        // Rotation: the file now lists both keys.
        let mut both: serde_json::Value = serde_json::from_str(&old.jwks()).expect("JWKS");
        let added: serde_json::Value = serde_json::from_str(&new.jwks()).expect("JWKS");
        both["keys"]
            .as_array_mut()
            .expect("keys")
            .push(added["keys"][0].clone());
        std::fs::write(dir.path().join("jwks.json"), both.to_string()).expect("rotate");
        assert_eq!(verifier.token(&token).map(|c| c.subject), Ok("u1".into()));
        let still = old.token(&spec("u2")).expect("token");
        assert_eq!(verifier.token(&still).map(|c| c.subject), Ok("u2".into()));
    }

    #[test]
    fn a_remembered_token_is_refused_once_its_key_leaves_the_jwks() {
        let old = SigningKey::generate().expect("key");
        let (dir, verifier) = verifier(&old);
        let token = old.token(&spec("u1")).expect("token");
        assert!(verifier.token(&token).is_ok());
        assert!(verifier.token(&token).is_ok(), "remembered");
        let new = SigningKey::generate().expect("key");
        std::fs::write(dir.path().join("jwks.json"), new.jwks()).expect("rotate");
        // The file is looked at once a second while every token names a known key.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(verifier.token(&token), Err(AuthError::Invalid));
    }
}
