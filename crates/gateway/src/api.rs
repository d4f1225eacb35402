//! The REST routes and their OpenAPI document, built from one definition: each handler's
//! `#[utoipa::path]` gives its method, path, parameters, bodies and responses, and [`Api::route`]
//! both mounts the handler there and adds the operation to the document, so the two cannot drift.
//!
//! Why not utoipa-axum's `OpenApiRouter`: it mounts a handler at exactly its documented path, and
//! axum's router cannot match a custom method path such as `/v1/orders/{id}:cancel` (a parameter
//! followed by text in one segment). Here such a path is mounted at `/v1/orders/{id}` and its
//! handler checks the `:verb` suffix with [`custom_method`]; only one custom method can share a base
//! path and HTTP method that way (axum panics at start-up on a second).

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter};
use orderly_kit::http::web::{Route, observe};
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::{OpenApi, RefOr, schema::Schema};

/// Routes under construction, and the document describing them.
pub struct Api<S> {
    router: Router<S>,
    openapi: OpenApi,
    schemas: Vec<(String, RefOr<Schema>)>,
}

impl<S> std::fmt::Debug for Api<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field(
                "paths",
                &self.openapi.paths.paths.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<S: Clone + Send + Sync + 'static> Api<S> {
    /// No routes yet; `openapi` holds the document's info, servers and tags.
    pub fn new(openapi: OpenApi) -> Self {
        Self {
            router: Router::new(),
            openapi,
            schemas: Vec::new(),
        }
    }

    /// Mounts `handler` where its `#[utoipa::path]` (`P`, the generated `__path_<handler>` type)
    /// says, observed by the kit's HTTP spans and metrics under its documented path, and documents it.
    pub fn route<P, H, T>(mut self, handler: H) -> Self
    where
        P: utoipa::Path + utoipa::__dev::SchemaReferences + utoipa::__dev::Tags<'static>,
        H: Handler<T, S>,
        T: 'static,
    {
        let path = P::path();
        let methods = P::methods();
        let operation = self.operation_of::<P>();
        let mounted = methods
            .iter()
            .fold(MethodRouter::new(), |router, method| {
                router.on(method_filter(method), handler.clone())
            })
            .layer(axum::middleware::from_fn_with_state(
                Route::new(crate::SERVICE_NAME, &path),
                observe,
            ));
        self.router = self.router.route(&mount_path(&path), mounted);
        self.openapi
            .paths
            .add_path_operation(&path, methods, operation);
        self
    }

    /// Documents the operation of `P` without mounting a handler: for a second custom method on a
    /// base path and HTTP method already mounted (`GET /v1/orders/{id}:watch` beside
    /// `GET /v1/orders/{id}`), whose handler dispatches on the `:verb` suffix.
    pub fn document<P>(mut self) -> Self
    where
        P: utoipa::Path + utoipa::__dev::SchemaReferences + utoipa::__dev::Tags<'static>,
    {
        let operation = self.operation_of::<P>();
        self.openapi
            .paths
            .add_path_operation(P::path(), P::methods(), operation);
        self
    }

    /// The operation of `P` with its tags, its schemas gathered for the document.
    fn operation_of<P>(&mut self) -> utoipa::openapi::path::Operation
    where
        P: utoipa::Path + utoipa::__dev::SchemaReferences + utoipa::__dev::Tags<'static>,
    {
        let mut operation = P::operation();
        let tags = P::tags();
        if !tags.is_empty() {
            operation
                .tags
                .get_or_insert_with(Vec::new)
                .extend(tags.iter().map(ToString::to_string));
        }
        P::schemas(&mut self.schemas);
        operation
    }

    /// The router, and the finished document with every schema the routes use.
    pub fn finish(mut self) -> (Router<S>, OpenApi) {
        let components = self.openapi.components.get_or_insert_with(Default::default);
        components.schemas.extend(self.schemas);
        (self.router, self.openapi)
    }
}

/// Where axum mounts a documented path: a custom method's `:verb` suffix is dropped.
fn mount_path(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.find("}:") {
            Some(end) => &segment[..=end],
            None => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The id in a custom method's last path segment (`{id}:verb`), or `None` when the segment does not
/// end in `:verb`.
pub fn custom_method<'a>(segment: &'a str, verb: &str) -> Option<&'a str> {
    segment
        .strip_suffix(verb)
        .and_then(|rest| rest.strip_suffix(':'))
        .filter(|id| !id.is_empty())
}

fn method_filter(method: &HttpMethod) -> MethodFilter {
    match method {
        HttpMethod::Get => MethodFilter::GET,
        HttpMethod::Post => MethodFilter::POST,
        HttpMethod::Put => MethodFilter::PUT,
        HttpMethod::Delete => MethodFilter::DELETE,
        HttpMethod::Options => MethodFilter::OPTIONS,
        HttpMethod::Head => MethodFilter::HEAD,
        HttpMethod::Patch => MethodFilter::PATCH,
        HttpMethod::Trace => MethodFilter::TRACE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_methods_mount_at_their_base_path() {
        assert_eq!(mount_path("/v1/orders/{id}:cancel"), "/v1/orders/{id}");
        assert_eq!(mount_path("/v1/users/{id}"), "/v1/users/{id}");
        assert_eq!(custom_method("abc:cancel", "cancel"), Some("abc"));
        assert_eq!(custom_method("abc", "cancel"), None);
        assert_eq!(custom_method(":cancel", "cancel"), None);
    }
}
