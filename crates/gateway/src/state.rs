//! What every handler shares: the downstream services (kit [`Downstream`]s: pooled channels,
//! deadlines, retries, breakers, client spans and metrics) and the request timeout.

use std::time::Duration;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use orderly_kit::client::ClientError;
use orderly_kit::client::call::CallChannel;
use orderly_kit::client::deadline::Deadline;
use orderly_kit::client::downstream::{Downstream, DownstreamConfig, Safety};
use orderly_kit::metadata::{
    CLIENT_ADDRESS, FAULT_CODE as CODE_HEADER, FAULT_DELAY as DELAY_HEADER,
};
use tonic::Status;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};

use crate::problem::Problem;

/// The gateway's view of the services it fronts; handlers share one behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// UserService.
    pub users: Downstream,
    /// OrderService.
    pub orders: Downstream,
    /// CatalogService.
    pub catalog: Downstream,
    timeout: Duration,
}

impl Gateway {
    /// Clients of the services at `users_url`, `orders_url` and `catalog_url` (they connect on
    /// first use); every request gets `timeout` to be answered.
    pub fn new(
        users_url: &str,
        orders_url: &str,
        catalog_url: &str,
        calls: &DownstreamConfig,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            users: Downstream::new("users", users_url, calls)?.declare(
                orderly::users::v1::user_service_methods::SERVICE,
                orderly::users::v1::user_service_methods::ALL,
            ),
            orders: Downstream::new("orders", orders_url, calls)?.declare(
                orderly::orders::v1::order_service_methods::SERVICE,
                orderly::orders::v1::order_service_methods::ALL,
            ),
            catalog: Downstream::new("catalog", catalog_url, calls)?.declare(
                orderly::catalog::v1::catalog_service_methods::SERVICE,
                orderly::catalog::v1::catalog_service_methods::ALL,
            ),
            timeout,
        })
    }

    /// Calls `downstream` with `message` through `send` (one unary method of its typed client), within the request
    /// timeout, passing on the request's [`Forward`]ed headers; a failure becomes its [`Problem`].
    pub async fn call<M, T, F, Fut>(
        &self,
        downstream: &Downstream,
        safety: Safety,
        forward: Forward,
        message: M,
        send: F,
    ) -> Result<T, Problem>
    where
        M: Clone + Send,
        T: Send + 'static,
        F: Fn(CallChannel, tonic::Request<M>) -> Fut + Send,
        Fut: Future<Output = Result<tonic::Response<T>, Status>> + Send + 'static,
    {
        self.call_response(downstream, safety, forward, message, send)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Makes a call whose response streams (a watch) with `budget` as its deadline instead of the
    /// request timeout; returns the stream once the call is answered. Not retried once answered.
    pub async fn call_within<M, T, F, Fut>(
        &self,
        downstream: &Downstream,
        budget: std::time::Duration,
        forward: Forward,
        message: M,
        send: F,
    ) -> Result<T, Problem>
    where
        M: Clone + Send,
        T: Send + 'static,
        F: Fn(CallChannel, tonic::Request<M>) -> Fut + Send,
        Fut: Future<Output = Result<tonic::Response<T>, Status>> + Send + 'static,
    {
        let deadline = Deadline::after(budget);
        call_with(
            downstream,
            deadline,
            Safety::Idempotent,
            forward,
            message,
            send,
        )
        .await
        .map(tonic::Response::into_inner)
    }

    /// Like [`Gateway::call`], keeping the response's metadata.
    pub async fn call_response<M, T, F, Fut>(
        &self,
        downstream: &Downstream,
        safety: Safety,
        forward: Forward,
        message: M,
        send: F,
    ) -> Result<tonic::Response<T>, Problem>
    where
        M: Clone + Send,
        T: Send + 'static,
        F: Fn(CallChannel, tonic::Request<M>) -> Fut + Send,
        Fut: Future<Output = Result<tonic::Response<T>, Status>> + Send + 'static,
    {
        let deadline = Deadline::after(self.timeout);
        call_with(downstream, deadline, safety, forward, message, send).await
    }
}

/// One call to `downstream` under `deadline`, with the request's forwarded headers; a failure
/// becomes its [`Problem`].
async fn call_with<M, T, F, Fut>(
    downstream: &Downstream,
    deadline: Deadline,
    safety: Safety,
    forward: Forward,
    message: M,
    send: F,
) -> Result<tonic::Response<T>, Problem>
where
    M: Clone + Send,
    T: Send + 'static,
    F: Fn(CallChannel, tonic::Request<M>) -> Fut + Send,
    Fut: Future<Output = Result<tonic::Response<T>, Status>> + Send + 'static,
{
    downstream
        .unary(deadline, safety, message, move |channel, mut request| {
            forward.apply(request.metadata_mut());
            send(channel, request)
        })
        .await
        .map_err(Problem::from)
}

/// Request headers passed on to the services as metadata: the caller's `authorization` (each
/// service checks the bearer token itself, so a user acts through the gateway with their own
/// rights only, and rate limits the user, not the gateway), the client's address (which a service
/// rate limits a caller without a token by: [`orderly_kit::metadata::CLIENT_ADDRESS`]), and the
/// per-call fault headers (`x-orderly-fault-delay`,
/// `x-orderly-fault-code`), which only servers started with `--fault-metadata` honour. Trace
/// context is carried by the span, not copied here.
#[derive(Debug, Clone, Default)]
pub struct Forward(Vec<(&'static str, AsciiMetadataValue)>);

impl Forward {
    fn apply(&self, metadata: &mut MetadataMap) {
        for (name, value) in &self.0 {
            metadata.insert(*name, value.clone());
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Forward {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut headers: Vec<_> = ["authorization", DELAY_HEADER, CODE_HEADER]
            .into_iter()
            .filter_map(|name| {
                let value = parts.headers.get(name)?.to_str().ok()?;
                Some((name, AsciiMetadataValue::try_from(value).ok()?))
            })
            .collect();
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .and_then(|ConnectInfo(addr)| AsciiMetadataValue::try_from(addr.ip().to_string()).ok());
        if let Some(client) = client {
            headers.push((CLIENT_ADDRESS, client));
        }
        Ok(Self(headers))
    }
}
