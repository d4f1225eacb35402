//! Who may call which CatalogService method: anyone reads the catalog; only admins change it;
//! only orders (by its certificate) reserves, commits and releases stock, and only the gateway
//! (which admins call through) changes products.

use orderly_kit::auth::rules::{Rule, Rules};

/// CatalogService's rules.
pub fn rules() -> Rules {
    Rules::new(
        "orderly.catalog.v1.CatalogService",
        &[
            ("GetProduct", Rule::Open),
            ("ListProducts", Rule::Open),
            ("BatchGetProducts", Rule::Open),
            ("CreateProduct", Rule::Admin),
            ("UpdateProduct", Rule::Admin),
            ("AdjustStock", Rule::Admin),
            ("ReserveStock", Rule::Open),
            ("CommitReservation", Rule::Open),
            ("ReleaseReservation", Rule::Open),
        ],
    )
    .callers(
        &["orders"],
        &["ReserveStock", "CommitReservation", "ReleaseReservation"],
    )
    .callers(
        &["gateway"],
        &["CreateProduct", "UpdateProduct", "AdjustStock"],
    )
}

#[cfg(test)]
mod tests {
    use orderly_kit::auth::rules::Rule;

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
        }
        for method in ["CreateProduct", "UpdateProduct", "AdjustStock"] {
            assert_eq!(rules.rule(method), Some(Rule::Admin));
            assert!(rules.admits(method, Some("orders")).is_err(), "{method}");
        }
        assert_eq!(rules.admits("GetProduct", Some("orders")), Ok(()));
        assert_eq!(rules.admits("ListProducts", Some("gateway")), Ok(()));
    }
}
