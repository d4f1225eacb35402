//! The deliveries table. Its unique order id makes scheduling idempotent per order and lets a
//! cancel that comes first leave a cancelled record that a late schedule will find.

use orderly::common::v1::Address;
use orderly_kit::db::{Database, QueryError, Row};
use orderly_kit::params;
use orderly_kit::time::now_micros;

/// The schema, applied at start.
pub const MIGRATIONS: &[orderly_kit::db::EmbeddedMigration] = &[(
    1,
    "deliveries",
    include_str!("../migrations/0001_deliveries.sql"),
)];

/// How long after scheduling a parcel is expected, in microseconds (two days).
const TRANSIT_MICROS: i64 = 2 * 24 * 3600 * 1_000_000;

/// `SELECT` of every column of a delivery, followed by the rest of the query.
macro_rules! select_deliveries {
    ($rest:literal) => {
        concat!(
            "SELECT id, order_id, recipient, line1, line2, city, postal_code, country_code, status, reason, eta, \
             create_time, update_time FROM deliveries ",
            $rest
        )
    };
}

/// Where a stored delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Booked.
    Scheduled,
    /// Called off.
    Cancelled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "SCHEDULED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    /// Server-assigned id.
    pub id: String,
    /// The order being shipped.
    pub order_id: String,
    /// Where it goes; empty when a cancel came before any schedule.
    pub address: Address,
    /// Where it stands.
    pub status: Status,
    /// Why it was cancelled; empty otherwise.
    pub reason: String,
    /// Expected arrival, microseconds since the Unix epoch; 0 when never scheduled.
    pub eta: i64,
    /// Microseconds since the Unix epoch.
    pub create_time: i64,
    /// Microseconds since the Unix epoch.
    pub update_time: i64,
}

/// Queries on the deliveries table.
#[derive(Debug, Clone)]
pub struct DeliveryStore {
    db: Database,
}

impl DeliveryStore {
    /// A store over `db`, which has [`MIGRATIONS`] applied.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Schedules the delivery of `order_id` to `address`, or returns the order's delivery if it
    /// already has one (scheduled or cancelled).
    pub async fn schedule(
        &self,
        order_id: &str,
        address: &Address,
    ) -> Result<DeliveryRecord, QueryError> {
        let now = now_micros();
        let record = DeliveryRecord {
            id: uuid::Uuid::now_v7().to_string(),
            order_id: order_id.to_owned(),
            address: address.clone(),
            status: Status::Scheduled,
            reason: String::new(),
            eta: now + TRANSIT_MICROS,
            create_time: now,
            update_time: now,
        };
        self.insert_or_existing(record).await
    }

    /// Cancels the delivery of `order_id`. With none yet, records a cancelled one so that a late
    /// schedule books nothing. Cancelling a cancelled delivery changes nothing.
    pub async fn cancel(&self, order_id: &str, reason: &str) -> Result<DeliveryRecord, QueryError> {
        let now = now_micros();
        let cancelled = self
            .db
            .write_returning(
                "UPDATE deliveries SET status = 'CANCELLED', reason = $2, update_time = $3 \
                 WHERE order_id = $1 AND status = 'SCHEDULED' \
                 RETURNING id, order_id, recipient, line1, line2, city, postal_code, country_code, status, reason, eta, \
                 create_time, update_time",
                params![order_id, reason, now],
                record,
            )
            .await?;
        if let Some(cancelled) = cancelled {
            return Ok(cancelled);
        }
        let tombstone = DeliveryRecord {
            id: uuid::Uuid::now_v7().to_string(),
            order_id: order_id.to_owned(),
            address: Address::default(),
            status: Status::Cancelled,
            reason: reason.to_owned(),
            eta: 0,
            create_time: now,
            update_time: now,
        };
        let existing = self.insert_or_existing(tombstone).await?;
        if existing.status == Status::Scheduled {
            // Scheduled between our update and insert: cancel it now that it exists.
            return Box::pin(self.cancel(order_id, reason)).await;
        }
        Ok(existing)
    }

    /// Inserts `record`, or returns the order's existing delivery.
    async fn insert_or_existing(
        &self,
        record: DeliveryRecord,
    ) -> Result<DeliveryRecord, QueryError> {
        let a = &record.address;
        let inserted = self
            .db
            .execute(
                "INSERT INTO deliveries (id, order_id, recipient, line1, line2, city, postal_code, country_code, status, \
                 reason, eta, create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                params![
                    &record.id,
                    &record.order_id,
                    &a.recipient,
                    &a.line1,
                    &a.line2,
                    &a.city,
                    &a.postal_code,
                    &a.country_code,
                    record.status.as_str(),
                    &record.reason,
                    record.eta,
                    record.create_time,
                    record.update_time,
                ],
            )
            .await;
        match inserted {
            Ok(_) => Ok(record),
            Err(error) if error.is_unique_violation() => {
                self.by_order(&record.order_id).await?.ok_or(error)
            }
            Err(error) => Err(error),
        }
    }

    /// The delivery with `id`.
    pub async fn get(&self, id: &str) -> Result<Option<DeliveryRecord>, QueryError> {
        self.db
            .fetch_optional(select_deliveries!("WHERE id = $1"), params![id], record)
            .await
    }

    /// The delivery of `order_id`.
    pub async fn by_order(&self, order_id: &str) -> Result<Option<DeliveryRecord>, QueryError> {
        self.db
            .fetch_optional(
                select_deliveries!("WHERE order_id = $1"),
                params![order_id],
                record,
            )
            .await
    }
}

fn record(row: &Row<'_>) -> Result<DeliveryRecord, QueryError> {
    let status = row.text("status")?;
    Ok(DeliveryRecord {
        id: row.text("id")?,
        order_id: row.text("order_id")?,
        address: Address {
            recipient: row.text("recipient")?,
            line1: row.text("line1")?,
            line2: row.text("line2")?,
            city: row.text("city")?,
            postal_code: row.text("postal_code")?,
            country_code: row.text("country_code")?,
        },
        status: if status == "CANCELLED" {
            Status::Cancelled
        } else {
            Status::Scheduled
        },
        reason: row.text("reason")?,
        eta: row.int("eta")?,
        create_time: row.int("create_time")?,
        update_time: row.int("update_time")?,
    })
}
