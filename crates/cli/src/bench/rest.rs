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

    /// Sends `method path` with `body` (JSON when not empty) and `headers`; returns the status and
    /// the body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), RestError> {
        // The semaphore is never closed.
        let Ok(_slot) = self.slots.acquire().await else {
            return Err(RestError::Io(std::io::Error::other("pool closed")));
        };
        let mut sender = self.connection().await?;
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.authority);
        if !body.is_empty() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = sender
            .send_request(request.body(Full::new(Bytes::from(body)))?)
            .await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        self.idle.lock().await.push(sender);
        Ok((status, body))
    }
}
