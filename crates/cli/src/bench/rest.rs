//! A small pool of HTTP/1.1 keep-alive connections for the REST scenario: each call takes a free
//! connection (or opens one, up to the pool's size) and gives it back when its answer is read.
//!
//! hyper's connection-level client is used directly: the pooled `hyper-util` client would add its
//! own pool and a second set of features for the same job.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Semaphore};

/// Connections to one HTTP server.
#[derive(Debug, Clone)]
pub struct Pool {
    authority: String,
    idle: Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>>,
    slots: Arc<Semaphore>,
}

/// A REST request failed before it had an answer.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The connection could not be made or broke.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// HTTP went wrong.
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("request: {0}")]
    Request(#[from] http::Error),
}

impl Pool {
    /// A pool of at most `size` connections to `url` (`http://host:port`).
    pub fn new(url: &str, size: usize) -> Self {
        let authority = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        Self {
            authority,
            idle: Arc::default(),
            slots: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    async fn connection(&self) -> Result<SendRequest<Full<Bytes>>, RestError> {
        while let Some(mut idle) = self.idle.lock().await.pop() {
            if idle.ready().await.is_ok() {
                return Ok(idle);
            }
        }
        let stream = TcpStream::connect(&self.authority).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(sender)
    }

    /// Sends `GET path` (with a W3C `traceparent` when sampled), reads the answer to its end, and
    /// returns its status.
    pub async fn get(&self, path: &str, traceparent: Option<String>) -> Result<u16, RestError> {
        // The semaphore is never closed.
        let Ok(_slot) = self.slots.acquire().await else {
            return Err(RestError::Io(std::io::Error::other("pool closed")));
        };
        let mut sender = self.connection().await?;
        let mut request = http::Request::get(path).header(http::header::HOST, &self.authority);
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        if let Some(authorization) = super::scenario::authorization() {
            request = request.header(http::header::AUTHORIZATION, authorization);
        }
        let response = sender
            .send_request(request.body(Full::new(Bytes::new()))?)
            .await?;
        let status = response.status().as_u16();
        response.into_body().collect().await?;
        self.idle.lock().await.push(sender);
        Ok(status)
    }
}
