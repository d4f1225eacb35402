//! Who may call which PaymentService method. Its callers are services, not users, so its methods
//! are open to any user here (a token sent is still checked); which *services* may call them is
//! decided by their certificates: only orders moves money (Charge, Refund); any service of the
//! cluster may read a payment.

use orderly_kit::auth::rules::{Rule, Rules};

/// PaymentService's rules.
pub fn rules() -> Rules {
    Rules::new(
        "orderly.payments.v1.PaymentService",
        &[
            ("Charge", Rule::Open),
            ("Refund", Rule::Open),
            ("GetPayment", Rule::Open),
        ],
    )
    .callers(&["orders"], &["Charge", "Refund"])
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_method_the_proto_declares_has_a_rule() {
        let complete = super::rules().complete_for(orderly::FILE_DESCRIPTOR_SET);
        assert_eq!(complete, Ok(()));
    }
}
