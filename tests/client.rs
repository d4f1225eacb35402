//! What a client built by `Client::builder` sends with every call, and how it retries, against
//! fakes served in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use orderly::catalog::v1::{
    CatalogService, CatalogServiceClient, CatalogServiceServer, ListProductsRequest,
    ListProductsResponse, Product,
};
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

/// The `authorization` a GetUser through `client` carried, with `own` as the call's own.
async fn token_carried(client: &Client, own: Option<&str>) -> String {
    let mut request = Request::new(GetUserRequest::default());
    if let Some(own) = own {
        let value = format!("Bearer {own}").parse().expect("ascii");
        request.metadata_mut().insert("authorization", value);
    }
    let user = client.users().get_user(request).await.expect("answered");
    user.into_inner().user.expect("user").id
}

#[tokio::test]
async fn a_token_can_change_per_call_per_client_and_as_the_application_refreshes_it() {
    let routes = || Routes::new(UserServiceServer::new(Echo::default()));
    let builder = Client::builder("http://unused.invalid").bearer_token("service");
    let client = orderly::testing::serve_as(builder, routes()).expect("client");
    assert_eq!(token_carried(&client, None).await, "Bearer service");
    // A call's own token wins over the client's.
    assert_eq!(token_carried(&client, Some("once")).await, "Bearer once");
    // A client acting for someone else, over the same connection; the first is unchanged.
    let ada = client.with_token("ada").expect("a valid token");
    assert_eq!(token_carried(&ada, None).await, "Bearer ada");
    assert_eq!(token_carried(&client, None).await, "Bearer service");
    assert!(client.with_token("bad\ntoken").is_err());

    // A token the application refreshes: asked for on every call.
    let current = Arc::new(std::sync::RwLock::new("first".to_owned()));
    let source = current.clone();
    let builder = Client::builder("http://unused.invalid")
        .token_source(move || source.read().ok().map(|token| token.clone()));
    let refreshed = orderly::testing::serve_as(builder, routes()).expect("client");
    assert_eq!(token_carried(&refreshed, None).await, "Bearer first");
    *current.write().expect("lock") = "second".to_owned();
    assert_eq!(token_carried(&refreshed, None).await, "Bearer second");
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

/// A catalog of `count` products, `SKU-000`…, served two to a page; every product's name is the
/// `authorization` the call carried.
#[derive(Clone)]
struct Shelves {
    count: usize,
}

#[orderly::tonic::async_trait]
impl CatalogService for Shelves {
    async fn list_products(
        &self,
        request: Request<ListProductsRequest>,
    ) -> Result<Response<ListProductsResponse>, Status> {
        let carried = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        let request = request.into_inner();
        let start: usize = request.page_token.parse().unwrap_or(0);
        let end = (start + 2).min(self.count);
        let products = (start..end)
            .map(|n| Product {
                sku: format!("SKU-{n:03}"),
                name: carried.clone(),
                description: request.query.clone(),
                ..Default::default()
            })
            .collect();
        let next_page_token = if end < self.count {
            end.to_string()
        } else {
            String::new()
        };
        Ok(Response::new(ListProductsResponse {
            products,
            next_page_token,
        }))
    }
}

#[tokio::test]
async fn the_catalog_is_in_the_client_with_a_pager_and_the_clients_token() {
    use futures_util::TryStreamExt as _;

    let client = orderly::testing::serve_as(
        Client::builder("http://unused.invalid").bearer_token("t0ken"),
        Routes::new(CatalogServiceServer::new(Shelves { count: 5 })),
    )
    .expect("client");
    let products: Vec<Product> = client
        .list_products("lamp", 2)
        .try_collect()
        .await
        .expect("every page");
    let skus: Vec<&str> = products.iter().map(|p| p.sku.as_str()).collect();
    assert_eq!(
        skus,
        ["SKU-000", "SKU-001", "SKU-002", "SKU-003", "SKU-004"]
    );
    assert!(products.iter().all(|p| p.name == "Bearer t0ken"));
    assert!(products.iter().all(|p| p.description == "lamp"));

    // Any generated client over the client's connection carries its token too.
    let page = CatalogServiceClient::new(client.transport())
        .list_products(ListProductsRequest::default())
        .await
        .expect("a page")
        .into_inner();
    assert_eq!(page.products[0].name, "Bearer t0ken");
}
