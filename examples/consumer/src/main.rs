//! Takes the tour against running services: `ORDERLY_USERS_URL` (default
//! `http://127.0.0.1:50051`), `ORDERLY_ORDERS_URL` (default `http://127.0.0.1:50052`) and a bearer
//! token in `ORDERLY_TOKEN` (an admin's, from `orderly token --sub ID --admin`), over plaintext
//! (`orderly up --insecure-plaintext`).

use std::time::Duration;

use orderly::client::Client;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let mut builder = Client::builder(env("ORDERLY_USERS_URL", "http://127.0.0.1:50051"))
        .orders_url(env("ORDERLY_ORDERS_URL", "http://127.0.0.1:50052"))
        .timeout(Duration::from_secs(5));
    if let Ok(token) = std::env::var("ORDERLY_TOKEN") {
        builder = builder.bearer_token(token);
    }
    let client = builder.connect().await?;
    let email = format!("ada+{}@example.com", orderly::messages::idempotency_key());
    let tour = orderly_consumer::tour(&client, &email, 3).await?;
    println!("{tour:#?}");
    Ok(())
}
