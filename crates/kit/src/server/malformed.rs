//! A request whose protobuf does not decode (invalid UTF-8 in a string, a bad varint, nesting too
//! deep) is the caller's fault: INVALID_ARGUMENT, not the INTERNAL that tonic's codec answers
//! (it follows gRPC's table for the library's own parse errors, which cannot tell a bad request
//! from a bug). Clients then neither retry it nor count it against the server's availability.
//!
//! tonic answers a request it cannot decode before any handler runs, with the status in the
//! response headers and the decoder's message (`failed to decode Protobuf message: ...`); this
//! layer changes only such answers' code. It sits inside the server's metrics and trace layers,
//! so they record the code the caller gets.

use std::pin::Pin;
use std::task::{Context, Poll};

use http::HeaderValue;
use tower::{Layer, Service};

/// The start of the `grpc-message` tonic's decoder sets, percent-encoded as on the wire.
const DECODE_FAILED: &[u8] = b"failed%20to%20decode%20Protobuf%20message";

/// The layer: requests that do not decode are answered INVALID_ARGUMENT.
#[derive(Debug, Clone, Copy, Default)]
pub struct MalformedLayer;

impl<S> Layer<S> for MalformedLayer {
    type Service = Malformed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Malformed { inner }
    }
}

/// The service made by [`MalformedLayer`].
#[derive(Debug, Clone)]
pub struct Malformed<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for Malformed<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Corrected<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        Corrected {
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's answer, its code corrected when the request did not decode.
    pub struct Corrected<F> {
        #[pin]
        inner: F,
    }
}

impl<F, R, E> Future for Corrected<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut answer = std::task::ready!(self.project().inner.poll(cx));
        if let Ok(response) = &mut answer {
            correct(response.headers_mut());
        }
        Poll::Ready(answer)
    }
}

/// Turns the INTERNAL of an undecodable request into INVALID_ARGUMENT.
fn correct(headers: &mut http::HeaderMap) {
    let undecodable = headers.get("grpc-status").map(HeaderValue::as_bytes) == Some(b"13")
        && headers
            .get("grpc-message")
            .is_some_and(|message| message.as_bytes().starts_with(DECODE_FAILED));
    if undecodable {
        headers.insert("grpc-status", HeaderValue::from_static("3"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_decoding_failure_becomes_invalid_argument() {
        let answer = |message: &'static str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("grpc-status", HeaderValue::from_static("13"));
            headers.insert("grpc-message", HeaderValue::from_static(message));
            correct(&mut headers);
            headers["grpc-status"].clone()
        };
        assert_eq!(
            answer("failed%20to%20decode%20Protobuf%20message:%20invalid%20string"),
            "3"
        );
        assert_eq!(answer("database%20unavailable"), "13");
    }
}
