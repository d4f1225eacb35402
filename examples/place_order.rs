//! What an integrating team does with the typed client library: create a user, place an order with
//! an idempotency key (so a retry can never order twice), and watch the order until it settles.
//!
//! Run against a running suite (`cargo run --release -- up`), with a token it may act for any user
//! with (the suite checks bearer tokens; `orderly token` signs one with `up`'s development key),
//! and a certificate its services accept (they speak mutual TLS; `up` keeps its CA and the
//! services' certificates under `data/tls`, and this example presents the gateway's):
//!
//! ```sh
//! export ORDERLY_TOKEN=$(cargo run -q --release -- token --sub example --admin)
//! export ORDERLY_TLS_DIR=data/tls
//! cargo run --example place_order                        # localhost:50051 and :50052
//! cargo run --example place_order -- http://users:50051 http://orders:50052
//! ```

use std::path::{Path, PathBuf};

use orderly::common::v1::{Address, Money};
use orderly::orders::v1::{
    CreateOrderRequest, Order, OrderLine, OrderServiceClient, OrderStatus, WatchOrderRequest,
};
use orderly::users::v1::{CreateUserRequest, UserServiceClient};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Everything that can go wrong here, for a short `main`.
type Error = Box<dyn std::error::Error + Send + Sync>;

/// `message` as a request carrying `token` (`authorization: Bearer ...`), if there is one.
fn authorized<T>(message: T, token: Option<&str>) -> Result<tonic::Request<T>, Error> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
    }
    Ok(request)
}

/// A channel to the service `service` (`users`, `orders`) at `url`: over mutual TLS when `tls_dir`
/// holds the cluster's CA (`ca.pem`) and a certificate the service accepts (the gateway's,
/// `gateway.pem` and `gateway.key`), checking that the server is `service`.
async fn channel(url: &str, service: &str, tls_dir: Option<&Path>) -> Result<Channel, Error> {
    let Some(dir) = tls_dir else {
        return Ok(Endpoint::from_shared(url.to_owned())?.connect().await?);
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(dir.join("ca.pem"))?))
        .identity(Identity::from_pem(
            std::fs::read(dir.join("gateway.pem"))?,
            std::fs::read(dir.join("gateway.key"))?,
        ))
        .domain_name(service);
    // tonic speaks TLS to https:// addresses.
    let url = url.replacen("http://", "https://", 1);
    Ok(Endpoint::from_shared(url)?
        .tls_config(tls)?
        .connect()
        .await?)
}

/// Creates a user, orders two books for them, and follows the order, each call with `token`,
/// over mutual TLS with the certificates in `tls_dir` when given; returns the order as it settled.
pub async fn place_order(
    users_url: &str,
    orders_url: &str,
    token: Option<&str>,
    tls_dir: Option<&Path>,
) -> Result<Order, Error> {
    let mut users = UserServiceClient::new(channel(users_url, "users", tls_dir).await?);
    let mut orders = OrderServiceClient::new(channel(orders_url, "orders", tls_dir).await?);

    // A fresh address each run: emails are unique.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let user = users
        .create_user(authorized(
            CreateUserRequest {
                name: "Ada Lovelace".into(),
                email: format!("ada+{nonce}@example.com"),
            },
            token,
        )?)
        .await?
        .into_inner()
        .user
        .ok_or("CreateUser answered without a user")?;
    println!("created user {}", user.id);

    let request = CreateOrderRequest {
        user_id: user.id.clone(),
        // Products of the catalog (`orderly up` starts with a demo catalog): the catalog prices
        // them, and the total must be the one the shopper saw.
        items: vec![OrderLine {
            sku: "BOOK-1".into(),
            quantity: 2,
        }],
        expected_total: Some(Money {
            currency_code: "EUR".into(),
            amount_minor: 2 * 1999,
        }),
        shipping_address: Some(Address {
            recipient: "Ada Lovelace".into(),
            line1: "12 St James's Square".into(),
            line2: String::new(),
            city: "London".into(),
            postal_code: "SW1Y 4JH".into(),
            country_code: "GB".into(),
        }),
        // One key per purchase: sending this request again returns the same order.
        idempotency_key: format!("checkout-{nonce}"),
    };
    let mut placed = authorized(request, token)?;
    placed.set_timeout(std::time::Duration::from_secs(10));
    let order = orders
        .create_order(placed)
        .await?
        .into_inner()
        .order
        .ok_or("CreateOrder answered without an order")?;
    println!("placed order {} ({:?})", order.id, order.status());

    let mut updates = orders
        .watch_order(authorized(
            WatchOrderRequest {
                id: order.id.clone(),
            },
            token,
        )?)
        .await?
        .into_inner();
    let mut last = order;
    while let Some(update) = updates.message().await? {
        let order = update.order.ok_or("WatchOrder sent no order")?;
        println!(
            "order {} is {:?} {}",
            order.id,
            order.status(),
            order.status_reason
        );
        last = order;
    }
    if last.status() == OrderStatus::Confirmed {
        let total = last
            .total
            .as_ref()
            .map(|m| m.amount_minor)
            .unwrap_or_default();
        println!(
            "confirmed: payment {}, delivery {}, total {total} minor units",
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
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let orders_url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:50052".into());
    let token = std::env::var("ORDERLY_TOKEN").ok();
    let tls_dir = std::env::var_os("ORDERLY_TLS_DIR").map(PathBuf::from);
    let order = place_order(
        &users_url,
        &orders_url,
        token.as_deref(),
        tls_dir.as_deref(),
    )
    .await?;
    if order.status() != OrderStatus::Confirmed {
        return Err(format!("order ended {:?}: {}", order.status(), order.status_reason).into());
    }
    Ok(())
}
