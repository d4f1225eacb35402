//! The orders and order_items tables. Each transition is one conditional UPDATE on status and
//! phase that bumps the version: whoever's condition holds wins, everyone else learns they lost.

use std::collections::HashMap;

use orderly::common::v1::Address;
use orderly_kit::db::is_unique_violation;
use orderly_kit::time::now_micros;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, AssertSqlSafe, Row};

use crate::model::{ItemRecord, NewOrder, OrderRecord, Phase, Status};

/// The schema, applied at start.
pub const MIGRATIONS: &[orderly_kit::db::EmbeddedMigration] = &[
    (1, "orders", include_str!("../migrations/0001_orders.sql")),
    (
        2,
        "request hash",
        include_str!("../migrations/0002_request_hash.sql"),
    ),
];

/// `SELECT` of every column of an order, followed by the rest of the query.
macro_rules! select_orders {
    ($rest:literal) => {
        concat!(
            "SELECT id, user_id, idempotency_key, request_hash, status, phase, status_reason, currency, total, recipient, line1, \
             line2, city, postal_code, country_code, payment_id, delivery_id, version, create_time, update_time \
             FROM orders ",
            $rest
        )
    };
}

/// What an insert found.
#[derive(Debug)]
pub enum Inserted {
    /// This call created the order.
    New(OrderRecord),
    /// The (user, idempotency key) pair made this order before.
    Existing(OrderRecord),
}

/// One conditional transition of an order.
struct Change<'a> {
    id: &'a str,
    from: (Status, &'a [Phase]),
    to: (Status, Phase),
    reason: Option<&'a str>,
    payment_and_delivery: Option<(&'a str, &'a str)>,
}

/// Queries on the orders tables.
#[derive(Debug, Clone)]
pub struct OrderStore {
    pool: AnyPool,
}

impl OrderStore {
    /// A store over `pool`, whose database has [`MIGRATIONS`] applied.
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// Stores a new PENDING order and its items in one transaction, or finds the order its
    /// (user, idempotency key) pair made before.
    pub async fn insert_pending(&self, order: &NewOrder) -> Result<Inserted, sqlx::Error> {
        let now = now_micros();
        let record = OrderRecord {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: order.user_id.to_string(),
            idempotency_key: order.idempotency_key.clone(),
            request_hash: order.fingerprint.clone(),
            status: Status::Pending,
            phase: Phase::Fanout,
            status_reason: String::new(),
            currency: order.total.currency().to_string(),
            total: order.total.minor(),
            address: order.address.clone(),
            payment_id: String::new(),
            delivery_id: String::new(),
            version: 1,
            create_time: now,
            update_time: now,
            items: order
                .items
                .iter()
                .map(|item| ItemRecord {
                    sku: item.sku.clone(),
                    quantity: i64::from(item.quantity),
                    unit_price: item.unit_price.minor(),
                })
                .collect(),
        };
        let mut tx = self.pool.begin().await?;
        let a = &record.address;
        let inserted = sqlx::query(
            "INSERT INTO orders (id, user_id, idempotency_key, status, phase, status_reason, currency, total, \
             recipient, line1, line2, city, postal_code, country_code, payment_id, delivery_id, version, \
             create_time, update_time, request_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        )
        .bind(&record.id)
        .bind(&record.user_id)
        .bind(&record.idempotency_key)
        .bind(record.status.as_str())
        .bind(record.phase.as_str())
        .bind(&record.status_reason)
        .bind(&record.currency)
        .bind(record.total)
        .bind(&a.recipient)
        .bind(&a.line1)
        .bind(&a.line2)
        .bind(&a.city)
        .bind(&a.postal_code)
        .bind(&a.country_code)
        .bind(&record.payment_id)
        .bind(&record.delivery_id)
        .bind(record.version)
        .bind(record.create_time)
        .bind(record.update_time)
        .bind(&record.request_hash)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                tx.rollback().await?;
                let existing = self
                    .by_key(&record.user_id, &record.idempotency_key)
                    .await?;
                return existing.map(Inserted::Existing).ok_or(error);
            }
            Err(error) => return Err(error),
        }
        for (position, item) in record.items.iter().enumerate() {
            sqlx::query("INSERT INTO order_items (order_id, position, sku, quantity, unit_price) VALUES ($1, $2, $3, $4, $5)")
                .bind(&record.id)
                .bind(position as i64)
                .bind(&item.sku)
                .bind(item.quantity)
                .bind(item.unit_price)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Inserted::New(record))
    }

    /// The order with `id`, with its items.
    pub async fn get(&self, id: &str) -> Result<Option<OrderRecord>, sqlx::Error> {
        let row = sqlx::query(select_orders!("WHERE id = $1"))
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        self.with_items(row.iter().map(order).collect::<Result<_, _>>()?)
            .await
            .map(|mut v| v.pop())
    }

    /// The order that `user_id` made with `key`, with its items.
    pub async fn by_key(
        &self,
        user_id: &str,
        key: &str,
    ) -> Result<Option<OrderRecord>, sqlx::Error> {
        let row = sqlx::query(select_orders!(
            "WHERE user_id = $1 AND idempotency_key = $2"
        ))
        .bind(user_id.to_owned())
        .bind(key.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        self.with_items(row.iter().map(order).collect::<Result<_, _>>()?)
            .await
            .map(|mut v| v.pop())
    }

    /// Up to `limit` of `user_id`'s orders older than `before` (newest first), with their items.
    pub async fn list(
        &self,
        user_id: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, sqlx::Error> {
        let rows = match before {
            None => {
                sqlx::query(select_orders!(
                    "WHERE user_id = $1 ORDER BY id DESC LIMIT $2"
                ))
                .bind(user_id.to_owned())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
            Some(before) => {
                sqlx::query(select_orders!(
                    "WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
                ))
                .bind(user_id.to_owned())
                .bind(before.to_owned())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
        };
        self.with_items(rows.iter().map(order).collect::<Result<_, _>>()?)
            .await
    }

    /// Ids of orders with work under way (any phase but settled) untouched since `before` (µs):
    /// the recovery sweep's to-do list.
    pub async fn unsettled_since(&self, before: i64) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query("SELECT id FROM orders WHERE phase <> '' AND update_time < $1 ORDER BY update_time LIMIT 1000")
            .bind(before)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| row.try_get("id"))
            .collect()
    }

    /// FANOUT → CONFIRMED with its payment and delivery; `false` if the order was claimed by a
    /// compensator first.
    pub async fn confirm(
        &self,
        id: &str,
        payment_id: &str,
        delivery_id: &str,
    ) -> Result<bool, sqlx::Error> {
        self.change(Change {
            id,
            from: (Status::Pending, &[Phase::Fanout]),
            to: (Status::Confirmed, Phase::Settled),
            reason: None,
            payment_and_delivery: Some((payment_id, delivery_id)),
        })
        .await
    }

    /// Claims a PENDING order for compensation, recording why; `false` if it already settled.
    pub async fn begin_compensation(&self, id: &str, reason: &str) -> Result<bool, sqlx::Error> {
        self.change(Change {
            id,
            from: (Status::Pending, &[Phase::Fanout, Phase::Compensating]),
            to: (Status::Pending, Phase::Compensating),
            reason: Some(reason),
            payment_and_delivery: None,
        })
        .await
    }

    /// COMPENSATING → FAILED, once the charge and the delivery are undone.
    pub async fn fail(&self, id: &str) -> Result<bool, sqlx::Error> {
        self.change(Change {
            id,
            from: (Status::Pending, &[Phase::Compensating]),
            to: (Status::Failed, Phase::Settled),
            reason: None,
            payment_and_delivery: None,
        })
        .await
    }

    /// Claims a CONFIRMED order for cancelling, recording why; `false` if it is not confirmed.
    pub async fn begin_cancel(&self, id: &str, reason: &str) -> Result<bool, sqlx::Error> {
        self.change(Change {
            id,
            from: (Status::Confirmed, &[Phase::Settled, Phase::Cancelling]),
            to: (Status::Confirmed, Phase::Cancelling),
            reason: Some(reason),
            payment_and_delivery: None,
        })
        .await
    }

    /// CANCELLING → CANCELLED, once the charge and the delivery are undone.
    pub async fn cancelled(&self, id: &str) -> Result<bool, sqlx::Error> {
        self.change(Change {
            id,
            from: (Status::Confirmed, &[Phase::Cancelling]),
            to: (Status::Cancelled, Phase::Settled),
            reason: None,
            payment_and_delivery: None,
        })
        .await
    }

    /// Applies one conditional transition; whether the order was in the `from` state.
    async fn change(&self, change: Change<'_>) -> Result<bool, sqlx::Error> {
        // Phases are fixed identifiers, never user input.
        let phases: Vec<String> = change
            .from
            .1
            .iter()
            .map(|p| format!("'{}'", p.as_str()))
            .collect();
        let sql = format!(
            "UPDATE orders SET status = $2, phase = $3, status_reason = COALESCE($4, status_reason), \
             payment_id = COALESCE($5, payment_id), delivery_id = COALESCE($6, delivery_id), \
             version = version + 1, update_time = $7 \
             WHERE id = $1 AND status = $8 AND phase IN ({})",
            phases.join(", ")
        );
        let result = sqlx::query(AssertSqlSafe(sql))
            .bind(change.id.to_owned())
            .bind(change.to.0.as_str())
            .bind(change.to.1.as_str())
            .bind(change.reason.map(str::to_owned))
            .bind(change.payment_and_delivery.map(|(p, _)| p.to_owned()))
            .bind(change.payment_and_delivery.map(|(_, d)| d.to_owned()))
            .bind(now_micros())
            .bind(change.from.0.as_str())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Attaches each order's items, keeping the orders' order.
    async fn with_items(
        &self,
        mut orders: Vec<OrderRecord>,
    ) -> Result<Vec<OrderRecord>, sqlx::Error> {
        if orders.is_empty() {
            return Ok(orders);
        }
        let placeholders: Vec<String> = (1..=orders.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT order_id, position, sku, quantity, unit_price FROM order_items WHERE order_id IN ({}) \
             ORDER BY order_id, position",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for order in &orders {
            query = query.bind(order.id.clone());
        }
        let mut items: HashMap<String, Vec<ItemRecord>> = HashMap::new();
        for row in query.fetch_all(&self.pool).await? {
            let order_id: String = row.try_get("order_id")?;
            items.entry(order_id).or_default().push(ItemRecord {
                sku: row.try_get("sku")?,
                quantity: row.try_get("quantity")?,
                unit_price: row.try_get("unit_price")?,
            });
        }
        for order in &mut orders {
            order.items = items.remove(&order.id).unwrap_or_default();
        }
        Ok(orders)
    }
}

fn order(row: &AnyRow) -> Result<OrderRecord, sqlx::Error> {
    let decode = |column: &str, message: &str| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: message.to_owned().into(),
    };
    let status: String = row.try_get("status")?;
    let phase: String = row.try_get("phase")?;
    Ok(OrderRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        request_hash: row.try_get("request_hash")?,
        status: Status::parse(&status).ok_or_else(|| decode("status", "unknown order status"))?,
        phase: Phase::parse(&phase).ok_or_else(|| decode("phase", "unknown order phase"))?,
        status_reason: row.try_get("status_reason")?,
        currency: row.try_get("currency")?,
        total: row.try_get("total")?,
        address: Address {
            recipient: row.try_get("recipient")?,
            line1: row.try_get("line1")?,
            line2: row.try_get("line2")?,
            city: row.try_get("city")?,
            postal_code: row.try_get("postal_code")?,
            country_code: row.try_get("country_code")?,
        },
        payment_id: row.try_get("payment_id")?,
        delivery_id: row.try_get("delivery_id")?,
        version: row.try_get("version")?,
        create_time: row.try_get("create_time")?,
        update_time: row.try_get("update_time")?,
        items: Vec::new(),
    })
}
