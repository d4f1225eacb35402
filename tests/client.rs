//! What a client built by `Client::builder` sends with every call, and how it retries, against
//! fakes served in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use orderly::client::{Client, RetryPolicy};
use orderly::error::{Reason, StatusExt};
use orderly::rpc::{Code, Request, Response, Status};
use orderly::tonic::service::Routes;
use orderly::tonic_types::{ErrorDetails, StatusExt as _};
use orderly::users::v1::{GetUserRequest, GetUserResponse, User, UserService, UserServiceServer};

/// Answers with what the call carried, after failing its first `failures` calls with
/// RESOURCE_EXHAUSTED and a retry delay.
#[derive(Clone, Default)]
struct Echo {
    calls: Arc<AtomicUsize>,
    failures: usize,
}

#[orderly::tonic::async_trait]
impl UserService for Echo {
    async fn get_user(
        &self,
        request: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            let mut details = ErrorDetails::new();
            details.set_error_info(
                Reason::RateLimited.as_str(),
                orderly::error::domain::AUTH,
                [],
            );
            details.set_retry_info(Some(Duration::from_millis(30)));
            return Err(Status::with_error_details(
                Code::ResourceExhausted,
                "slow down",
                details,
            ));
        }
        let carried = |key: &str| {
            request
                .metadata()
                .get(key)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        let user = User {
            id: carried("authorization"),
            name: carried("x-tenant"),
            email: carried("grpc-timeout"),
            ..Default::default()
        };
        Ok(Response::new(GetUserResponse { user: Some(user) }))
    }
}

#[tokio::test]
async fn every_call_carries_the_token_the_metadata_and_the_deadline() {
    let builder = Client::builder("http://unused.invalid")
        .bearer_token("t0ken")
        .metadata("x-tenant", "acme")
        .timeout(Duration::from_secs(3));
    let client = orderly::testing::serve_as(
        builder,
        Routes::new(UserServiceServer::new(Echo::default())),
    )
    .expect("client");
    let user = client
        .users()
        .get_user(GetUserRequest::default())
        .await
        .expect("answered")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(user.id, "Bearer t0ken");
    assert_eq!(user.name, "acme");
    assert_ne!(user.email, "-", "the deadline travels as grpc-timeout");

    // A deadline the call sets itself wins.
    let mut request = Request::new(GetUserRequest::default());
    request.set_timeout(Duration::from_millis(500));
    let user = client.users().get_user(request).await.expect("answered");
    assert_eq!(user.into_inner().user.expect("user").email, "500000u");
}

#[tokio::test]
async fn retries_wait_as_retry_info_asks_and_stop_when_told() {
    let echo = Echo {
        failures: 2,
        ..Echo::default()
    };
    let calls = echo.calls.clone();
    let routes = || Routes::new(UserServiceServer::new(echo.clone()));
    let retried = orderly::testing::serve_as(Client::builder("http://unused.invalid"), routes())
        .expect("client");
    let started = std::time::Instant::now();
    retried
        .retry(|| async { retried.users().get_user(GetUserRequest::default()).await })
        .await
        .expect("succeeds on the third call");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "two waits of at least 30 ms"
    );

    calls.store(0, Ordering::SeqCst);
    let once = orderly::testing::serve_as(
        Client::builder("http://unused.invalid").retry_policy(RetryPolicy::none()),
        routes(),
    )
    .expect("client");
    let refused = once
        .retry(|| async { once.users().get_user(GetUserRequest::default()).await })
        .await
        .expect_err("no retries");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(refused.reason(), Some(Reason::RateLimited));
    assert_eq!(refused.retry_after(), Some(Duration::from_millis(30)));
    assert!(refused.is_retryable());
}
