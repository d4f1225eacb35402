//! What a failed call says, typed: the reasons and domains the services put in their
//! `google.rpc.ErrorInfo` (the servers build their errors from these same values, so a caller
//! matching on [`Reason`] cannot miss one), and [`StatusExt`], which reads a [`Status`]'s details —
//! reason, field violations, retry delay — and tells a deadline or a retryable failure apart.
//!
//! ```
//! use orderly::error::{Reason, StatusExt};
//! use orderly::rpc::{Code, Status};
//!
//! fn explain(status: &Status) -> String {
//!     match status.reason() {
//!         Some(Reason::EmailTaken) => "pick another email address".into(),
//!         _ if status.code() == Code::InvalidArgument => status
//!             .violations()
//!             .iter()
//!             .map(|v| format!("{}: {}", v.field, v.description))
//!             .collect::<Vec<_>>()
//!             .join("; "),
//!         _ => status.explain().to_string(),
//!     }
//! }
//! ```

use std::fmt;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// The `google.rpc.ErrorInfo` domains: which part of Orderly refused a call.
pub mod domain {
    /// The users service.
    pub const USERS: &str = "users.orderly";
    /// The orders service.
    pub const ORDERS: &str = "orders.orderly";
    /// The payments service.
    pub const PAYMENTS: &str = "payments.orderly";
    /// The delivery service.
    pub const DELIVERY: &str = "delivery.orderly";
    /// The catalog service.
    pub const CATALOG: &str = "catalog.orderly";
    /// Authentication, authorization and per-caller limits, in every service.
    pub const AUTH: &str = "auth.orderly";
}

macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident = $text:literal,)*) => {
        /// Why a call was refused: the `reason` of the `google.rpc.ErrorInfo` a service sends (and
        /// the gateway's problem+json `reason`). The servers build their errors from this type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Reason {
            $($(#[$doc])* $name,)*
        }

        impl Reason {
            /// Every reason.
            pub const ALL: &[Reason] = &[$(Reason::$name,)*];

            /// The reason as sent, e.g. `EMAIL_TAKEN`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => $text,)*
                }
            }

            /// The reason sent as `text`, if it is one of these.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Reason::$name),)*
                    _ => None,
                }
            }
        }
    };
}

reasons! {
    /// No user has the id (users: NOT_FOUND; orders: FAILED_PRECONDITION for an order's user).
    UserNotFound = "USER_NOT_FOUND",
    /// Another user has the email address (ALREADY_EXISTS).
    EmailTaken = "EMAIL_TAKEN",
    /// No order has the id (NOT_FOUND).
    OrderNotFound = "ORDER_NOT_FOUND",
    /// The idempotency key was used for a different request (INVALID_ARGUMENT; REST 422).
    IdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED",
    /// Only a confirmed order can be cancelled (FAILED_PRECONDITION).
    OrderNotConfirmed = "ORDER_NOT_CONFIRMED",
    /// A service the call needs is failing and its circuit breaker is open (UNAVAILABLE, with a
    /// retry delay).
    DownstreamCircuitOpen = "DOWNSTREAM_CIRCUIT_OPEN",
    /// The order is still being placed; ask again (UNAVAILABLE, with a retry delay).
    OrderStillProcessing = "ORDER_STILL_PROCESSING",
    /// No payment has the id (NOT_FOUND).
    PaymentNotFound = "PAYMENT_NOT_FOUND",
    /// A refund larger than what is left of the charge (FAILED_PRECONDITION).
    RefundExceedsCharge = "REFUND_EXCEEDS_CHARGE",
    /// No delivery has the id (NOT_FOUND).
    DeliveryNotFound = "DELIVERY_NOT_FOUND",
    /// No product has the SKU (catalog: NOT_FOUND; orders: FAILED_PRECONDITION, the `skus`
    /// metadata naming them).
    ProductNotFound = "PRODUCT_NOT_FOUND",
    /// Another product has the SKU (ALREADY_EXISTS).
    SkuTaken = "SKU_TAKEN",
    /// Not enough stock on hand for every line (FAILED_PRECONDITION; the `skus` metadata names the
    /// products short, comma-separated). Nothing was reserved or charged.
    OutOfStock = "OUT_OF_STOCK",
    /// No reservation for the order (NOT_FOUND).
    ReservationNotFound = "RESERVATION_NOT_FOUND",
    /// The reservation was released (or expired) before it was committed (FAILED_PRECONDITION).
    ReservationReleased = "RESERVATION_RELEASED",
    /// The order's total at today's prices differs from the `expected_total` sent
    /// (FAILED_PRECONDITION; `expected` and `actual` metadata). Nothing was reserved or charged.
    PriceChanged = "PRICE_CHANGED",
    /// No bearer token (UNAUTHENTICATED).
    TokenMissing = "TOKEN_MISSING",
    /// The token has expired (UNAUTHENTICATED).
    TokenExpired = "TOKEN_EXPIRED",
    /// The token is not one the service accepts (UNAUTHENTICATED).
    TokenInvalid = "TOKEN_INVALID",
    /// The token's user may act only on what is theirs (PERMISSION_DENIED).
    NotOwner = "NOT_OWNER",
    /// The call needs a role the token lacks (PERMISSION_DENIED).
    MissingRole = "MISSING_ROLE",
    /// The calling service may not call this method (PERMISSION_DENIED).
    CallerNotAllowed = "CALLER_NOT_ALLOWED",
    /// Too many calls from this caller (RESOURCE_EXHAUSTED, with a retry delay; REST 429).
    RateLimited = "RATE_LIMITED",
    /// The gateway has too many requests in flight (REST 429 with `Retry-After`).
    Overloaded = "OVERLOADED",
    /// No route serves this path or method (REST 404 or 405).
    NoRoute = "NO_ROUTE",
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field of a request that was refused, and why (from `google.rpc.BadRequest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field's path in the request, e.g. `items[0].quantity`.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

/// How many items of a list an error names before saying how many more there are.
pub const LISTED: usize = 10;

/// What follows the items [`listed`] names when there were more.
const MORE: &str = " (and ";

/// At most [`LISTED`] of `items`, comma-separated, then how many more (`A,B,...,J (and 90 more)`):
/// how the services name a list in an error's message and metadata (the SKUs of `OUT_OF_STOCK`,
/// say), so that a status stays far below HTTP/2's header limits however many items the request
/// held; [`StatusExt::skus`] reads it back.
pub fn listed(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(LISTED)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",");
    if items.len() > LISTED {
        text.push_str(&format!("{MORE}{} more)", items.len() - LISTED));
    }
    text
}

/// The totals of a `PRICE_CHANGED` refusal, from [`StatusExt::price_change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceChange {
    /// The total the order expected.
    pub expected: crate::money::Money,
    /// The total at the catalog's prices now: send it as the expected total to accept it.
    pub actual: crate::money::Money,
}

/// The details of a [`Status`], read: what a caller needs to decide what to do next.
///
/// It covers every standard detail ([`StatusExt::error_details`], [`StatusExt::error_info`]), so
/// `tonic_types::StatusExt`, which shares its name, need not be imported beside it; where it is
/// (to build statuses with details), import it unnamed: `use orderly::tonic_types::StatusExt as _;`.
pub trait StatusExt {
    /// The ErrorInfo reason, if the service sent one Orderly defines.
    fn reason(&self) -> Option<Reason>;
    /// The ErrorInfo domain (see [`domain`]), if any.
    fn domain(&self) -> Option<String>;
    /// The whole ErrorInfo (reason, domain and every metadata entry), if any: for what the typed
    /// readers ([`StatusExt::skus`], [`StatusExt::price_change`]) do not cover.
    fn error_info(&self) -> Option<tonic_types::ErrorInfo>;
    /// Every standard detail the status carries (BadRequest, RetryInfo, ErrorInfo, ...), decoded.
    fn error_details(&self) -> tonic_types::ErrorDetails;
    /// The fields refused, from the BadRequest detail (empty if there is none).
    fn violations(&self) -> Vec<Violation>;
    /// How long the service asks the caller to wait before trying again (RetryInfo).
    fn retry_after(&self) -> Option<Duration>;
    /// The SKUs an `OUT_OF_STOCK` or `PRODUCT_NOT_FOUND` refusal names (at most ten are sent;
    /// empty for any other status).
    fn skus(&self) -> Vec<String>;
    /// The totals of a `PRICE_CHANGED` refusal: what the caller expected and what the catalog's
    /// prices make now.
    fn price_change(&self) -> Option<PriceChange>;
    /// Whether trying again later may succeed: UNAVAILABLE, or any status with a retry delay.
    /// (Only reads and calls with an idempotency key should be retried.)
    fn is_retryable(&self) -> bool;
    /// Whether the call ran out of time: DEADLINE_EXCEEDED from a server, or a deadline timer
    /// (the client's own, or the server's timer on the `grpc-timeout` it was sent), which tonic
    /// reports as CANCELLED "Timeout expired", with the timer's error somewhere in its sources or,
    /// when it came over the wire, with no source at all.
    fn is_deadline(&self) -> bool;
    /// A `Display` of the code, message, causes (of a transport failure), reason and violations,
    /// for logs and `?` in `main`.
    fn explain(&self) -> Explained<'_>;
}

impl StatusExt for Status {
    fn reason(&self) -> Option<Reason> {
        self.get_details_error_info()
            .and_then(|info| Reason::parse(&info.reason))
    }

    fn domain(&self) -> Option<String> {
        self.get_details_error_info().map(|info| info.domain)
    }

    fn error_info(&self) -> Option<tonic_types::ErrorInfo> {
        self.get_details_error_info()
    }

    fn error_details(&self) -> tonic_types::ErrorDetails {
        self.get_error_details()
    }

    fn skus(&self) -> Vec<String> {
        let Some(info) = self.get_details_error_info() else {
            return Vec::new();
        };
        if !matches!(
            Reason::parse(&info.reason),
            Some(Reason::OutOfStock | Reason::ProductNotFound)
        ) {
            return Vec::new();
        }
        let listed = info.metadata.get("skus").map_or("", String::as_str);
        let named = listed.split(MORE).next().unwrap_or_default();
        named
            .split(',')
            .filter(|sku| !sku.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn price_change(&self) -> Option<PriceChange> {
        let info = self.get_details_error_info()?;
        if Reason::parse(&info.reason) != Some(Reason::PriceChanged) {
            return None;
        }
        let total = |key: &str| crate::money::Money::from_metadata(info.metadata.get(key)?);
        Some(PriceChange {
            expected: total("expected")?,
            actual: total("actual")?,
        })
    }

    fn violations(&self) -> Vec<Violation> {
        self.get_details_bad_request()
            .map(|bad| {
                bad.field_violations
                    .into_iter()
                    .map(|v| Violation {
                        field: v.field,
                        description: v.description,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn retry_after(&self) -> Option<Duration> {
        self.get_details_retry_info()
            .and_then(|info| info.retry_delay)
    }

    fn is_retryable(&self) -> bool {
        self.code() == Code::Unavailable || self.retry_after().is_some()
    }

    fn is_deadline(&self) -> bool {
        match self.code() {
            Code::DeadlineExceeded => true,
            Code::Cancelled => {
                let mut source = std::error::Error::source(self);
                while let Some(error) = source {
                    if error.is::<tonic::TimeoutExpired>() {
                        return true;
                    }
                    source = error.source();
                }
                self.message() == tonic::TimeoutExpired(()).to_string()
            }
            _ => false,
        }
    }

    fn explain(&self) -> Explained<'_> {
        Explained(self)
    }
}

/// A [`Status`] shown whole: `INVALID_ARGUMENT: invalid request: name [name: is required]`.
#[derive(Debug, Clone, Copy)]
pub struct Explained<'a>(&'a Status);

impl fmt::Display for Explained<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.0;
        write!(f, "{:?}: {}", status.code(), status.message())?;
        // The causes a transport failure keeps (a refused connection, a TLS alert), which the
        // message alone ("transport error") hides; each once.
        let mut shown = status.message().to_owned();
        let mut source = std::error::Error::source(status);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !shown.ends_with(&text) {
                write!(f, ": {text}")?;
                shown = text;
            }
            source = cause.source();
        }
        if let Some(info) = status.get_details_error_info() {
            write!(f, " (reason {} in {})", info.reason, info.domain)?;
        }
        let violations = status.violations();
        if !violations.is_empty() {
            let listed: Vec<String> = violations
                .iter()
                .map(|v| format!("{}: {}", v.field, v.description))
                .collect();
            write!(f, " [{}]", listed.join("; "))?;
        }
        if let Some(wait) = status.retry_after() {
            write!(f, " (retry after {wait:?})")?;
        }
        Ok(())
    }
}

/// A failed call as an error type of its own, whose `Display` is [`StatusExt::explain`]'s: for
/// `?` into `Box<dyn Error>` or `anyhow`, where a bare [`Status`] would print its detail bytes.
#[derive(Debug, Clone)]
pub struct Error(pub Status);

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Self(status)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.explain().fmt(f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::{ErrorDetails, StatusExt as _};

    use super::*;

    #[test]
    fn every_reason_reads_back_as_itself() {
        for reason in Reason::ALL {
            assert_eq!(Reason::parse(reason.as_str()), Some(*reason));
        }
        assert_eq!(Reason::parse("SOMETHING_ELSE"), None);
    }

    #[test]
    fn a_status_explains_its_reason_violations_and_delay() {
        let mut details = ErrorDetails::with_bad_request_violation("name", "is required");
        details.set_error_info(Reason::RateLimited.as_str(), domain::AUTH, []);
        details.set_retry_info(Some(Duration::from_secs(2)));
        let status = Status::with_error_details(Code::ResourceExhausted, "slow down", details);
        assert_eq!(status.reason(), Some(Reason::RateLimited));
        assert_eq!(status.domain().as_deref(), Some(domain::AUTH));
        assert_eq!(
            status.error_info().map(|info| info.reason).as_deref(),
            Some("RATE_LIMITED")
        );
        assert_eq!(
            status
                .error_details()
                .retry_info()
                .and_then(|info| info.retry_delay),
            Some(Duration::from_secs(2))
        );
        assert_eq!(status.violations()[0].field, "name");
        assert_eq!(status.retry_after(), Some(Duration::from_secs(2)));
        assert!(status.is_retryable());
        assert!(!status.is_deadline());
        assert_eq!(
            Error::from(status).to_string(),
            "ResourceExhausted: slow down (reason RATE_LIMITED in auth.orderly) \
             [name: is required] (retry after 2s)"
        );
    }

    #[test]
    fn skus_and_totals_are_read_typed_from_the_error_info() {
        let refusal = |reason: Reason, metadata: &[(&str, &str)]| {
            let mut details = ErrorDetails::new();
            details.set_error_info(
                reason.as_str(),
                "orders.orderly",
                metadata
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<std::collections::HashMap<_, _>>(),
            );
            Status::with_error_details(Code::FailedPrecondition, "refused", details)
        };
        let short = refusal(Reason::OutOfStock, &[("skus", "LAMP,PEN")]);
        assert_eq!(short.skus(), ["LAMP", "PEN"]);
        let twelve: Vec<String> = (0..12).map(|n| format!("SKU-{n}")).collect();
        let many = refusal(Reason::ProductNotFound, &[("skus", &listed(&twelve))]);
        assert_eq!(many.skus(), twelve[..LISTED]);
        assert!(short.price_change().is_none());

        let changed = refusal(
            Reason::PriceChanged,
            &[("expected", "EUR 1500"), ("actual", "EUR 1999")],
        );
        let change = changed.price_change().expect("a price change");
        assert_eq!(
            change.expected,
            crate::money::Money::parse("EUR", 1500).expect("money")
        );
        assert_eq!(change.actual.minor(), 1999);
        assert!(changed.skus().is_empty());
        assert!(Status::internal("x").price_change().is_none());
    }

    #[test]
    fn an_explained_transport_failure_shows_its_causes_once() {
        #[derive(Debug)]
        struct Layer(&'static str, Option<Box<Layer>>);
        impl fmt::Display for Layer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Layer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|layer| layer as _)
            }
        }
        let chain = Layer(
            "transport error",
            Some(Box::new(Layer("connection closed: broken pipe", None))),
        );
        let status = Status::from_error(Box::new(chain));
        assert_eq!(
            status.explain().to_string(),
            "Unknown: transport error: connection closed: broken pipe"
        );
    }

    #[test]
    fn every_kind_of_deadline_is_a_deadline() {
        assert!(Status::deadline_exceeded("out of time").is_deadline());
        let client_side = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(client_side.code(), Code::Cancelled);
        assert!(client_side.is_deadline());
        // A server's timer, heard over the wire: the message is all that is left.
        assert!(Status::cancelled("Timeout expired").is_deadline());
        assert!(!Status::cancelled("the caller went away").is_deadline());
        assert!(!Status::unavailable("Timeout expired").is_deadline());
    }
}
