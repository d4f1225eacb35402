//! Who may call which DeliveryService method. Its callers are services, not users, so its methods
//! are open to any user here (a token sent is still checked); which *services* may call them is
//! decided by their certificates: only orders schedules and cancels deliveries; any service of
//! the cluster may read one.

use orderly::delivery::v1::delivery_service_methods::{
    CANCEL_DELIVERY, GET_DELIVERY, SCHEDULE_DELIVERY, SERVICE,
};
use orderly_kit::auth::rules::{Rule, Rules};

/// DeliveryService's rules.
pub fn rules() -> Rules {
    Rules::new(
        SERVICE,
        &[
            (SCHEDULE_DELIVERY, Rule::Open),
            (CANCEL_DELIVERY, Rule::Open),
            (GET_DELIVERY, Rule::Open),
        ],
    )
    .callers(&["orders"], &[SCHEDULE_DELIVERY, CANCEL_DELIVERY])
}

/// Methods never shed nor rate limited: a cancellation undoes a delivery already scheduled.
pub const NEVER_SHED: &[&str] = &[CANCEL_DELIVERY];

#[cfg(test)]
mod tests {
    #[test]
    fn every_method_the_proto_declares_has_a_rule() {
        let complete = super::rules().complete_for(orderly::FILE_DESCRIPTOR_SET);
        assert_eq!(complete, Ok(()));
    }

    #[test]
    fn its_never_shed_methods_are_methods_it_declares() {
        let undeclared = orderly_kit::auth::rules::undeclared(
            orderly::FILE_DESCRIPTOR_SET,
            super::SERVICE,
            super::NEVER_SHED,
        );
        assert_eq!(undeclared, Ok(vec![]));
    }
}
