//! The orders and order_items tables. Each transition is one conditional UPDATE on status and
//! phase that bumps the version: whoever's condition holds wins, everyone else learns they lost.

use std::collections::HashMap;

use orderly::common::v1::Address;
use orderly_kit::db::{Database, Param, QueryError, Row};
use orderly_kit::params;
use orderly_kit::time::now_micros;

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
/// What a transition wrote besides its target state.
#[derive(Debug, Clone, Copy)]
pub struct Changed {
    /// The order's version after it.
    pub version: i64,
    /// When it happened, in microseconds since the Unix epoch.
    pub update_time: i64,
}

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
    db: Database,
}

impl OrderStore {
    /// A store over `db`, which has [`MIGRATIONS`] applied.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Stores a new PENDING order with id `id` (its stock already reserved under that id) and its
    /// items in one transaction, or finds the order its (user, idempotency key) pair made before.
    pub async fn insert_pending(&self, id: &str, order: &NewOrder) -> Result<Inserted, QueryError> {
        let now = now_micros();
        let request = &order.request;
        let record = OrderRecord {
            id: id.to_owned(),
            user_id: request.user_id.to_string(),
            idempotency_key: request.idempotency_key.clone(),
            request_hash: request.fingerprint.clone(),
            status: Status::Pending,
            phase: Phase::Fanout,
            status_reason: String::new(),
            currency: order.total.currency().to_string(),
            total: order.total.minor(),
            address: request.address.clone(),
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
        let mut tx = self.db.begin().await?;
        let a = &record.address;
        let inserted = tx
            .execute(
                "INSERT INTO orders (id, user_id, idempotency_key, status, phase, status_reason, currency, total, \
                 recipient, line1, line2, city, postal_code, country_code, payment_id, delivery_id, version, \
                 create_time, update_time, request_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
                params![
                    &record.id,
                    &record.user_id,
                    &record.idempotency_key,
                    record.status.as_str(),
                    record.phase.as_str(),
                    &record.status_reason,
                    &record.currency,
                    record.total,
                    &a.recipient,
                    &a.line1,
                    &a.line2,
                    &a.city,
                    &a.postal_code,
                    &a.country_code,
                    &record.payment_id,
                    &record.delivery_id,
                    record.version,
                    record.create_time,
                    record.update_time,
                    &record.request_hash,
                ],
            )
            .await;
        match inserted {
            Ok(_) => {}
            Err(error) if error.is_unique_violation() => {
                tx.rollback().await?;
                let existing = self
                    .by_key(&record.user_id, &record.idempotency_key)
                    .await?;
                return existing.map(Inserted::Existing).ok_or(error);
            }
            Err(error) => return Err(error),
        }
        for (position, item) in record.items.iter().enumerate() {
            tx.execute(
                "INSERT INTO order_items (order_id, position, sku, quantity, unit_price) VALUES ($1, $2, $3, $4, $5)",
                params![&record.id, position as i64, &item.sku, item.quantity, item.unit_price],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Inserted::New(record))
    }

    /// The order with `id`, with its items.
    pub async fn get(&self, id: &str) -> Result<Option<OrderRecord>, QueryError> {
        let found = self
            .db
            .fetch_optional(select_orders!("WHERE id = $1"), params![id], order)
            .await?;
        self.with_items(found.into_iter().collect())
            .await
            .map(|mut v| v.pop())
    }

    /// The order that `user_id` made with `key`, with its items.
    pub async fn by_key(
        &self,
        user_id: &str,
        key: &str,
    ) -> Result<Option<OrderRecord>, QueryError> {
        let found = self
            .db
            .fetch_optional(
                select_orders!("WHERE user_id = $1 AND idempotency_key = $2"),
                params![user_id, key],
                order,
            )
            .await?;
        self.with_items(found.into_iter().collect())
            .await
            .map(|mut v| v.pop())
    }

    /// Up to `limit` of `user_id`'s orders older than `before` (newest first), with their items.
    pub async fn list(
        &self,
        user_id: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, QueryError> {
        let limit = i64::from(limit);
        let orders = match before {
            None => {
                self.db
                    .fetch_all(
                        select_orders!("WHERE user_id = $1 ORDER BY id DESC LIMIT $2"),
                        params![user_id, limit],
                        order,
                    )
                    .await?
            }
            Some(before) => {
                self.db
                    .fetch_all(
                        select_orders!("WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"),
                        params![user_id, before, limit],
                        order,
                    )
                    .await?
            }
        };
        self.with_items(orders).await
    }

    /// Ids of orders with work under way (any phase but settled) untouched since `before` (µs):
    /// the recovery sweep's to-do list.
    pub async fn unsettled_since(&self, before: i64) -> Result<Vec<String>, QueryError> {
        self.db
            .fetch_all(
                "SELECT id FROM orders WHERE phase <> '' AND update_time < $1 ORDER BY update_time LIMIT 1000",
                params![before],
                |row| row.text("id"),
            )
            .await
    }

    /// FANOUT → CONFIRMED with its payment and delivery; `false` if the order was claimed by a
    /// compensator first.
    pub async fn confirm(
        &self,
        id: &str,
        payment_id: &str,
        delivery_id: &str,
    ) -> Result<Option<Changed>, QueryError> {
        self.transition(Change {
            id,
            from: (Status::Pending, &[Phase::Fanout]),
            to: (Status::Confirmed, Phase::Settled),
            reason: None,
            payment_and_delivery: Some((payment_id, delivery_id)),
        })
        .await
    }

    /// Claims a PENDING order for compensation, recording why; `false` if it already settled.
    pub async fn begin_compensation(&self, id: &str, reason: &str) -> Result<bool, QueryError> {
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
    pub async fn fail(&self, id: &str) -> Result<bool, QueryError> {
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
    pub async fn begin_cancel(&self, id: &str, reason: &str) -> Result<bool, QueryError> {
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
    pub async fn cancelled(&self, id: &str) -> Result<bool, QueryError> {
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
    async fn change(&self, change: Change<'_>) -> Result<bool, QueryError> {
        Ok(self.transition(change).await?.is_some())
    }

    /// Applies one conditional transition; the order's new version and update time, or `None`
    /// if it was not in the `from` state.
    async fn transition(&self, change: Change<'_>) -> Result<Option<Changed>, QueryError> {
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
             WHERE id = $1 AND status = $8 AND phase IN ({}) RETURNING version",
            phases.join(", ")
        );
        let update_time = now_micros();
        self.db
            .write_returning(
                &sql,
                params![
                    change.id,
                    change.to.0.as_str(),
                    change.to.1.as_str(),
                    change.reason,
                    change.payment_and_delivery.map(|(p, _)| p),
                    change.payment_and_delivery.map(|(_, d)| d),
                    update_time,
                    change.from.0.as_str(),
                ],
                |row| {
                    Ok(Changed {
                        version: row.int("version")?,
                        update_time,
                    })
                },
            )
            .await
    }

    /// Attaches each order's items, keeping the orders' order.
    async fn with_items(
        &self,
        mut orders: Vec<OrderRecord>,
    ) -> Result<Vec<OrderRecord>, QueryError> {
        if orders.is_empty() {
            return Ok(orders);
        }
        let placeholders: Vec<String> = (1..=orders.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT order_id, position, sku, quantity, unit_price FROM order_items WHERE order_id IN ({}) \
             ORDER BY order_id, position",
            placeholders.join(", ")
        );
        let params: Vec<Param<'_>> = orders.iter().map(|o| Param::from(&o.id)).collect();
        let rows = self
            .db
            .fetch_all(&sql, &params, |row| {
                Ok((
                    row.text("order_id")?,
                    ItemRecord {
                        sku: row.text("sku")?,
                        quantity: row.int("quantity")?,
                        unit_price: row.int("unit_price")?,
                    },
                ))
            })
            .await?;
        let mut items: HashMap<String, Vec<ItemRecord>> = HashMap::new();
        for (order_id, item) in rows {
            items.entry(order_id).or_default().push(item);
        }
        for order in &mut orders {
            order.items = items.remove(&order.id).unwrap_or_default();
        }
        Ok(orders)
    }
}

fn order(row: &Row<'_>) -> Result<OrderRecord, QueryError> {
    let decode = |column, message| QueryError::Decode { column, message };
    let status = row.text("status")?;
    let phase = row.text("phase")?;
    Ok(OrderRecord {
        id: row.text("id")?,
        user_id: row.text("user_id")?,
        idempotency_key: row.text("idempotency_key")?,
        request_hash: row.text("request_hash")?,
        status: Status::parse(&status).ok_or_else(|| decode("status", "unknown order status"))?,
        phase: Phase::parse(&phase).ok_or_else(|| decode("phase", "unknown order phase"))?,
        status_reason: row.text("status_reason")?,
        currency: row.text("currency")?,
        total: row.int("total")?,
        address: Address {
            recipient: row.text("recipient")?,
            line1: row.text("line1")?,
            line2: row.text("line2")?,
            city: row.text("city")?,
            postal_code: row.text("postal_code")?,
            country_code: row.text("country_code")?,
        },
        payment_id: row.text("payment_id")?,
        delivery_id: row.text("delivery_id")?,
        version: row.int("version")?,
        create_time: row.int("create_time")?,
        update_time: row.int("update_time")?,
        items: Vec::new(),
    })
}
