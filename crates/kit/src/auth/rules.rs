//! Who may call which method of a service: a declarative table per service ([`Rules`]), checked
//! against the methods its proto declares ([`Rules::missing_from`]), and applied to every call
//! before its handler runs by [`Authenticate`], a layer over the generated gRPC service. It works
//! on the HTTP request, so unary and streaming calls alike pass through it.
//!
//! The table also says which *services* may call each method ([`Rules::callers`]): over mutual
//! TLS the calling service is known from its certificate ([`crate::tls`]), and one not listed is
//! refused with `CALLER_NOT_ALLOWED` before its token is even looked at. A method without a
//! list admits any service holding a certificate of the cluster's CA; over plaintext there are no
//! identities to check.
//!
//! Ownership ("a user reads only their own orders") depends on the request's fields, which the
//! layer does not decode: a [`Rule::User`] method's handler checks it with
//! [`super::Caller::may_act_for`].

use std::collections::HashMap;

use prost::Message as _;
use prost_types::FileDescriptorSet;

use super::verify::Verifier;
use super::{AuthError, Caller};

/// The name that stands in a caller list ([`Rules::callers`], [`Rules::all_callers`]) for every
/// program outside the suite holding a client certificate of the CA (`orderly certs --client`):
/// put it where the gateway is, so that a shop's backend calls what the gateway may, with its own
/// certificate and a user's token.
pub const OUTSIDE: &str = "outside programs";

/// Who may call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone, with or without a token (a token sent must still be valid): sign-up.
    Open,
    /// Any caller with a valid token; the handler allows only the caller's own data (or an admin).
    User,
    /// Callers whose token has the `admin` role.
    Admin,
}

/// A service's rules, by method name.
#[derive(Debug, Clone)]
pub struct Rules {
    service: &'static str,
    methods: HashMap<&'static str, Rule>,
    /// The services that may call a method, where the table restricts them.
    callers: HashMap<&'static str, &'static [&'static str]>,
    /// The services that may call a method the table names in `callers` no list for.
    all_callers: Option<&'static [&'static str]>,
}

impl Rules {
    /// The rules of `service` (its full name, `package.Service`), one per method.
    pub fn new(service: &'static str, methods: &[(&'static str, Rule)]) -> Self {
        Self {
            service,
            methods: methods.iter().copied().collect(),
            callers: HashMap::new(),
            all_callers: None,
        }
    }

    /// The same rules, with only `services` (by their certificates' names) allowed to call
    /// `methods`.
    pub fn callers(mut self, services: &'static [&'static str], methods: &[&'static str]) -> Self {
        for method in methods {
            self.callers.insert(method, services);
        }
        self
    }

    /// The same rules, with only `services` allowed to call the methods [`Rules::callers`] gives
    /// no list of their own.
    pub fn all_callers(mut self, services: &'static [&'static str]) -> Self {
        self.all_callers = Some(services);
        self
    }

    /// Admits a call to `method` from the service `caller` (its certificate's name; `None` for a
    /// certificate naming no service), or refuses it with `CALLER_NOT_ALLOWED`.
    pub fn admits(&self, method: &str, caller: Option<&str>) -> Result<(), AuthError> {
        let allowed = self.callers.get(method).copied().or(self.all_callers);
        match allowed {
            None => Ok(()),
            Some(services) if caller.is_some_and(|caller| services.contains(&caller)) => Ok(()),
            Some(_) => Err(AuthError::CallerNotAllowed),
        }
    }

    /// The same rules with `method`'s changed to `rule` (e.g. sign-up closed).
    pub fn with(mut self, method: &'static str, rule: Rule) -> Self {
        self.methods.insert(method, rule);
        self
    }

    /// The rule of `method`, if it has one.
    pub fn rule(&self, method: &str) -> Option<Rule> {
        self.methods.get(method).copied()
    }

    /// The methods the service declares in `descriptor_set` that have no rule, and the rules
    /// naming methods it does not declare: both empty when the table is complete.
    pub fn missing_from(
        &self,
        descriptor_set: &[u8],
    ) -> Result<(Vec<String>, Vec<String>), prost::DecodeError> {
        let declared = declared(descriptor_set, self.service)?;
        let unruled = declared
            .iter()
            .filter(|method| !self.methods.contains_key(method.as_str()))
            .cloned()
            .collect();
        let mut undeclared: Vec<String> = self
            .methods
            .keys()
            .chain(self.callers.keys())
            .filter(|method| !declared.iter().any(|d| d == *method))
            .map(|method| (*method).to_owned())
            .collect();
        undeclared.sort();
        undeclared.dedup();
        Ok((unruled, undeclared))
    }

    /// Checks that the table is complete against the service `descriptor_set` declares: every
    /// method has a rule and every rule a method. Each service's test calls it, so that a method
    /// added to the proto without a rule fails the build's tests.
    pub fn complete_for(&self, descriptor_set: &[u8]) -> Result<(), String> {
        let (unruled, undeclared) = self
            .missing_from(descriptor_set)
            .map_err(|error| format!("the descriptor set does not decode: {error}"))?;
        if unruled.is_empty() && undeclared.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{}: methods without a rule {unruled:?}, rules without a method {undeclared:?}",
                self.service
            ))
        }
    }

    /// Decides a call to `method` with the `authorization` header `header`: the caller (if any)
    /// or why it is refused. A method without a rule is let through to its service, which
    /// answers UNIMPLEMENTED.
    pub fn decide(
        &self,
        verifier: &Verifier,
        method: &str,
        header: Option<&[u8]>,
    ) -> Result<Option<Caller>, AuthError> {
        match self.rule(method) {
            None => Ok(None),
            Some(Rule::Open) if header.is_none() => Ok(None),
            Some(Rule::Open | Rule::User) => verifier.authorization(header).map(Some),
            Some(Rule::Admin) => {
                let caller = verifier.authorization(header)?;
                if caller.is_admin() {
                    Ok(Some(caller))
                } else {
                    Err(AuthError::MissingRole)
                }
            }
        }
    }
}

/// The methods `service` (its full name, `package.Service`) declares in `descriptor_set`, in the
/// order the proto declares them.
pub fn declared(descriptor_set: &[u8], service: &str) -> Result<Vec<String>, prost::DecodeError> {
    let set = FileDescriptorSet::decode(descriptor_set)?;
    Ok(set
        .file
        .iter()
        .flat_map(|file| {
            let package = file.package();
            file.service
                .iter()
                .filter(move |s| {
                    service
                        .strip_prefix(package)
                        .and_then(|rest| rest.strip_prefix('.'))
                        == Some(s.name())
                })
                .flat_map(|s| s.method.iter().map(|method| method.name().to_owned()))
        })
        .collect())
}

/// Of `methods` (a service's list of methods for some treatment: never shed, cheap), those that
/// `service` does not declare in `descriptor_set`: empty when every one is a method of it. Each
/// service's tests check its lists with it, as [`Rules::complete_for`] checks its rules.
pub fn undeclared(
    descriptor_set: &[u8],
    service: &str,
    methods: &[&str],
) -> Result<Vec<String>, prost::DecodeError> {
    let declared = declared(descriptor_set, service)?;
    Ok(methods
        .iter()
        .filter(|method| !declared.iter().any(|d| d == *method))
        .map(|method| (*method).to_owned())
        .collect())
}

#[cfg(feature = "server")]
pub use layer::{Authenticate, AuthenticateLayer};

#[cfg(feature = "server")]
mod layer {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use tonic::Status;
    use tonic::server::NamedService;
    use tower::Service;

    use super::*;

    /// A generated gRPC service behind its [`Rules`]: each call is decided before the service
    /// sees it; the caller goes into the request's extensions ([`Caller::of`]); a refused call is
    /// answered UNAUTHENTICATED or PERMISSION_DENIED with its reason, and its body drained.
    /// Without a verifier (no JWKS configured) every call passes, with no caller.
    #[derive(Debug, Clone)]
    pub struct Authenticate<S> {
        inner: S,
        verifier: Option<Arc<Verifier>>,
        rules: Arc<Rules>,
    }

    impl<S> Authenticate<S> {
        /// `inner`, calls to it decided by `rules` with tokens checked by `verifier`.
        pub fn new(inner: S, verifier: Option<Arc<Verifier>>, rules: Arc<Rules>) -> Self {
            Self {
                inner,
                verifier,
                rules,
            }
        }
    }

    /// The layer of [`Authenticate`]: calls decided by `rules`, tokens checked by `verifier`
    /// (none: every call passes, with no caller).
    #[derive(Debug, Clone)]
    pub struct AuthenticateLayer {
        verifier: Option<Arc<Verifier>>,
        rules: Arc<Rules>,
    }

    impl AuthenticateLayer {
        /// Calls decided by `rules`, with tokens checked by `verifier`.
        pub fn new(verifier: Option<Arc<Verifier>>, rules: Rules) -> Self {
            Self {
                verifier,
                rules: Arc::new(rules),
            }
        }
    }

    impl<S> tower::Layer<S> for AuthenticateLayer {
        type Service = Authenticate<S>;

        fn layer(&self, inner: S) -> Self::Service {
            Authenticate::new(inner, self.verifier.clone(), self.rules.clone())
        }
    }

    impl<S: NamedService> NamedService for Authenticate<S> {
        const NAME: &'static str = S::NAME;
    }

    impl<S, B> Service<http::Request<B>> for Authenticate<S>
    where
        S: NamedService
            + Service<
                http::Request<B>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            >,
        S::Future: Send + 'static,
        B: http_body::Body + Send + Unpin + 'static,
        B::Data: Send,
    {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = crate::refuse::ResponseFuture;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
            let method = request.uri().path().rsplit('/').next().unwrap_or_default();
            let decided = match crate::tls::server::Peer::of(&request) {
                Some(peer) if peer.tls => self.rules.admits(method, peer.caller()),
                _ => Ok(()),
            };
            let Some(verifier) = &self.verifier else {
                return match decided {
                    Ok(()) => Box::pin(self.inner.call(request)),
                    Err(refusal) => refuse::<S, B>(request, refusal),
                };
            };
            let decided = decided
                .and_then(|()| super::super::authorization(request.headers()))
                .and_then(|header| self.rules.decide(verifier, method, header));
            match decided {
                Ok(caller) => {
                    if let Some(caller) = caller {
                        // The server span's (OpenTelemetry's `enduser.id`); never the token.
                        tracing::Span::current().record("enduser.id", caller.subject.as_str());
                        request.extensions_mut().insert(caller);
                    }
                    Box::pin(self.inner.call(request))
                }
                Err(refusal) => refuse::<S, B>(request, refusal),
            }
        }
    }

    /// Answers a refused call with its status (after counting it), draining its body.
    fn refuse<S: NamedService, B>(
        request: http::Request<B>,
        refusal: AuthError,
    ) -> crate::refuse::ResponseFuture
    where
        B: http_body::Body + Send + Unpin + 'static,
        B::Data: Send,
    {
        metrics::counter!("orderly_server_auth_refused_total",
            "rpc_service" => S::NAME, "reason" => refusal.reason().as_str())
        .increment(1);
        crate::refuse::refused(request, Status::from(refusal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users_rules() -> Rules {
        Rules::new(
            "orderly.users.v1.UserService",
            &[
                ("CreateUser", Rule::Open),
                ("GetUser", Rule::User),
                ("UpdateUser", Rule::User),
                ("DeleteUser", Rule::User),
                ("ListUsers", Rule::Admin),
            ],
        )
    }

    #[test]
    fn only_listed_services_may_call_a_restricted_method() {
        let rules = Rules::new(
            "orderly.payments.v1.PaymentService",
            &[("Charge", Rule::Open), ("GetPayment", Rule::Open)],
        )
        .callers(&["orders"], &["Charge"]);
        assert_eq!(rules.admits("Charge", Some("orders")), Ok(()));
        assert_eq!(
            rules.admits("Charge", Some("delivery")),
            Err(AuthError::CallerNotAllowed)
        );
        assert_eq!(
            rules.admits("Charge", None),
            Err(AuthError::CallerNotAllowed),
            "a certificate naming no service is nobody"
        );
        assert_eq!(rules.admits("GetPayment", Some("delivery")), Ok(()));
        let users = users_rules().all_callers(&["orders", "gateway"]);
        assert_eq!(users.admits("GetUser", Some("gateway")), Ok(()));
        assert_eq!(
            users.admits("GetUser", Some("payments")),
            Err(AuthError::CallerNotAllowed)
        );
    }

    #[test]
    fn a_method_without_a_rule_and_a_rule_without_a_method_are_found() {
        let (unruled, undeclared) = users_rules()
            .with("Frobnicate", Rule::Admin)
            .missing_from(orderly::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        assert_eq!(unruled, ["BatchGetUsers"]);
        assert_eq!(undeclared, ["Frobnicate"]);
        let incomplete = users_rules().complete_for(orderly::FILE_DESCRIPTOR_SET);
        assert!(
            incomplete.is_err_and(|why| why.contains("BatchGetUsers")),
            "an incomplete table is an error naming the method"
        );
        let complete = users_rules().with("BatchGetUsers", Rule::Admin);
        assert_eq!(complete.complete_for(orderly::FILE_DESCRIPTOR_SET), Ok(()));
        let (unruled, undeclared) = complete
            .missing_from(orderly::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        assert!(unruled.is_empty() && undeclared.is_empty());
    }
}
