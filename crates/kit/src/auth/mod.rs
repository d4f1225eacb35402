//! Who is calling: bearer JWTs verified against a JWKS, and each service's table of who may call
//! which method.
//!
//! - [`keys`]: the verification keys, from a JWKS file re-read when it changes. Asymmetric keys
//!   only (RS256, ES256, EdDSA): an HMAC key in the set is skipped, and a token is verified only
//!   with the algorithm its key is for, never the one its header names, so `alg: none` and the
//!   HS256-signed-with-the-public-key confusion cannot pass.
//! - [`remote`]: keys from a JWKS URL ([`fetch`]: the HTTPS GET), fetched again on rotation.
//! - [`verify`]: a token to a [`Caller`] (`iss`, `aud`, `exp` and `nbf` checked with a small skew).
//! - [`rules`]: a service's declarative table of methods and who may call them, and the tower layer
//!   that applies it to every call of a gRPC service, unary or streaming, before its handler runs.
//! - [`signing`]: the development signing key `orderly up` makes, its JWKS, and tokens signed by it.
//!
//! A refusal says only which of a few reasons applies (`google.rpc.ErrorInfo`, domain
//! [`DOMAIN`]): `TOKEN_MISSING`, `TOKEN_EXPIRED`, `TOKEN_INVALID` (UNAUTHENTICATED); `NOT_OWNER`,
//! `MISSING_ROLE`, `CALLER_NOT_ALLOWED` (PERMISSION_DENIED). Which check failed beyond that goes to the debug log only.

#[cfg(feature = "args")]
pub mod config;
pub mod crypto;
pub mod fetch;
pub mod keys;
pub mod remote;
pub mod rules;
pub mod signing;
pub mod verify;

use orderly::error::Reason;
use tonic::{Code, Status};

/// The ErrorInfo domain of authentication and authorization refusals.
pub const DOMAIN: &str = orderly::error::domain::AUTH;

/// The issuer of the tokens the development key signs (`orderly up`, `orderly token`).
pub const DEV_ISSUER: &str = "urn:orderly:dev";

/// The audience Orderly's services accept tokens for, unless configured otherwise.
pub const AUDIENCE: &str = "orderly";

/// Where under `orderly up`'s data directory the development key and its JWKS live.
pub const DEV_KEY_DIR: &str = "auth";

/// The role that may act on any user's data.
pub const ADMIN: &str = "admin";

/// The authenticated caller of a call: the token's subject and roles. Put in the request's
/// extensions by [`rules::Authenticate`] for handlers to check ownership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`: a user id.
    pub subject: String,
    /// The token's `roles`.
    pub roles: Vec<String>,
}

impl Caller {
    /// Whether the caller has the `admin` role.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|role| role == ADMIN)
    }

    /// Allows acting on `user_id`'s data: the caller is that user, or an admin.
    pub fn may_act_for(&self, user_id: &str) -> Result<(), AuthError> {
        if self.subject == user_id || self.is_admin() {
            Ok(())
        } else {
            Err(AuthError::NotOwner)
        }
    }

    /// The caller of `request`, as [`rules::Authenticate`] left it; `None` on a method open to
    /// anyone called without a token, or on a server without authentication.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<&Self> {
        request.extensions().get::<Self>()
    }
}

/// Who a call was made by, passed on to the calls a service makes on its caller's behalf: the
/// caller's credentials, so that each downstream service checks the same user's rights itself
/// rather than trusting whoever called it, and, for a caller without a token, its address; both
/// so that downstream rate limits count the end caller, never the service in between (see
/// [`crate::rate::layer`]).
#[derive(Debug, Clone, Default)]
pub struct OnBehalf {
    authorization: Option<tonic::metadata::AsciiMetadataValue>,
    client: Option<tonic::metadata::AsciiMetadataValue>,
}

impl OnBehalf {
    /// The `authorization` metadata of `request`, if any, and the address of the client it is
    /// for: the one a caller proven to be an Orderly service forwarded, else the peer's.
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        // Peers are known only where the kit serves (its `server` feature).
        #[cfg(feature = "server")]
        let client = match request.extensions().get::<crate::tls::server::Peer>() {
            Some(peer) if peer.service.is_some() => request
                .metadata()
                .get(crate::metadata::CLIENT_ADDRESS)
                .cloned(),
            Some(peer) => peer
                .remote_addr
                .and_then(|addr| addr.ip().to_string().parse().ok()),
            None => None,
        };
        #[cfg(not(feature = "server"))]
        let client = None;
        Self {
            authorization: request.metadata().get("authorization").cloned(),
            client,
        }
    }

    /// No caller's credentials: work a service does on its own (a recovery sweep).
    pub fn nobody() -> Self {
        Self::default()
    }

    /// Puts the credentials and client address on an outgoing `request`.
    pub fn apply<T>(&self, request: &mut tonic::Request<T>) {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        if let Some(value) = &self.client {
            request
                .metadata_mut()
                .insert(crate::metadata::CLIENT_ADDRESS, value.clone());
        }
    }
}

/// The one `authorization` header of a request, if it has one. Two are refused as an invalid
/// token: which one a proxy and a service would each read is not defined, so neither is.
pub fn authorization(headers: &http::HeaderMap) -> Result<Option<&[u8]>, AuthError> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthError::Invalid);
    }
    Ok(first.map(http::HeaderValue::as_bytes))
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization: Bearer ...` header.
    #[error("this call needs a bearer token")]
    Missing,
    /// The token's `exp` has passed.
    #[error("the bearer token has expired")]
    Expired,
    /// Anything else wrong with the token: signature, algorithm, key, issuer, audience, `nbf`, form.
    #[error("the bearer token is not valid")]
    Invalid,
    /// The caller acts on another user's data without the `admin` role.
    #[error("the caller may not act on another user's data")]
    NotOwner,
    /// The method needs a role the caller lacks.
    #[error("the caller lacks the role this call needs")]
    MissingRole,
    /// The calling service (its certificate's identity) is not among the method's callers.
    #[error("this service may not be called by the calling service")]
    CallerNotAllowed,
}

impl AuthError {
    /// Every refusal, for counters exported at zero.
    pub const ALL: [Self; 6] = [
        Self::Missing,
        Self::Expired,
        Self::Invalid,
        Self::NotOwner,
        Self::MissingRole,
        Self::CallerNotAllowed,
    ];

    /// The ErrorInfo reason.
    pub fn reason(self) -> Reason {
        match self {
            Self::Missing => Reason::TokenMissing,
            Self::Expired => Reason::TokenExpired,
            Self::Invalid => Reason::TokenInvalid,
            Self::NotOwner => Reason::NotOwner,
            Self::MissingRole => Reason::MissingRole,
            Self::CallerNotAllowed => Reason::CallerNotAllowed,
        }
    }

    /// The gRPC code: UNAUTHENTICATED for the token's faults, PERMISSION_DENIED for the rest.
    pub fn code(self) -> Code {
        match self {
            Self::Missing | Self::Expired | Self::Invalid => Code::Unauthenticated,
            Self::NotOwner | Self::MissingRole | Self::CallerNotAllowed => Code::PermissionDenied,
        }
    }
}

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        crate::status::with_info(error.code(), error.to_string(), error.reason(), DOMAIN, [])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_and_admins_may_act_for_a_user() {
        let user = Caller {
            subject: "u1".into(),
            roles: vec![],
        };
        assert_eq!(user.may_act_for("u1"), Ok(()));
        assert_eq!(user.may_act_for("u2"), Err(AuthError::NotOwner));
        let admin = Caller {
            subject: "a".into(),
            roles: vec![ADMIN.into()],
        };
        assert_eq!(admin.may_act_for("u2"), Ok(()));
    }

    #[test]
    fn refusals_carry_their_reason() {
        use tonic_types::StatusExt;
        let status = Status::from(AuthError::Expired);
        assert_eq!(status.code(), Code::Unauthenticated);
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, Reason::TokenExpired.as_str());
        assert_eq!(info.domain, DOMAIN);
        assert_eq!(
            Status::from(AuthError::NotOwner).code(),
            Code::PermissionDenied
        );
    }
}
