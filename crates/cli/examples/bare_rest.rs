//! The Rust limit of the REST hop, for `bench/gateway.sh`: axum answering `GET /v1/users/{id}`
//! by calling GetUser on another server over one loopback gRPC channel (plaintext, tonic's
//! defaults) and writing the user as JSON, with none of the gateway's layers (no auth, limits,
//! spans, metrics, retries or breakers).
//!
//! Usage: `bare_rest ADDR GRPC_URL` (e.g. `127.0.0.1:0 http://127.0.0.1:50051`); prints
//! `listening ADDR` once it accepts requests.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use orderly::users::v1::{GetUserRequest, UserServiceClient};
use tonic::transport::Channel;

async fn get_user(
    State(client): State<UserServiceClient<Channel>>,
    Path(id): Path<String>,
) -> Result<axum::Json<serde_json::Value>, StatusCode> {
    let user = client
        .clone()
        .get_user(GetUserRequest { id })
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?
        .into_inner()
        .user
        .ok_or(StatusCode::BAD_GATEWAY)?;
    Ok(axum::Json(serde_json::json!({
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "createTime": "2026-11-28T00:00:00Z",
        "updateTime": "2026-11-28T00:00:00Z",
    })))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let upstream = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: bare_rest ADDR GRPC_URL"))?;
    let channel = tonic::transport::Endpoint::from_shared(upstream)?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let app = axum::Router::new()
        .route("/v1/users/{id}", get(get_user))
        .with_state(UserServiceClient::new(channel));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(orderly_kit::shutdown::signal())
        .await?;
    Ok(())
}
