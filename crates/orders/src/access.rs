//! Who may call which OrderService method: any authenticated user, for their own orders only
//! (the handlers check that CreateOrder's `user_id`, ListOrders' `user_id` and the owner of the
//! order read, cancelled or watched is the caller); an admin may act on any. Only the gateway (by
//! its certificate) may call it.

use orderly_kit::auth::rules::{Rule, Rules};

/// OrderService's rules.
pub fn rules() -> Rules {
    Rules::new(
        "orderly.orders.v1.OrderService",
        &[
            ("CreateOrder", Rule::User),
            ("GetOrder", Rule::User),
            ("ListOrders", Rule::User),
            ("CancelOrder", Rule::User),
            ("WatchOrder", Rule::User),
        ],
    )
    .all_callers(&["gateway"])
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_method_the_proto_declares_has_a_rule() {
        let complete = super::rules().complete_for(orderly::FILE_DESCRIPTOR_SET);
        assert_eq!(complete, Ok(()));
    }
}
