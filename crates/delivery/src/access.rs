//! Who may call which DeliveryService method. Its callers are services (orders), not users, so its
//! methods are open to any caller here: which *services* may call them is decided by service
//! identity (mutual TLS), not by users' tokens. A token sent is still checked.

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
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_method_the_proto_declares_has_a_rule() {
        let complete = super::rules().complete_for(orderly::FILE_DESCRIPTOR_SET);
        assert_eq!(complete, Ok(()));
    }
}
