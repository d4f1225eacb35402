//! What became of orders, counted for the dashboard's saga panel and for alerts: orders settled
//! by their final status, compensations begun, and unsettled orders the recovery sweep took up.
//! Every series is declared at zero when the saga starts, so a panel or an alert on its rate reads
//! 0, not "no data".

use crate::model::{Phase, Status};

/// The final statuses an order settles in.
const SETTLED: [Status; 3] = [Status::Confirmed, Status::Failed, Status::Cancelled];

/// The phases the recovery sweep takes an order up in.
const RECOVERED: [Phase; 3] = [Phase::Fanout, Phase::Compensating, Phase::Cancelling];

/// Registers every series at zero.
pub fn declare() {
    for status in SETTLED {
        metrics::counter!("orderly_orders_settled_total", "status" => status.as_str()).increment(0);
    }
    metrics::counter!("orderly_orders_compensations_total").increment(0);
    for phase in RECOVERED {
        metrics::counter!("orderly_orders_recoveries_total", "phase" => phase.as_str())
            .increment(0);
    }
}

/// Counts an order settled as `status` (CONFIRMED, FAILED or CANCELLED).
pub fn settled(status: Status) {
    metrics::counter!("orderly_orders_settled_total", "status" => status.as_str()).increment(1);
}

/// Counts a compensation begun (a charge and a delivery to undo).
pub fn compensation_begun() {
    metrics::counter!("orderly_orders_compensations_total").increment(1);
}

/// Counts an unsettled order the recovery sweep took up in `phase`.
pub fn recovered(phase: Phase) {
    metrics::counter!("orderly_orders_recoveries_total", "phase" => phase.as_str()).increment(1);
}
