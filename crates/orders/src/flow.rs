//! The order saga, for an order whose stock is reserved: charge and schedule concurrently under one
//! deadline, then commit the reservation and confirm, or undo whatever was done and fail. Also the
//! cancel of a confirmed order, and recovery of orders left unsettled by a crash.
//!
//! Correctness rests on three things: every transition is a conditional update (see
//! [`crate::store`]), so a confirm and a compensation can never both win; every downstream call is
//! keyed, so repeating it is harmless; and compensation refunds by the *charge's* key, cancels by
//! order id and releases the stock by order id, which also voids a charge, delivery or reservation
//! still on its way. Stock released comes back on hand whether it was reserved or already sold.

use std::time::Duration;

use orderly::delivery::v1::DeliveryStatus;
use orderly::payments::v1::PaymentStatus;
use orderly_kit::client::deadline::Deadline;
use tonic::Status;
use tracing::Instrument;

use crate::changes::Changes;
use crate::downstream::Downstreams;
use crate::model::{OrderRecord, Phase, Status as OrderStatus};
use crate::outcomes;
use crate::store::OrderStore;
use orderly_kit::auth::OnBehalf;
use orderly_kit::client::breaker::Permit;

/// Why a step of the saga failed.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The orders database failed.
    #[error("database error: {0}")]
    Database(#[from] orderly_kit::db::QueryError),
    /// The order vanished from under the saga.
    #[error("order {0} disappeared")]
    Missing(String),
    /// A downstream service failed after every retry.
    #[error("{0}")]
    Downstream(Status),
}

/// How many orders the recovery sweep settles at once: enough that a backlog left by an outage
/// clears in seconds, few enough not to flood the downstreams that just came back.
pub const RECOVERY_CONCURRENCY: usize = 32;

/// Why an order failed when its fan-out ran out of time.
const DEADLINE_REASON: &str = "deadline exceeded before payment and delivery completed";
/// Why an order failed when its paid and scheduled stock could not be sold.
const STOCK_REASON: &str = "the reserved stock could not be sold";

/// How long the calls that undo an order may take.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// Deadline of each undo call (its retries, inside the downstream's retry budget, included).
    pub undo_timeout: Duration,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            undo_timeout: Duration::from_secs(2),
        }
    }
}

/// Runs orders through their life.
#[derive(Debug, Clone)]
pub struct Flow {
    store: OrderStore,
    downstreams: Downstreams,
    changes: Changes,
    config: FlowConfig,
}

impl Flow {
    /// A saga runner over these parts.
    pub fn new(
        store: OrderStore,
        downstreams: Downstreams,
        changes: Changes,
        config: FlowConfig,
    ) -> Self {
        outcomes::declare();
        Self {
            store,
            downstreams,
            changes,
            config,
        }
    }

    async fn reload(&self, id: &str) -> Result<OrderRecord, FlowError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| FlowError::Missing(id.to_owned()))
    }

    /// Charges and schedules a PENDING order whose stock is reserved, concurrently, both bounded by
    /// `deadline`, under the permits taken when it was admitted; when both succeed, sells the
    /// reserved stock and confirms it; compensates it otherwise. Returns the order as it then
    /// stands.
    pub async fn process(
        &self,
        order: OrderRecord,
        (charge, schedule): (Permit, Permit),
        on_behalf: &OnBehalf,
        deadline: Deadline,
    ) -> Result<OrderRecord, FlowError> {
        let both = async {
            tokio::join!(
                self.downstreams
                    .charge(&order, (charge, on_behalf), deadline),
                self.downstreams
                    .schedule(&order, (schedule, on_behalf), deadline)
            )
        };
        let failure = match tokio::time::timeout_at(deadline.instant(), both).await {
            Err(_) => DEADLINE_REASON.to_owned(),
            Ok((Ok(payment), Ok(delivery)))
                if payment.status == PaymentStatus::Succeeded as i32
                    && delivery.status == DeliveryStatus::Scheduled as i32 =>
            {
                // Sold only now that it is paid for; a reservation that expired or was released
                // meanwhile fails the order, and compensation gives the money back.
                if let Err(status) = self.downstreams.commit_stock(&order.id, deadline).await {
                    tracing::warn!(order_id = %order.id, %status, "reserved stock not sold");
                    return self.compensate(&order.id, STOCK_REASON).await;
                }
                let Some(changed) = self
                    .store
                    .confirm(&order.id, &payment.id, &delivery.id)
                    .await?
                else {
                    // A compensator claimed it first: report what is stored.
                    return self.reload(&order.id).await;
                };
                tracing::info!(order_id = %order.id, payment_id = %payment.id, delivery_id = %delivery.id, "order confirmed");
                outcomes::settled(OrderStatus::Confirmed);
                self.changes.notify(&order.id);
                return Ok(OrderRecord {
                    status: OrderStatus::Confirmed,
                    phase: Phase::Settled,
                    payment_id: payment.id,
                    delivery_id: delivery.id,
                    version: changed.version,
                    update_time: changed.update_time,
                    ..order
                });
            }
            // Downstreams enforce the deadline we sent too: a failure once it passed is the deadline's.
            Ok(_) if deadline.is_expired() => DEADLINE_REASON.to_owned(),
            Ok((payment, delivery)) => failure_reason(payment, delivery),
        };
        self.compensate(&order.id, &failure).await
    }

    /// Undoes a PENDING order's charge and delivery and marks it FAILED with `reason`. The undo
    /// calls run once (each retried by the downstream layer inside its retry budget); if they
    /// fail, the order stays compensating and the recovery sweep settles it, so a caller is never
    /// held up by a downstream that is down. The order is returned as it then stands: FAILED, or
    /// still PENDING while compensating.
    pub async fn compensate(&self, id: &str, reason: &str) -> Result<OrderRecord, FlowError> {
        if !self.store.begin_compensation(id, reason).await? {
            return self.reload(id).await;
        }
        self.changes.notify(id);
        outcomes::compensation_begun();
        tracing::warn!(order_id = %id, reason, "compensating order");
        match self.undo(id, reason).await {
            Ok(()) => self.mark_failed(id, reason).await?,
            Err(status) => {
                tracing::warn!(order_id = %id, %status, "undo failed; the recovery sweep retries");
            }
        }
        self.reload(id).await
    }

    /// COMPENSATING → FAILED, once the undo calls succeeded.
    async fn mark_failed(&self, id: &str, reason: &str) -> Result<(), FlowError> {
        if self.store.fail(id).await? {
            tracing::info!(order_id = %id, reason, "order failed and compensated");
            outcomes::settled(OrderStatus::Failed);
            self.changes.notify(id);
        }
        Ok(())
    }

    /// Cancels a CONFIRMED order: refunds it, cancels its delivery, puts its stock back on hand,
    /// marks it CANCELLED. Idempotent;
    /// an order already cancelled is returned as it is.
    pub async fn cancel(&self, order: OrderRecord, reason: &str) -> Result<OrderRecord, FlowError> {
        if order.status == OrderStatus::Cancelled {
            return Ok(order);
        }
        if self.store.begin_cancel(&order.id, reason).await? {
            self.changes.notify(&order.id);
        }
        let current = self.reload(&order.id).await?;
        if current.status != OrderStatus::Confirmed {
            return Ok(current);
        }
        // If the undo fails, the order stays cancelling and the recovery sweep finishes it.
        self.undo(&order.id, reason)
            .await
            .map_err(FlowError::Downstream)?;
        if self.store.cancelled(&order.id).await? {
            tracing::info!(order_id = %order.id, reason, "order cancelled");
            outcomes::settled(OrderStatus::Cancelled);
            self.changes.notify(&order.id);
        }
        self.reload(&order.id).await
    }

    /// Refunds the order's charge, cancels its delivery and puts its stock back, all concurrently:
    /// one call each, which the downstream layer retries inside its retry budget (one policy for
    /// every call orders makes), under the undo deadline.
    async fn undo(&self, id: &str, reason: &str) -> Result<(), Status> {
        let deadline = || Deadline::after(self.config.undo_timeout);
        let (refunded, cancelled, released) = tokio::join!(
            self.downstreams.refund(id, reason, deadline()),
            self.downstreams.cancel_delivery(id, reason, deadline()),
            self.downstreams.release_stock(id, reason, deadline()),
        );
        refunded
            .map(drop)
            .and(cancelled.map(drop))
            .and(released.map(drop))
    }

    /// Settles every order whose work has stood still since before `stale_after` ago: unfinished
    /// fan-outs and compensations are compensated, unfinished cancels are finished.
    pub async fn recover(&self, stale_after: Duration) -> Result<usize, FlowError> {
        let cutoff = orderly_kit::time::now_micros()
            - i64::try_from(stale_after.as_micros()).unwrap_or(i64::MAX);
        let ids = self.store.unsettled_since(cutoff).await?;
        let count = ids.len();
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(RECOVERY_CONCURRENCY));
        let mut running = tokio::task::JoinSet::new();
        for id in ids {
            // The semaphore is never closed.
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let flow = self.clone();
            running.spawn(
                async move {
                    if let Err(error) = flow.recover_one(&id).await {
                        tracing::error!(order_id = %id, %error, "recovery failed; will retry");
                    }
                    drop(slot);
                }
                .in_current_span(),
            );
        }
        while running.join_next().await.is_some() {}
        Ok(count)
    }

    /// Settles one unsettled order: finishes its cancel, or compensates it.
    async fn recover_one(&self, id: &str) -> Result<OrderRecord, FlowError> {
        let order = self.reload(id).await?;
        tracing::warn!(order_id = %id, phase = ?order.phase, "recovering unsettled order");
        if order.phase != Phase::Settled {
            outcomes::recovered(order.phase);
        }
        match order.phase {
            Phase::Cancelling => {
                let reason = order.status_reason.clone();
                self.cancel(order, &reason).await
            }
            Phase::Fanout | Phase::Compensating => {
                let reason = if order.status_reason.is_empty() {
                    "not completed in time; compensated by recovery".to_owned()
                } else {
                    order.status_reason.clone()
                };
                self.compensate(id, &reason).await
            }
            Phase::Settled => Ok(order),
        }
    }
}

/// Why a fan-out that answered did not confirm.
fn failure_reason(
    payment: Result<orderly::payments::v1::Payment, Status>,
    delivery: Result<orderly::delivery::v1::Delivery, Status>,
) -> String {
    let payment = match payment {
        Err(status) => Some(format!("payment failed: {}", status.message())),
        Ok(p) if p.status != PaymentStatus::Succeeded as i32 => {
            Some("payment was voided".to_owned())
        }
        Ok(_) => None,
    };
    let delivery = match delivery {
        Err(status) => Some(format!("delivery failed: {}", status.message())),
        Ok(d) if d.status != DeliveryStatus::Scheduled as i32 => {
            Some("delivery was cancelled".to_owned())
        }
        Ok(_) => None,
    };
    [payment, delivery]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
}
