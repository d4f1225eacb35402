//! Who may call which DeliveryService method. Its callers are services, not users, so its methods
//! are open to any user here (a token sent is still checked); which *services* may call them is
//! decided by their certificates: only orders schedules and cancels deliveries; any service of
//! the cluster may read one.

use orderly_kit::auth::rules::{Rule, Rules};

/// DeliveryService's rules.
pub fn rules() -> Rules {
    Rules::new(
        "orderly.delivery.v1.DeliveryService",
        &[
            ("ScheduleDelivery", Rule::Open),
            ("CancelDelivery", Rule::Open),
            ("GetDelivery", Rule::Open),
        ],
    )
    .callers(&["orders"], &["ScheduleDelivery", "CancelDelivery"])
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_method_the_proto_declares_has_a_rule() {
        let complete = super::rules().complete_for(orderly::FILE_DESCRIPTOR_SET);
        assert_eq!(complete, Ok(()));
    }
}
