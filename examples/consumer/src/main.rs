//! Takes the tour against running services: a local `orderly up` by default (its gRPC ports over
//! mutual TLS, with the certificate it writes for programs outside the suite under
//! `ORDERLY_DATA_DIR`, default `data`), or the addresses in `ORDERLY_USERS_URL` and
//! `ORDERLY_ORDERS_URL` (plaintext `http://`, e.g. `orderly up --insecure-plaintext`); with a
//! bearer token in `ORDERLY_TOKEN` (an admin's, from `orderly token --sub ID --admin`).

use std::time::Duration;

use orderly::client::Client;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let builder = match std::env::var("ORDERLY_USERS_URL") {
        Ok(users) => {
            Client::builder(users).orders_url(env("ORDERLY_ORDERS_URL", "http://127.0.0.1:50052"))
        }
        Err(_) => Client::local_up(env("ORDERLY_DATA_DIR", "data")),
    };
    let mut builder = builder.timeout(Duration::from_secs(5));
    if let Ok(token) = std::env::var("ORDERLY_TOKEN") {
        builder = builder.bearer_token(token);
    }
    let client = builder.connect().await?;
    let email = format!("ada+{}@example.com", orderly::messages::idempotency_key());
    let tour = orderly_consumer::tour(&client, &email, 3).await?;
    println!("{tour:#?}");
    Ok(())
}
