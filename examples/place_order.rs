//! What an integrating team does with the typed client library: create a user, place an order with
//! an idempotency key (so a retry can never order twice), and watch the order until it settles.
//!
//! Run against a running suite (`cargo run --release -- up`), with a token it may act for any user
//! with (the suite checks bearer tokens; `orderly token` signs one with `up`'s development key).
//! `up`'s services speak mutual TLS; the example presents the certificate `up` writes for programs
//! outside the suite (`data/tls/client.pem`):
//!
//! ```sh
//! export ORDERLY_TOKEN=$(cargo run -q --release -- token --sub example --admin)
//! cargo run --example place_order --features tls              # a local `orderly up` (./data)
//! cargo run --example place_order --features tls -- https://users:50051 https://orders:50052 DIR
//! ```

use std::path::{Path, PathBuf};

use orderly::client::Client;
use orderly::common::v1::{Address, Money};
use orderly::orders::v1::{CreateOrderRequest, Order, OrderLine, OrderStatus};
use orderly::users::v1::CreateUserRequest;

/// Everything that can go wrong here, for a short `main`.
type Error = Box<dyn std::error::Error + Send + Sync>;

/// A client of users at `users_url` and orders at `orders_url` carrying `token`: over mutual TLS
/// with the CA and the outside programs' certificate (`client.pem`) of `tls_dir` when given
/// (`https://` addresses), else in plaintext.
async fn connect(
    users_url: &str,
    orders_url: &str,
    token: Option<&str>,
    tls_dir: Option<&Path>,
) -> Result<Client, Error> {
    let https = |url: &str| url.replacen("http://", "https://", 1);
    let mut builder = match tls_dir {
        Some(dir) => Client::builder(https(users_url))
            .orders_url(https(orders_url))
            .tls_dir(dir, "client"),
        None => Client::builder(users_url).orders_url(orders_url),
    };
    if let Some(token) = token {
        builder = builder.bearer_token(token);
    }
    Ok(builder.connect().await?)
}

/// Creates a user, orders two books for them, and follows the order, each call with `token`,
/// over mutual TLS with the certificates in `tls_dir` when given; returns the order as it settled.
pub async fn place_order(
    users_url: &str,
    orders_url: &str,
    token: Option<&str>,
    tls_dir: Option<&Path>,
) -> Result<Order, Error> {
    let client = connect(users_url, orders_url, token, tls_dir).await?;

    // A fresh address each run: emails are unique.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let user = client
        .users()
        .create_user(CreateUserRequest {
            name: "Ada Lovelace".into(),
            email: format!("ada+{nonce}@example.com"),
        })
        .await
        .map_err(orderly::error::Error::from)?
        .into_inner()
        .user
        .ok_or("CreateUser answered without a user")?;
    println!("created user {}", user.id);

    let request = CreateOrderRequest {
        user_id: user.id.clone(),
        // Products of the catalog (`orderly up` starts with a demo catalog): the catalog prices
        // them, and the total must be the one the shopper saw.
        items: vec![OrderLine::new("BOOK-1", 2)],
        expected_total: Some(Money::new("EUR", 2 * 1999)),
        shipping_address: Some(Address::new(
            "Ada Lovelace",
            "12 St James's Square",
            "London",
            "SW1Y 4JH",
            "GB",
        )),
        // One key per purchase: sending this request again returns the same order.
        idempotency_key: format!("checkout-{nonce}"),
    };
    // The key makes the call safe to repeat: a retry is answered with the same order.
    let order = client
        .retry(|| async { client.orders().create_order(request.clone()).await })
        .await
        .map_err(orderly::error::Error::from)?
        .into_inner()
        .order
        .ok_or("CreateOrder answered without an order")?;
    println!("placed order {} ({:?})", order.id, order.status());
    let last = client
        .watch_until_settled(order.id)
        .await
        .map_err(orderly::error::Error::from)?;
    println!(
        "order {} is {:?} {}",
        last.id,
        last.status(),
        last.status_reason
    );
    if last.status() == OrderStatus::Confirmed {
        let total = last.total.clone().unwrap_or_default();
        println!(
            "confirmed: payment {}, delivery {}, total {total}",
            last.payment_id, last.delivery_id
        );
    }
    Ok(last)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let users_url = args
        .next()
        .unwrap_or_else(|| "https://127.0.0.1:50051".into());
    let orders_url = args
        .next()
        .unwrap_or_else(|| "https://127.0.0.1:50052".into());
    let tls_dir = args
        .next()
        .map_or_else(|| PathBuf::from("data/tls"), PathBuf::from);
    let token = std::env::var("ORDERLY_TOKEN").ok();
    let tls = users_url
        .starts_with("https://")
        .then_some(tls_dir.as_path());
    let order = place_order(&users_url, &orders_url, token.as_deref(), tls).await?;
    if order.status() != OrderStatus::Confirmed {
        return Err(format!("order ended {:?}: {}", order.status(), order.status_reason).into());
    }
    Ok(())
}
