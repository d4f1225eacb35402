//! Who may call which OrderService method: any authenticated user, for their own orders only
//! (the handlers check that CreateOrder's `user_id`, ListOrders' `user_id` and the owner of the
//! order read, cancelled or watched is the caller); an admin may act on any. Only the gateway (by
//! its certificate) may call it.

use orderly::orders::v1::order_service_methods::{
    CANCEL_ORDER, CREATE_ORDER, GET_ORDER, LIST_ORDERS, SERVICE, WATCH_ORDER,
};
use orderly_kit::auth::rules::{OUTSIDE, Rule, Rules};

/// OrderService's rules.
pub fn rules() -> Rules {
    Rules::new(
        SERVICE,
        &[
            (CREATE_ORDER, Rule::User),
            (GET_ORDER, Rule::User),
            (LIST_ORDERS, Rule::User),
            (CANCEL_ORDER, Rule::User),
            (WATCH_ORDER, Rule::User),
        ],
    )
    .all_callers(&["gateway", OUTSIDE])
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_method_the_proto_declares_has_a_rule() {
        let complete = super::rules().complete_for(orderly::FILE_DESCRIPTOR_SET);
        assert_eq!(complete, Ok(()));
    }
}
