//! Every service Orderly has, in the order `orderly up` starts them: those called first.

use orderly_kit::declare::Declared;

/// The declared services. A new service is a crate implementing `orderly_kit::declare::Service`
/// and a line here.
pub static SERVICES: [Declared; 6] = [
    Declared::of::<orderly_users::UsersService>(),
    Declared::of::<orderly_payments::PaymentsService>(),
    Declared::of::<orderly_delivery::DeliveryService>(),
    Declared::of::<orderly_catalog::CatalogService>(),
    Declared::of::<orderly_orders::OrdersService>(),
    Declared::of::<orderly_gateway::declared::GatewayService>(),
];

/// The declared service named `name`.
pub fn find(name: &str) -> Option<&'static Declared> {
    SERVICES.iter().find(|service| service.name == name)
}

/// Every service's name: the certificates to issue, the services telemetry reports as.
pub fn names() -> Vec<&'static str> {
    SERVICES.iter().map(|service| service.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_call_reaches_a_declared_grpc_service() {
        let mut names = names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SERVICES.len());
        for service in &SERVICES {
            for callee in service.calls {
                let callee = find(callee).unwrap_or_else(|| panic!("{callee} is declared"));
                assert!(
                    callee.grpc,
                    "{} calls {}, a gRPC service",
                    service.name, callee.name
                );
            }
        }
    }

    #[test]
    fn ports_are_distinct() {
        let mut ports: Vec<u16> = SERVICES.iter().map(|service| service.port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), SERVICES.len());
    }
}
