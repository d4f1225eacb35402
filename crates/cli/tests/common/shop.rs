//! A small shop of five `orderly serve` processes (users, the catalog with its demo products,
//! payments, delivery, orders), each over its own SQLite file, with payments on a fixed port so that it can be killed and brought back;
//! and a load of concurrent CreateOrder callers that tallies what became of each order.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use orderly::orders::v1::{ListOrdersRequest, Order, OrderServiceClient, OrderStatus};
use orderly::users::v1::CreateUserRequest;
use tempfile::TempDir;
use tokio::task::JoinSet;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use super::{Orderly, free_port, metric, order_request, scrape, serve_args, start};

/// Users, the catalog, payments (on a fixed port, so it can come back healed), delivery and
/// orders, each a process over its own SQLite file.
pub struct Shop {
    pub data: TempDir,
    pub users: Orderly,
    pub catalog: Orderly,
    pub payments: Orderly,
    pub payments_addr: String,
    pub delivery: Orderly,
    pub orders: Orderly,
    pub user_id: String,
}

impl Shop {
    pub async fn start(payment_faults: &[&str], orders_flags: &[&str]) -> Self {
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
        let catalog = start(
            &serve_args(
                "catalog",
                "127.0.0.1:0",
                &db("catalog"),
                &["--demo-catalog"],
            ),
            "CatalogService",
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
            "--catalog-url".to_owned(),
            format!("http://{}", catalog.addr),
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
            catalog,
            payments,
            payments_addr,
            delivery,
            orders,
            user_id,
        }
    }

    pub async fn client(&self) -> OrderServiceClient<Channel> {
        OrderServiceClient::new(self.orders.channel().await)
    }

    /// Replaces payments with one that fails nothing, on the same address.
    pub async fn heal_payments(&mut self) {
        self.payments.signal(Signal::SIGTERM);
        assert!(self.payments.exit().await.success());
        self.start_payments(&[]).await;
    }

    /// Kills payments at once (SIGKILL): its address refuses connections until it is started.
    pub async fn kill_payments(&mut self) {
        self.payments.signal(Signal::SIGKILL);
        assert!(!self.payments.exit().await.success());
    }

    /// Starts payments with `flags` (faults, say) on its address and database.
    pub async fn start_payments(&mut self, flags: &[&str]) {
        let db = format!(
            "sqlite://{}",
            self.data.path().join("payments.db").display()
        );
        self.payments = start(
            &serve_args("payments", &self.payments_addr, &db, flags),
            "PaymentService",
        )
        .await;
    }

    /// Every order the store holds for the shopper, page by page.
    pub async fn orders(&self) -> Vec<Order> {
        let mut client = self.client().await;
        let mut all = Vec::new();
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
            all.extend(page.orders);
            if page.next_page_token.is_empty() {
                return all;
            }
            page_token = page.next_page_token;
        }
    }

    /// How many orders the orders database holds, for anyone (read from the file, as an auditor
    /// would).
    pub async fn orders_in_database(&self) -> i64 {
        let url = format!("sqlite://{}", self.data.path().join("orders.db").display());
        let db = orderly_kit::db::connect(&url, 1).await.expect("orders db");
        db.fetch_optional("SELECT COUNT(*) AS n FROM orders", &[], |row| row.int("n"))
            .await
            .expect("count orders")
            .expect("one row")
    }

    /// How many orders the store holds for the shopper.
    pub async fn stored_orders(&self) -> usize {
        self.orders().await.len()
    }

    /// The state of the breaker of `downstream`'s `method` in orders (0 closed, 1 open,
    /// 2 half-open), and how often it opened.
    pub async fn breaker(&self, downstream: &str, method: &str) -> (f64, f64) {
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

    /// Stops every process gracefully.
    pub async fn stop(mut self) {
        for process in [
            &mut self.orders,
            &mut self.payments,
            &mut self.delivery,
            &mut self.catalog,
            &mut self.users,
        ] {
            process.signal(Signal::SIGTERM);
            assert!(process.exit().await.success());
        }
    }
}

/// What became of the orders placed by a load.
#[derive(Debug, Default)]
pub struct Tally {
    pub confirmed: u64,
    pub failed: u64,
    /// Answered still PENDING (its undo could not finish yet).
    pub pending: u64,
    /// Refused up front by an open breaker (UNAVAILABLE, DOWNSTREAM_CIRCUIT_OPEN).
    pub refused: u64,
    /// Anything else, with its status.
    pub other: Vec<String>,
    /// When the first refusal came, from the start of the load.
    pub first_refusal: Option<Duration>,
}

/// `workers` callers placing orders back to back for `length` (at least one each), each with a
/// fresh key.
pub async fn load(shop: &Shop, workers: usize, length: Duration, tag: &str) -> Tally {
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
                        OrderStatus::Pending => tally.pending += 1,
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
        total.pending += tally.pending;
        total.refused += tally.refused;
        total.other.extend(tally.other);
        total.first_refusal = match (total.first_refusal, tally.first_refusal) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    total
}
