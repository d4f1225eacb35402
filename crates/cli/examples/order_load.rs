//! A closed-loop CreateOrder load for `bench/overload.sh`, until `orderly bench` exists: N callers
//! keep one order each in flight, every order under a fresh idempotency key (h2load replays one
//! body, which would only measure replays). A shed call (RESOURCE_EXHAUSTED) waits the RetryInfo
//! delay it carries before its caller tries again, as a well-behaved client does.
//!
//! Usage: `order_load USERS_URL ORDERS_URL CONCURRENCY SECONDS`; prints one JSON line:
//! confirmed orders per second (goodput), p50/p99 of the accepted calls, and the shed and failed
//! counts.

use std::time::{Duration, Instant};

use orderly::common::v1::{Address, Money};
use orderly::orders::v1::{CreateOrderRequest, LineItem, OrderServiceClient, OrderStatus};
use orderly::users::v1::{CreateUserRequest, UserServiceClient};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// What one caller saw.
#[derive(Default)]
struct Seen {
    accepted: Vec<Duration>,
    confirmed: u64,
    shed: u64,
    failed: u64,
}

fn order(user_id: &str, key: String) -> CreateOrderRequest {
    CreateOrderRequest {
        user_id: user_id.to_owned(),
        items: vec![LineItem {
            sku: "BENCH-1".into(),
            quantity: 1,
            unit_price: Some(Money {
                currency_code: "EUR".into(),
                amount_minor: 1999,
            }),
        }],
        shipping_address: Some(Address {
            recipient: "Bench".into(),
            line1: "1 Load Way".into(),
            line2: String::new(),
            city: "Oslo".into(),
            postal_code: "0150".into(),
            country_code: "NO".into(),
        }),
        idempotency_key: key,
    }
}

async fn connect(url: &str) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(url.to_owned())?.connect().await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [users_url, orders_url, concurrency, seconds] = args.as_slice() else {
        anyhow::bail!("usage: order_load USERS_URL ORDERS_URL CONCURRENCY SECONDS");
    };
    let concurrency: usize = concurrency.parse()?;
    let length = Duration::from_secs_f64(seconds.parse()?);
    let run = format!("{:x}", fastrand::u64(..));

    let user_id = UserServiceClient::new(connect(users_url).await?)
        .create_user(CreateUserRequest {
            name: "Load".into(),
            email: format!("load-{run}@example.com"),
        })
        .await?
        .into_inner()
        .user
        .map(|u| u.id)
        .unwrap_or_default();
    // A few connections, as a pool of clients would have; callers share them.
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(connect(orders_url).await?);
    }

    let started = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..concurrency {
        let mut client = OrderServiceClient::new(channels[caller % channels.len()].clone());
        let user_id = user_id.clone();
        let run = run.clone();
        callers.spawn(async move {
            let mut seen = Seen::default();
            let mut n = 0u64;
            while started.elapsed() < length {
                n += 1;
                let key = format!("{run}-{caller}-{n}");
                let sent = Instant::now();
                match client.create_order(order(&user_id, key)).await {
                    Ok(response) => {
                        seen.accepted.push(sent.elapsed());
                        let confirmed = response
                            .into_inner()
                            .order
                            .is_some_and(|o| o.status() == OrderStatus::Confirmed);
                        seen.confirmed += u64::from(confirmed);
                    }
                    Err(status) if status.code() == Code::ResourceExhausted => {
                        seen.shed += 1;
                        let delay = status
                            .get_details_retry_info()
                            .and_then(|info| info.retry_delay)
                            .unwrap_or(Duration::from_millis(50));
                        tokio::time::sleep(delay).await;
                    }
                    Err(_) => seen.failed += 1,
                }
            }
            seen
        });
    }
    let mut all = Seen::default();
    while let Some(seen) = callers.join_next().await {
        let seen = seen?;
        all.accepted.extend(seen.accepted);
        all.confirmed += seen.confirmed;
        all.shed += seen.shed;
        all.failed += seen.failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.accepted.sort();
    let quantile = |q: f64| {
        let index =
            ((all.accepted.len() as f64 * q) as usize).min(all.accepted.len().saturating_sub(1));
        all.accepted
            .get(index)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{{\"concurrency\":{concurrency},\"seconds\":{elapsed:.1},\"accepted\":{},\"confirmed\":{},\"goodput\":{:.1},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"shed\":{},\"failed\":{}}}",
        all.accepted.len(),
        all.confirmed,
        all.confirmed as f64 / elapsed,
        quantile(0.5),
        quantile(0.99),
        all.shed,
        all.failed
    );
    Ok(())
}
