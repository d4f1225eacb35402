//! Deadlines that travel: the budget a caller gave this call (its `grpc-timeout` header) bounds the
//! calls this one makes downstream, less a margin for the work left after they answer.
//!
//! A spent budget fails at once with DEADLINE_EXCEEDED, without a network call.

use std::time::Duration;

use tokio::time::Instant;
use tonic::Status;

/// The header in which gRPC carries a call's timeout.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// A point in time by which a piece of work must be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
        }
    }

    /// The deadline for the work of an incoming call: `max` from now, or sooner when the caller's
    /// `grpc-timeout` says so, less `margin` (time kept to answer after the downstream work).
    pub fn for_request<T>(request: &tonic::Request<T>, max: Duration, margin: Duration) -> Self {
        let budget = match caller_timeout(request) {
            Some(timeout) => timeout.saturating_sub(margin).min(max),
            None => max,
        };
        Self::after(budget)
    }

    /// When it is.
    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Time left; zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether it has passed.
    pub fn is_expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// Stamps an outgoing request with the time left (sent as `grpc-timeout`), or fails with
    /// DEADLINE_EXCEEDED when none is left.
    pub fn bound<T>(&self, mut request: tonic::Request<T>) -> Result<tonic::Request<T>, Status> {
        let remaining = self.remaining();
        if remaining.is_zero() {
            return Err(Status::deadline_exceeded(
                "deadline exceeded before the call was made",
            ));
        }
        request.set_timeout(remaining);
        Ok(request)
    }
}

/// The timeout the caller set on `request`, if any.
pub fn caller_timeout<T>(request: &tonic::Request<T>) -> Option<Duration> {
    request
        .metadata()
        .get(GRPC_TIMEOUT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
}

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_grpc_timeout("30000000u"),
            Some(Duration::from_secs(30))
        );
        for bad in ["", "S", "5", "5s", "123456789S", "-1S", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_callers_timeout_bounds_the_budget() {
        let mut request = tonic::Request::new(());
        request.set_timeout(Duration::from_millis(300));
        let deadline =
            Deadline::for_request(&request, Duration::from_secs(5), Duration::from_millis(50));
        let left = deadline.remaining();
        assert!(
            left <= Duration::from_millis(250) && left > Duration::from_millis(200),
            "{left:?}"
        );

        let unbounded = Deadline::for_request(
            &tonic::Request::new(()),
            Duration::from_secs(5),
            Duration::ZERO,
        );
        assert!(unbounded.remaining() > Duration::from_millis(4900));
    }

    #[tokio::test]
    async fn a_spent_budget_fails_without_a_call() {
        let spent = Deadline::after(Duration::ZERO);
        let status = spent.bound(tonic::Request::new(())).expect_err("spent");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        let live = Deadline::after(Duration::from_secs(1))
            .bound(tonic::Request::new(()))
            .expect("live");
        let sent = caller_timeout(&live).expect("grpc-timeout set");
        assert!(sent <= Duration::from_secs(1) && sent > Duration::from_millis(900));
    }
}
