//! Who may call which CatalogService method: anyone reads the catalog; only admins change it;
//! only orders (by its certificate) reserves, commits and releases stock, and only the gateway
//! (which admins call through) changes products.

use orderly::catalog::v1::catalog_service_methods::{
    ADJUST_STOCK, BATCH_GET_PRODUCTS, COMMIT_RESERVATION, CREATE_PRODUCT, GET_PRODUCT,
    LIST_PRODUCTS, RELEASE_RESERVATION, RESERVE_STOCK, SERVICE, UPDATE_PRODUCT,
};
use orderly_kit::auth::rules::{OUTSIDE, Rule, Rules};

/// CatalogService's rules.
pub fn rules() -> Rules {
    Rules::new(
        SERVICE,
        &[
            (GET_PRODUCT, Rule::Open),
            (LIST_PRODUCTS, Rule::Open),
            (BATCH_GET_PRODUCTS, Rule::Open),
            (CREATE_PRODUCT, Rule::Admin),
            (UPDATE_PRODUCT, Rule::Admin),
            (ADJUST_STOCK, Rule::Admin),
            (RESERVE_STOCK, Rule::Open),
            (COMMIT_RESERVATION, Rule::Open),
            (RELEASE_RESERVATION, Rule::Open),
        ],
    )
    .callers(
        &["orders"],
        &[RESERVE_STOCK, COMMIT_RESERVATION, RELEASE_RESERVATION],
    )
    .callers(
        &["gateway", OUTSIDE],
        &[CREATE_PRODUCT, UPDATE_PRODUCT, ADJUST_STOCK],
    )
}

/// Methods never shed nor rate limited: the commit of a paid order's stock and the release of a
/// failed one's finish or undo work already done (see `orderly_kit::server::shed::Shed::exempt`).
pub const NEVER_SHED: &[&str] = &[COMMIT_RESERVATION, RELEASE_RESERVATION];

/// Batch reads shed under the cheap limit: BatchGetProducts reads at most as many products as an
/// order has lines (a cart pricing itself), not a page of the catalog.
pub const CHEAP: &[&str] = &[BATCH_GET_PRODUCTS];

#[cfg(test)]
mod tests {
    use orderly_kit::auth::rules::{OUTSIDE, Rule};

    #[test]
    fn every_method_the_proto_declares_has_a_rule() {
        let complete = super::rules().complete_for(orderly::FILE_DESCRIPTOR_SET);
        assert_eq!(complete, Ok(()));
    }

    #[test]
    fn only_orders_moves_stock_and_only_admins_change_products() {
        let rules = super::rules();
        for method in ["ReserveStock", "CommitReservation", "ReleaseReservation"] {
            assert_eq!(rules.admits(method, Some("orders")), Ok(()));
            assert!(rules.admits(method, Some("gateway")).is_err(), "{method}");
            assert!(rules.admits(method, Some(OUTSIDE)).is_err(), "{method}");
        }
        for method in ["CreateProduct", "UpdateProduct", "AdjustStock"] {
            assert_eq!(rules.rule(method), Some(Rule::Admin));
            assert!(rules.admits(method, Some("orders")).is_err(), "{method}");
            // An outside program may, as the gateway may; its token must still be an admin's.
            assert_eq!(rules.admits(method, Some(OUTSIDE)), Ok(()));
        }
        assert_eq!(rules.admits("GetProduct", Some("orders")), Ok(()));
        assert_eq!(rules.admits("ListProducts", Some("gateway")), Ok(()));
    }

    #[test]
    fn its_never_shed_and_cheap_methods_are_methods_it_declares() {
        for list in [super::NEVER_SHED, super::CHEAP] {
            let undeclared = orderly_kit::auth::rules::undeclared(
                orderly::FILE_DESCRIPTOR_SET,
                super::SERVICE,
                list,
            );
            assert_eq!(undeclared, Ok(vec![]));
        }
    }
}
