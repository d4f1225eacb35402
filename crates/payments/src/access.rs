//! Who may call which PaymentService method. Its callers are services, not users, so its methods
//! are open to any user here (a token sent is still checked); which *services* may call them is
//! decided by their certificates: only orders moves money (Charge, Refund); any service of the
//! cluster may read a payment.

use orderly::payments::v1::payment_service_methods::{CHARGE, GET_PAYMENT, REFUND, SERVICE};
use orderly_kit::auth::rules::{Rule, Rules};

/// PaymentService's rules.
pub fn rules() -> Rules {
    Rules::new(
        SERVICE,
        &[
            (CHARGE, Rule::Open),
            (REFUND, Rule::Open),
            (GET_PAYMENT, Rule::Open),
        ],
    )
    .callers(&["orders"], &[CHARGE, REFUND])
}

/// Methods never shed nor rate limited: a refund undoes a charge already made.
pub const NEVER_SHED: &[&str] = &[REFUND];

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
