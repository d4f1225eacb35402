//! AIP-158 pagination: page sizes with a default and a maximum, and opaque page tokens that a
//! client cannot alter or reuse for another query without the server noticing.
//!
//! A token is the service's cursor (for example the last id of the page) followed by a truncated
//! HMAC-SHA256 over a scope (the query's other parameters) and the cursor, in unpadded base64url.
//! Every replica that shares the secret accepts every other replica's tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const MAC_LEN: usize = 16;

/// Why a page size or token was refused; the text is meant for a field violation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// A negative page size.
    #[error("must not be negative")]
    NegativeSize,
    /// A token that this server did not issue for this query.
    #[error("is not a page token issued for this query")]
    InvalidToken,
}

/// The number of items to return for a requested `page_size`: `default` for 0, at most `max`
/// (larger requests are coerced down, as AIP-158 asks), an error for negative sizes.
pub fn page_size(requested: i32, default: u32, max: u32) -> Result<u32, PageError> {
    match u32::try_from(requested) {
        Err(_) => Err(PageError::NegativeSize),
        Ok(0) => Ok(default.min(max)),
        Ok(size) => Ok(size.min(max)),
    }
}

/// Issues and checks page tokens with one secret.
#[derive(Clone)]
pub struct PageTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens { key: <redacted> }")
    }
}

impl PageTokens {
    /// Tokens signed with `secret`; replicas of a service must share it.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self {
            key: secret.as_ref().to_vec(),
        }
    }

    /// The HMAC state after reading the scope (length-prefixed, so scope and cursor cannot blur) and cursor.
    fn keyed(&self, scope: &str, cursor: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(&(scope.len() as u64).to_be_bytes());
        mac.update(scope.as_bytes());
        mac.update(cursor);
        mac
    }

    fn mac(&self, scope: &str, cursor: &[u8]) -> [u8; MAC_LEN] {
        let full = self.keyed(scope, cursor).finalize().into_bytes();
        let mut out = [0; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// A token for the page after `cursor`, valid only for queries with the same `scope`.
    pub fn seal(&self, scope: &str, cursor: &[u8]) -> String {
        let mut bytes = cursor.to_vec();
        bytes.extend_from_slice(&self.mac(scope, cursor));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The cursor inside `token`, if this server issued it for `scope`.
    pub fn open(&self, scope: &str, token: &str) -> Result<Vec<u8>, PageError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| PageError::InvalidToken)?;
        if bytes.len() < MAC_LEN {
            return Err(PageError::InvalidToken);
        }
        let (cursor, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        // Constant-time comparison of the truncated tag.
        self.keyed(scope, cursor)
            .verify_truncated_left(tag)
            .map_err(|_| PageError::InvalidToken)?;
        Ok(cursor.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_default_and_cap() {
        assert_eq!(page_size(0, 50, 1000), Ok(50));
        assert_eq!(page_size(7, 50, 1000), Ok(7));
        assert_eq!(page_size(5000, 50, 1000), Ok(1000));
        assert_eq!(page_size(-1, 50, 1000), Err(PageError::NegativeSize));
    }

    #[test]
    fn tokens_round_trip_and_detect_tampering() {
        let tokens = PageTokens::new("secret");
        let token = tokens.seal("users", b"cursor-1");
        assert_eq!(tokens.open("users", &token), Ok(b"cursor-1".to_vec()));

        let mut tampered = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        tampered[0] ^= 1;
        assert_eq!(
            tokens.open("users", &URL_SAFE_NO_PAD.encode(tampered)),
            Err(PageError::InvalidToken)
        );
        assert_eq!(
            tokens.open("other-scope", &token),
            Err(PageError::InvalidToken)
        );
        assert_eq!(
            PageTokens::new("other").open("users", &token),
            Err(PageError::InvalidToken)
        );
        assert_eq!(
            tokens.open("users", "not base64 !"),
            Err(PageError::InvalidToken)
        );
        assert_eq!(tokens.open("users", ""), Err(PageError::InvalidToken));
    }
}
