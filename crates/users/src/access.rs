//! Who may call which UserService method: sign-up is open; a user reads, updates and deletes only
//! their own record (checked by the handlers); listing and batch reads are for admins. Only the
//! gateway and orders (by their certificates) may call it at all.

use orderly::users::v1::user_service_methods::{
    BATCH_GET_USERS, CREATE_USER, DELETE_USER, GET_USER, LIST_USERS, SERVICE, UPDATE_USER,
};
use orderly_kit::auth::rules::{OUTSIDE, Rule, Rules};

/// UserService's rules; with `closed_signup`, CreateUser is for admins only.
pub fn rules(closed_signup: bool) -> Rules {
    let rules = Rules::new(
        SERVICE,
        &[
            (CREATE_USER, Rule::Open),
            (GET_USER, Rule::User),
            (UPDATE_USER, Rule::User),
            (DELETE_USER, Rule::User),
            (LIST_USERS, Rule::Admin),
            (BATCH_GET_USERS, Rule::Admin),
        ],
    )
    .all_callers(&["orders", "gateway", OUTSIDE]);
    if closed_signup {
        rules.with(CREATE_USER, Rule::Admin)
    } else {
        rules
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_method_the_proto_declares_has_a_rule() {
        let complete = super::rules(false).complete_for(orderly::FILE_DESCRIPTOR_SET);
        assert_eq!(complete, Ok(()));
    }

    #[test]
    fn closed_signup_is_for_admins() {
        use orderly_kit::auth::rules::Rule;
        assert_eq!(super::rules(false).rule("CreateUser"), Some(Rule::Open));
        assert_eq!(super::rules(true).rule("CreateUser"), Some(Rule::Admin));
    }
}
