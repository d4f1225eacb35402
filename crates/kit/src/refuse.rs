//! Answering a call without handing it to its service (shed, rate limited, unauthenticated, or
//! failed by fault injection) while still reading what the client sent.
//!
//! h2 (0.4.16 and later) charges every small DATA frame it receives against a per-connection budget
//! and refunds the charge only when the application reads the frame. A call refused without its
//! request body ever being read keeps its charge, so a few thousand refusals on one connection (a
//! gateway whose listings are being shed, say) exhaust the budget, and the server closes the whole
//! connection with GOAWAY ENHANCE_YOUR_CALM "too_many_data_frames", failing every other call on it.
//! (hyperium/h2#935 and the reports that followed it.) So a refused call's body is drained, off the
//! response path, before it is dropped.

use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use http_body_util::BodyExt as _;

/// How long the drain of a refused call's body may take; a client still sending after this is
/// not one to wait for.
const DRAIN_FOR: Duration = Duration::from_secs(1);

/// Reads `request`'s body to its end (for at most `DRAIN_FOR`) in a task of its own, so that the
/// connection's flow-control and DATA-frame accounting see it consumed, then drops it.
pub fn drain<B>(request: http::Request<B>)
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
{
    let mut body = request.into_body();
    tokio::spawn(async move {
        let read_all = async { while let Some(Ok(_)) = body.frame().await {} };
        let _ = tokio::time::timeout(DRAIN_FOR, read_all).await;
    });
}

/// The response future of a layer over a generated gRPC service: the service's own, or a refusal.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, Infallible>> + Send>>;

/// [`answer`], as a layer's response future: a refusal is decided before the service runs.
pub fn refused<B>(request: http::Request<B>, status: tonic::Status) -> ResponseFuture
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
{
    Box::pin(std::future::ready(Ok(answer(request, status))))
}

/// Answers `request` with `status` without handing it to its service: its body drained (see
/// [`drain`]), the status as a trailers-only gRPC response. What every refusing layer (shedding,
/// rate limits, authentication, injected faults) sends.
pub fn answer<B>(
    request: http::Request<B>,
    status: tonic::Status,
) -> http::Response<tonic::body::Body>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
{
    drain(request);
    status.into_http()
}
