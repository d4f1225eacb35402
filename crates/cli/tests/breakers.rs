//! Circuit breakers that never make a failure worse, across real processes: a downstream failing
//! a share of calls that retries can absorb never opens its breaker; one failing every call opens
//! it within two seconds; refused orders store nothing; and a healed downstream is found by the
//! first orders after the cool-down, also after a long idle spell.

mod common;

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use orderly::orders::v1::{ListOrdersRequest, OrderServiceClient, OrderStatus};
use orderly::users::v1::CreateUserRequest;
use tempfile::TempDir;
use tokio::task::JoinSet;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::common::{
    Orderly, PATIENCE, free_port, metric, order_request, scrape, serve_args, start,
};

/// Users, payments (on a fixed port, so it can come back healed), delivery and orders, each a
/// process over its own SQLite file.
struct Shop {
    data: TempDir,
    users: Orderly,
    payments: Orderly,
    payments_addr: String,
    delivery: Orderly,
    orders: Orderly,
    user_id: String,
}

impl Shop {
    async fn start(payment_faults: &[&str], orders_flags: &[&str]) -> Self {
        let data = tempfile::tempdir().expect("data dir");
        let db = |name: &str| {
            format!(
                "sqlite://{}",
                data.path().join(format!("{name}.db")).display()
            )
        };
        let users = start(
            &serve_args("users", "127.0.0.1:0", &db("users"), &[]),
            "UserService",
        )
        .await;
        let delivery = start(
            &serve_args("delivery", "127.0.0.1:0", &db("delivery"), &[]),
            "DeliveryService",
        )
        .await;
        let payments_addr = format!("127.0.0.1:{}", free_port());
        let payments = start(
            &serve_args("payments", &payments_addr, &db("payments"), payment_faults),
            "PaymentService",
        )
        .await;
        let mut flags = vec![
            "--users-url".to_owned(),
            format!("http://{}", users.addr),
            "--payments-url".to_owned(),
            format!("http://{payments_addr}"),
            "--delivery-url".to_owned(),
            format!("http://{}", delivery.addr),
        ];
        flags.extend(orders_flags.iter().map(|f| f.to_string()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let orders = start(
            &serve_args("orders", "127.0.0.1:0", &db("orders"), &flags),
            "OrderService",
        )
        .await;
        let user_id = users
            .users()
            .await
            .create_user(CreateUserRequest {
                name: "Shopper".into(),
                email: "shopper@example.com".into(),
            })
            .await
            .expect("user")
            .into_inner()
            .user
            .expect("user")
            .id;
        Self {
            data,
            users,
            payments,
            payments_addr,
            delivery,
            orders,
            user_id,
        }
    }

    async fn client(&self) -> OrderServiceClient<Channel> {
        OrderServiceClient::new(self.orders.channel().await)
    }

    /// Replaces payments with one that fails nothing, on the same address.
    async fn heal_payments(&mut self) {
        self.payments.signal(Signal::SIGTERM);
        assert!(self.payments.exit().await.success());
        let db = format!(
            "sqlite://{}",
            self.data.path().join("payments.db").display()
        );
        self.payments = start(
            &serve_args("payments", &self.payments_addr, &db, &[]),
            "PaymentService",
        )
        .await;
    }

    /// How many orders the store holds for the shopper.
    async fn stored_orders(&self) -> usize {
        let mut client = self.client().await;
        let mut count = 0;
        let mut page_token = String::new();
        loop {
            let page = client
                .list_orders(ListOrdersRequest {
                    user_id: self.user_id.clone(),
                    page_size: 1000,
                    page_token,
                })
                .await
                .expect("list")
                .into_inner();
            count += page.orders.len();
            if page.next_page_token.is_empty() {
                return count;
            }
            page_token = page.next_page_token;
        }
    }

    async fn breaker(&self, downstream: &str, method: &str) -> (f64, f64) {
        let seen = scrape(self.orders.admin).await;
        let labels = [("downstream", downstream), ("rpc_method", method)];
        let opened = metric(
            &seen,
            "orderly_circuit_breaker_transitions_total",
            &[labels[0], labels[1], ("to", "open")],
        );
        (
            metric(&seen, "orderly_circuit_breaker_state", &labels),
            opened,
        )
    }

    async fn stop(mut self) {
        for process in [
            &mut self.orders,
            &mut self.payments,
            &mut self.delivery,
            &mut self.users,
        ] {
            process.signal(Signal::SIGTERM);
            assert!(process.exit().await.success());
        }
    }
}

/// What became of the orders placed by a load.
#[derive(Debug, Default)]
struct Tally {
    confirmed: u64,
    failed: u64,
    /// Refused up front by an open breaker (UNAVAILABLE, DOWNSTREAM_CIRCUIT_OPEN).
    refused: u64,
    /// Anything else, with its status.
    other: Vec<String>,
    /// When the first refusal came, from the start of the load.
    first_refusal: Option<Duration>,
}

/// `workers` callers placing orders back to back for `length` (at least one each), each with a
/// fresh key.
async fn load(shop: &Shop, workers: usize, length: Duration, tag: &str) -> Tally {
    let mut clients = Vec::new();
    for _ in 0..workers {
        clients.push(shop.client().await);
    }
    let started = Instant::now();
    let mut set = JoinSet::new();
    for (worker, mut client) in clients.into_iter().enumerate() {
        let user = shop.user_id.clone();
        let tag = tag.to_owned();
        set.spawn(async move {
            let mut tally = Tally::default();
            let mut n = 0;
            while (n == 0 || started.elapsed() < length) && n < 100_000 {
                let key = format!("{tag}-{worker}-{n}");
                n += 1;
                match client.create_order(order_request(&user, &key)).await {
                    Ok(response) => match response.into_inner().order.expect("order").status() {
                        OrderStatus::Confirmed => tally.confirmed += 1,
                        OrderStatus::Failed => tally.failed += 1,
                        other => tally.other.push(format!("{other:?}")),
                    },
                    Err(status)
                        if status.code() == Code::Unavailable
                            && status
                                .get_details_error_info()
                                .is_some_and(|info| info.reason == "DOWNSTREAM_CIRCUIT_OPEN") =>
                    {
                        tally.refused += 1;
                        tally.first_refusal.get_or_insert(started.elapsed());
                    }
                    Err(status) => tally.other.push(format!("{status:?}")),
                }
            }
            tally
        });
    }
    let mut total = Tally::default();
    while let Some(tally) = set.join_next().await {
        let tally = tally.expect("worker");
        total.confirmed += tally.confirmed;
        total.failed += tally.failed;
        total.refused += tally.refused;
        total.other.extend(tally.other);
        total.first_refusal = match (total.first_refusal, tally.first_refusal) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    total
}

/// Charge fails `rate` of its calls for 15 s under 20 concurrent orders: retries, inside their 20%
/// budget, absorb what they can, and the breaker, which counts calls, never opens.
async fn retries_absorb(rate: &str) {
    let shop = Shop::start(&["--fail-rate", rate, "--fault-methods", "Charge"], &[]).await;
    let tally = load(&shop, 20, Duration::from_secs(15), "absorb").await;
    let placed = tally.confirmed + tally.failed;
    let share = tally.confirmed as f64 / placed as f64;
    let p: f64 = rate.parse().expect("rate");

    let seen = scrape(shop.orders.admin).await;
    let retries = metric(
        &seen,
        "orderly_client_retries_total",
        &[("rpc_method", "Charge")],
    );
    // Every attempt, first or retry, succeeds with probability 1 - p; the budget decides how
    // many retries there are. 20% of calls as retries is its floor: (1 - p) × 1.2.
    let floor = (1.0 - p) * 1.2;
    let predicted = (1.0 - p) * (placed as f64 + retries) / placed as f64;
    eprintln!(
        "fail rate {p}: {placed} orders, {} confirmed ({:.1}%), {} failed, {retries} charge retries; \
         budget floor (1 - p) x 1.2 = {:.1}%, predicted from the retries made (1 - p) x (orders + retries) / orders = {:.1}%",
        tally.confirmed,
        share * 100.0,
        tally.failed,
        floor * 100.0,
        predicted * 100.0,
    );
    assert!(
        tally.other.is_empty(),
        "unexpected outcomes: {:?}",
        &tally.other[..tally.other.len().min(5)]
    );
    assert_eq!(
        tally.refused, 0,
        "no order refused: the breaker stayed closed"
    );
    let (state, opened) = shop.breaker("payments", "Charge").await;
    assert_eq!(
        (state, opened),
        (0.0, 0.0),
        "the Charge breaker never opened"
    );
    assert!(placed > 200, "the load ran: {placed} orders");
    assert!(
        share >= floor - 0.04,
        "{share} below the budget's floor {floor}"
    );
    assert!(
        (share - predicted).abs() < 0.04,
        "{share} vs predicted {predicted}"
    );
    shop.stop().await;
}

#[tokio::test]
async fn thirty_percent_failing_charges_never_open_the_breaker() {
    retries_absorb("0.3").await;
}

#[tokio::test]
async fn forty_percent_failing_charges_never_open_the_breaker() {
    retries_absorb("0.4").await;
}

#[tokio::test]
async fn a_dead_downstream_opens_the_breaker_fast_refuses_up_front_and_is_found_again_after_idle() {
    let mut shop = Shop::start(
        &["--fail-rate", "1", "--fault-methods", "Charge"],
        &["--breaker-cool-down", "1s"],
    )
    .await;
    let tally = load(&shop, 20, Duration::from_secs(3), "dead").await;
    eprintln!("dead payments: {tally:?}");
    assert!(tally.other.is_empty(), "{:?}", tally.other);
    assert_eq!(tally.confirmed, 0);
    let first_refusal = tally.first_refusal.expect("the breaker opened");
    assert!(
        first_refusal <= Duration::from_secs(2),
        "opened after {first_refusal:?}"
    );
    // Refused orders were never stored: the store holds exactly the orders that were answered.
    assert_eq!(shop.stored_orders().await as u64, tally.failed);

    shop.heal_payments().await;
    // Thirty seconds without a single call; then the first orders go through.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let (state, _) = shop.breaker("payments", "Charge").await;
    assert_eq!(state, 2.0, "half-open after the cool-down, with no traffic");
    let mut client = shop.client().await;
    for i in 0..3 {
        let order = client
            .create_order(order_request(&shop.user_id, &format!("after-idle-{i}")))
            .await
            .expect("the first orders after the cool-down are taken")
            .into_inner()
            .order
            .expect("order");
        assert_eq!(order.status(), OrderStatus::Confirmed);
    }
    let (state, _) = shop.breaker("payments", "Charge").await;
    assert_eq!(state, 0.0, "closed by its probes");
    // A burst now: every order confirmed, none failed for a breaker.
    let burst = load(&shop, 30, Duration::from_millis(500), "burst").await;
    assert!(burst.other.is_empty(), "{:?}", burst.other);
    assert_eq!((burst.failed, burst.refused), (0, 0), "{burst:?}");
    assert!(burst.confirmed >= 30);
    let _ = tokio::time::timeout(PATIENCE, shop.stop()).await;
}

/// A burst that lands on a half-open breaker: each order is either refused up front (nothing
/// stored) or processed, never stored and then failed for the breaker.
#[tokio::test]
async fn a_burst_on_a_half_open_breaker_is_refused_or_processed_never_half_done() {
    let mut shop = Shop::start(
        &["--fail-rate", "1", "--fault-methods", "Charge"],
        &[
            "--breaker-cool-down",
            "500ms",
            "--breaker-minimum-calls",
            "10",
        ],
    )
    .await;
    let opening = load(&shop, 10, Duration::from_secs(1), "open").await;
    assert!(opening.refused > 0, "the breaker opened: {opening:?}");
    shop.heal_payments().await;
    let deadline = Instant::now() + PATIENCE;
    while shop.breaker("payments", "Charge").await.0 != 2.0 {
        assert!(Instant::now() < deadline, "half-open in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored_before = shop.stored_orders().await as u64;
    let burst = load(&shop, 30, Duration::from_millis(1), "half-open").await;
    eprintln!("burst on a half-open breaker: {burst:?}");
    assert!(burst.other.is_empty(), "{:?}", burst.other);
    assert_eq!(
        burst.failed, 0,
        "no order stored and then failed: {burst:?}"
    );
    assert!(burst.confirmed >= 1, "the probes went through");
    assert!(
        burst.refused > 0,
        "the rest was refused up front: {burst:?}"
    );
    assert_eq!(
        shop.stored_orders().await as u64,
        stored_before + burst.confirmed
    );
    let _ = tokio::time::timeout(PATIENCE, shop.stop()).await;
}
