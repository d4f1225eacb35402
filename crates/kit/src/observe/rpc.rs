//! The gRPC method of a call, as the trace and metrics layers share it: parsed from the request
//! path once per call (the server's outermost layer puts it in the request's extensions), its
//! names kept for the life of the process, and its metric handles resolved once per method and
//! status code instead of from label strings on every call.
//!
//! Paths come from callers, so the set of methods is bounded: past [`MAX_METHODS`] distinct paths
//! (only a caller probing for routes gets there), further ones share one `unknown` entry rather
//! than growing memory and metric cardinality.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use metrics::{Gauge, Histogram};

/// Distinct request paths remembered; the rest count as `unknown`.
pub const MAX_METHODS: usize = 512;

/// The 17 gRPC status codes as label values; anything else is reported as UNKNOWN (2).
const CODES: [&str; 17] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];

/// One gRPC method: its names and its metric handles.
#[derive(Debug)]
pub struct RpcMethod {
    /// `package.Service/Method`: the span name of its calls.
    pub name: &'static str,
    /// `package.Service`.
    pub service: &'static str,
    /// `Method`.
    pub method: &'static str,
    in_flight: OnceLock<Gauge>,
    server: [OnceLock<Histogram>; 17],
    client: [OnceLock<Histogram>; 17],
}

impl RpcMethod {
    fn new(name: &'static str) -> Self {
        let (service, method) = name.split_once('/').unwrap_or((name, ""));
        Self {
            name,
            service,
            method,
            in_flight: OnceLock::new(),
            server: Default::default(),
            client: Default::default(),
        }
    }

    /// The method of a request path `/package.Service/Method`.
    pub fn of_path(path: &str) -> Arc<Self> {
        lookup(path.trim_start_matches('/'))
    }

    /// The method `method` of `service`, as a client calls it.
    pub fn of(service: &str, method: &str) -> Arc<Self> {
        lookup(&format!("{service}/{method}"))
    }

    /// `rpc_server_requests_in_flight{rpc_service}`.
    pub fn in_flight(&self) -> &Gauge {
        self.in_flight.get_or_init(
            || metrics::gauge!("rpc_server_requests_in_flight", "rpc_service" => self.service),
        )
    }

    /// `rpc_server_duration_seconds` of calls that ended with `code`.
    pub fn server_duration(&self, code: i32) -> &Histogram {
        self.duration(&self.server, "rpc_server_duration_seconds", code)
    }

    /// `rpc_client_duration_seconds` of calls that ended with `code`.
    pub fn client_duration(&self, code: i32) -> &Histogram {
        self.duration(&self.client, "rpc_client_duration_seconds", code)
    }

    /// The histogram `name` of this method's calls that ended with `code`, kept in `slots`.
    fn duration<'a>(
        &self,
        slots: &'a [OnceLock<Histogram>; 17],
        name: &'static str,
        code: i32,
    ) -> &'a Histogram {
        let code = index(code);
        slots[code].get_or_init(|| {
            metrics::histogram!(
                name,
                "rpc_system" => "grpc",
                "rpc_service" => self.service,
                "rpc_method" => self.method,
                "rpc_grpc_status_code" => CODES[code],
            )
        })
    }
}

/// The `rpc_grpc_status_code` label of `code` (UNKNOWN's for a number gRPC does not define).
pub fn code_label(code: i32) -> &'static str {
    CODES[index(code)]
}

/// The label index of a status code: UNKNOWN for a number gRPC does not define.
fn index(code: i32) -> usize {
    usize::try_from(code)
        .ok()
        .filter(|&c| c < CODES.len())
        .unwrap_or(2)
}

type Methods = RwLock<HashMap<&'static str, Arc<RpcMethod>>>;

fn methods() -> &'static Methods {
    static METHODS: OnceLock<Methods> = OnceLock::new();
    METHODS.get_or_init(RwLock::default)
}

fn lookup(name: &str) -> Arc<RpcMethod> {
    if let Some(known) = methods()
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(name)
    {
        return known.clone();
    }
    let mut all = methods()
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = all.get(name) {
        return known.clone();
    }
    if all.len() >= MAX_METHODS {
        static UNKNOWN: OnceLock<Arc<RpcMethod>> = OnceLock::new();
        return UNKNOWN
            .get_or_init(|| Arc::new(RpcMethod::new("unknown/unknown")))
            .clone();
    }
    // Leaked once per distinct method, and there are at most MAX_METHODS of them.
    let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    let method = Arc::new(RpcMethod::new(name));
    all.insert(name, method.clone());
    method
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method_once() {
        let a = RpcMethod::of_path("/orderly.users.v1.UserService/GetUser");
        assert_eq!(a.service, "orderly.users.v1.UserService");
        assert_eq!(a.method, "GetUser");
        assert_eq!(a.name, "orderly.users.v1.UserService/GetUser");
        let b = RpcMethod::of("orderly.users.v1.UserService", "GetUser");
        assert!(Arc::ptr_eq(&a, &b), "one entry per method");
        assert_eq!(RpcMethod::of_path("/").service, "");
    }

    #[test]
    fn codes_outside_grpc_count_as_unknown() {
        assert_eq!(index(5), 5);
        assert_eq!(index(16), 16);
        assert_eq!(index(17), 2);
        assert_eq!(index(-1), 2);
    }
}
