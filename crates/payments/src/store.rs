//! The payments and refunds tables. Every race is decided by a unique index: a charge's
//! idempotency key, a refund's idempotency key; and a refund can never exceed its charge because
//! the update that records it carries that condition itself.

use orderly::money::Money;
use orderly_kit::db::{Database, QueryError, Row};
use orderly_kit::params;
use orderly_kit::time::now_micros;

/// The schema, applied at start.
pub const MIGRATIONS: &[orderly_kit::db::EmbeddedMigration] = &[(
    1,
    "payments",
    include_str!("../migrations/0001_payments.sql"),
)];

/// `SELECT` of every column of a payment, followed by the rest of the query.
macro_rules! select_payments {
    ($rest:literal) => {
        concat!(
            "SELECT id, order_id, currency, amount, refunded, idempotency_key, create_time, update_time FROM payments ",
            $rest
        )
    };
}

/// The guarded update of a refund: adds `$2` to the refunded total of payment `$1` only while the
/// total stays within the amount charged.
const RECORD_REFUND: &str = "UPDATE payments SET refunded = refunded + $2, update_time = $3 \
     WHERE id = $1 AND refunded + $2 <= amount \
     RETURNING id, order_id, currency, amount, refunded, idempotency_key, create_time, update_time";

/// A payment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    /// Server-assigned id.
    pub id: String,
    /// The order it was for; empty for a voided charge.
    pub order_id: String,
    /// ISO 4217 code; empty for a voided charge.
    pub currency: String,
    /// Charged, in minor units; 0 for a voided charge.
    pub amount: i64,
    /// Refunded so far, in minor units.
    pub refunded: i64,
    /// The charge's idempotency key.
    pub idempotency_key: String,
    /// Microseconds since the Unix epoch.
    pub create_time: i64,
    /// Microseconds since the Unix epoch.
    pub update_time: i64,
}

impl PaymentRecord {
    /// Whether this is a voided charge: refunded by key before it was made.
    pub fn is_voided(&self) -> bool {
        self.amount == 0
    }

    /// What is left to refund, in minor units.
    pub fn remaining(&self) -> i64 {
        self.amount - self.refunded
    }
}

/// What a charge attempt found.
#[derive(Debug)]
pub enum Charged {
    /// This call made the charge.
    New(PaymentRecord),
    /// The key was used before; this is what it made.
    Existing(PaymentRecord),
}

/// What a refund attempt did.
#[derive(Debug)]
pub enum Refunded {
    /// The refund was recorded; the payment after it.
    Done(PaymentRecord),
    /// A refund with this key was recorded before; nothing changed.
    Replayed,
    /// The payment has less left to refund than asked.
    Exceeds,
}

/// Queries on the payments and refunds tables.
#[derive(Debug, Clone)]
pub struct PaymentStore {
    db: Database,
}

impl PaymentStore {
    /// A store over `db`, which has [`MIGRATIONS`] applied.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Charges `amount` for `order_id` under `key`, or finds what `key` made before.
    pub async fn charge(
        &self,
        order_id: &str,
        amount: Money,
        key: &str,
    ) -> Result<Charged, QueryError> {
        let now = now_micros();
        let record = PaymentRecord {
            id: uuid::Uuid::now_v7().to_string(),
            order_id: order_id.to_owned(),
            currency: amount.currency().to_string(),
            amount: amount.minor(),
            refunded: 0,
            idempotency_key: key.to_owned(),
            create_time: now,
            update_time: now,
        };
        match self.insert(&record).await {
            Ok(()) => Ok(Charged::New(record)),
            Err(error) if error.is_unique_violation() => match self.by_key(key).await? {
                Some(existing) => Ok(Charged::Existing(existing)),
                None => Err(error),
            },
            Err(error) => Err(error),
        }
    }

    /// Records that the charge of `key` must never be made, unless it already was; returns the
    /// payment `key` stands for, voided or real.
    pub async fn void_charge(&self, key: &str) -> Result<PaymentRecord, QueryError> {
        let now = now_micros();
        let tombstone = PaymentRecord {
            id: uuid::Uuid::now_v7().to_string(),
            order_id: String::new(),
            currency: String::new(),
            amount: 0,
            refunded: 0,
            idempotency_key: key.to_owned(),
            create_time: now,
            update_time: now,
        };
        match self.insert(&tombstone).await {
            Ok(()) => Ok(tombstone),
            Err(error) if error.is_unique_violation() => self.by_key(key).await?.ok_or(error),
            Err(error) => Err(error),
        }
    }

    async fn insert(&self, record: &PaymentRecord) -> Result<(), QueryError> {
        self.db
            .execute(
                "INSERT INTO payments (id, order_id, currency, amount, refunded, idempotency_key, create_time, update_time) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                params![
                    &record.id,
                    &record.order_id,
                    &record.currency,
                    record.amount,
                    record.refunded,
                    &record.idempotency_key,
                    record.create_time,
                    record.update_time,
                ],
            )
            .await
            .map(drop)
    }

    /// The payment with `id`.
    pub async fn get(&self, id: &str) -> Result<Option<PaymentRecord>, QueryError> {
        self.db
            .fetch_optional(select_payments!("WHERE id = $1"), params![id], record)
            .await
    }

    /// The payment made with charge idempotency key `key`.
    pub async fn by_key(&self, key: &str) -> Result<Option<PaymentRecord>, QueryError> {
        self.db
            .fetch_optional(
                select_payments!("WHERE idempotency_key = $1"),
                params![key],
                record,
            )
            .await
    }

    /// Refunds `amount` of payment `payment_id` under refund key `key`, in one transaction: the
    /// refund row first (its unique key catches replays), then the payment, on the condition that
    /// the total refunded stays within the charge.
    pub async fn refund(
        &self,
        payment_id: &str,
        amount: i64,
        key: &str,
        reason: &str,
    ) -> Result<Refunded, QueryError> {
        let now = now_micros();
        let id = uuid::Uuid::now_v7().to_string();
        let mut tx = self.db.begin().await?;
        let inserted = tx
            .execute(
                "INSERT INTO refunds (id, payment_id, amount, idempotency_key, reason, create_time) VALUES ($1, $2, $3, $4, $5, $6)",
                params![&id, payment_id, amount, key, reason, now],
            )
            .await;
        match inserted {
            Ok(_) => {}
            Err(error) if error.is_unique_violation() => {
                tx.rollback().await?;
                return Ok(Refunded::Replayed);
            }
            Err(error) => return Err(error),
        }
        let payment = tx
            .fetch_optional(RECORD_REFUND, params![payment_id, amount, now], record)
            .await?;
        match payment {
            Some(payment) => {
                tx.commit().await?;
                Ok(Refunded::Done(payment))
            }
            None => {
                tx.rollback().await?;
                Ok(Refunded::Exceeds)
            }
        }
    }

    /// The refund key's payment id, when a refund with `key` exists.
    pub async fn refund_payment(&self, key: &str) -> Result<Option<String>, QueryError> {
        self.db
            .fetch_optional(
                "SELECT payment_id FROM refunds WHERE idempotency_key = $1",
                params![key],
                |row| row.text("payment_id"),
            )
            .await
    }
}

fn record(row: &Row<'_>) -> Result<PaymentRecord, QueryError> {
    Ok(PaymentRecord {
        id: row.text("id")?,
        order_id: row.text("order_id")?,
        currency: row.text("currency")?,
        amount: row.int("amount")?,
        refunded: row.int("refunded")?,
        idempotency_key: row.text("idempotency_key")?,
        create_time: row.int("create_time")?,
        update_time: row.int("update_time")?,
    })
}
