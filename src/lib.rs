//! Orderly's gRPC API: the messages, servers and typed clients of the users, catalog, orders,
//! payments and delivery services, generated at build time from `proto/` by a pure-Rust protobuf
//! compiler.
//!
//! This crate is what an integrating team depends on to call Orderly, and the only one it needs
//! (it re-exports [`tonic`], [`prost_types`] and [`tonic_types`]; the common types are in [`rpc`]).
//! It stays light on purpose: tonic's client and prost, no database driver, web framework or
//! telemetry SDK.
//!
//! Each service lives in a module named after its protobuf package, with its client and server at
//! the top of the module:
//!
//! | package | client | server trait and adapter |
//! |---|---|---|
//! | `orderly.users.v1` | [`users::v1::UserServiceClient`] | [`users::v1::UserService`], [`users::v1::UserServiceServer`] |
//! | `orderly.catalog.v1` | [`catalog::v1::CatalogServiceClient`] | [`catalog::v1::CatalogService`], [`catalog::v1::CatalogServiceServer`] |
//! | `orderly.orders.v1` | [`orders::v1::OrderServiceClient`] | [`orders::v1::OrderService`], [`orders::v1::OrderServiceServer`] |
//! | `orderly.payments.v1` | [`payments::v1::PaymentServiceClient`] | [`payments::v1::PaymentService`], [`payments::v1::PaymentServiceServer`] |
//! | `orderly.delivery.v1` | [`delivery::v1::DeliveryServiceClient`] | [`delivery::v1::DeliveryService`], [`delivery::v1::DeliveryServiceServer`] |
//!
//! # Connecting
//!
//! [`client::Client::builder`] takes the service's address (`orderly up` serves users on 50051,
//! orders on 50052 and the catalog on 50055; [`client::ClientBuilder::orders_url`] and
//! [`client::ClientBuilder::catalog_url`] point those elsewhere), a connect timeout, a default
//! deadline (a call's own `set_timeout` wins, shorter or longer), a bearer token and, with the
//! `tls` feature, a TLS configuration. `orderly up` speaks mutual TLS: with the `tls` feature,
//! `Client::local_up("data")` sets its three addresses and the certificate it writes for programs
//! outside the suite. One client shares one connection per address among all its service clients
//! (`users()`, `orders()`, `catalog()`, and any generated client over
//! [`client::Client::transport`]); clone it freely. `connect()` checks each address and fails
//! naming a wrong setup ([`client::ConnectCause`]).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use orderly::client::Client;
//! use orderly::users::v1::{CreateUserRequest, GetUserRequest};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // A plaintext suite (`orderly up --insecure-plaintext`); a default `up` needs TLS, above.
//! let client = Client::builder("http://127.0.0.1:50051")
//!     .orders_url("http://127.0.0.1:50052")
//!     .connect_timeout(Duration::from_secs(1))
//!     .timeout(Duration::from_secs(2))
//!     .bearer_token("eyJ...")
//!     .connect()
//!     .await?;
//! let created = client
//!     .users()
//!     .create_user(CreateUserRequest { name: "Ada".into(), email: "ada@example.com".into() })
//!     .await
//!     .map_err(orderly::error::Error::from)?
//!     .into_inner();
//! let id = created.user.map(|user| user.id).unwrap_or_default();
//! let fetched = client.users().get_user(GetUserRequest { id }).await?.into_inner();
//! println!("{:?}", fetched.user);
//! # Ok(())
//! # }
//! ```
//!
//! # Placing and following an order
//!
//! ```no_run
//! use orderly::client::Client;
//! use orderly::common::v1::{Address, Money};
//! use orderly::orders::v1::{CreateOrderRequest, OrderLine};
//! use orderly::rpc::StreamExt as _;
//!
//! # async fn example(client: Client, user_id: String) -> Result<(), orderly::error::Error> {
//! let request = CreateOrderRequest {
//!     user_id: user_id.clone(),
//!     items: vec![OrderLine::new("BOOK-1", 2)],
//!     shipping_address: Some(Address::new("Ada", "1 Analytical Way", "London", "N1 7AA", "GB")),
//!     idempotency_key: orderly::messages::idempotency_key(),
//!     // The price the catalog showed: another total is refused (PRICE_CHANGED), nothing charged.
//!     expected_total: Some(Money::new("EUR", 3998)),
//! };
//! // The key makes the call safe to repeat: a retry is answered with the same order.
//! let order = client
//!     .retry(|| async { client.orders().create_order(request.clone()).await })
//!     .await?
//!     .into_inner()
//!     .order
//!     .unwrap_or_default();
//! let settled = client.watch_until_settled(order.id).await?;
//! println!("{:?}", settled.status());
//! let mut orders = std::pin::pin!(client.list_orders(user_id, 50));
//! while let Some(order) = orders.next().await {
//!     println!("{}", order?.id);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Deadlines
//!
//! Every call gets the builder's deadline unless its request sets one
//! (`request.set_timeout(..)`); the server is told it (`grpc-timeout`) and spends no longer. A call
//! past its deadline fails with a status whose [`error::StatusExt::is_deadline`] is true, whether
//! the server or the client gave up.
//!
//! # Errors
//!
//! A refusal carries a `google.rpc.ErrorInfo` reason ([`error::Reason`]: `EMAIL_TAKEN`,
//! `ORDER_NOT_FOUND`, `TOKEN_EXPIRED`, ...) and, for invalid input, the fields refused
//! ([`error::StatusExt::violations`]). [`error::Error`] shows all of it when printed.
//!
//! # Retries
//!
//! [`client::Client::retry`] repeats a call while it [is retryable](error::StatusExt::is_retryable)
//! (UNAVAILABLE, or a status asking for a later retry), with full-jitter exponential backoff that
//! waits at least what the server's `RetryInfo` asks ([`client::RetryPolicy`]). Use it for reads
//! and for writes that carry an idempotency key, never for CreateUser.
//!
//! # TLS and authentication
//!
//! Services of `orderly up` speak mutual TLS; a program outside the suite presents a certificate
//! of the cluster's CA that names it (`orderly up` writes `data/tls/client.pem`; `orderly certs
//! --out DIR --client NAME` writes others), with the `tls` feature: `ClientBuilder::tls_dir(DIR,
//! NAME)`, or `tls` with tonic's `ClientTlsConfig` ([`rpc`] re-exports it). It may call what the
//! gateway may. Every call carries the builder's bearer token (`orderly token --sub ID` prints one
//! for development) unless it sets its own; [`client::Client::with_token`] acts for another user
//! over the same connections, and `token_source` asks the application for a fresh token on every
//! call.
//!
//! # Testing
//!
//! The generated servers have default stubs: a fake implements only the methods a test needs. The
//! `testing` feature serves fakes in memory and hands back a client (`orderly::testing::serve`).

// Every dependency is used (test builds excepted: they see the dev-dependencies too).
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod client;
pub mod error;
pub mod messages;
pub mod money;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validate;

/// The README's Rust examples, compiled as doctests: as a program depending on `orderly` alone
/// would compile them.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;

// The crates whose types the API is made of, re-exported so that `orderly` is a caller's one
// dependency and the versions always match.
pub use prost_types;
pub use tonic;
pub use tonic_types;

/// The types a caller handles most, from tonic and prost: requests and responses, statuses, the
/// channel and its endpoint, metadata, and the well-known types the messages use.
pub mod rpc {
    pub use futures_util::{Stream, StreamExt};
    pub use prost_types::{FieldMask, Timestamp};
    pub use tonic::codegen::BoxStream;
    pub use tonic::metadata::{MetadataMap, MetadataValue};
    /// What a TLS setup is made of (the `tls` feature): the CA to trust, the client's own
    /// certificate, and the configuration for [`crate::client::ClientBuilder::tls`].
    #[cfg(feature = "tls")]
    pub use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    pub use tonic::transport::{Channel, Endpoint, Error as TransportError};
    pub use tonic::{Code, Request, Response, Status, Streaming};
}

/// Names of the gRPC metadata that the services send beside their messages.
pub mod metadata {
    /// Response metadata, `true` on a CreateOrder answered from an earlier call with the same
    /// idempotency key and the same request (nothing was done again).
    pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
}

/// Types shared by several services: money and postal addresses.
pub mod common {
    /// Version 1 of the `orderly.common` package.
    #[allow(missing_docs, unused_variables, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("orderly.common.v1");
    }
}

/// The users service: the people who place orders.
pub mod users {
    /// Version 1 of the `orderly.users` package.
    #[allow(missing_docs, unused_variables, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("orderly.users.v1");
        include!(concat!(env!("OUT_DIR"), "/orderly.users.v1.methods.rs"));
        pub use user_service_client::UserServiceClient;
        pub use user_service_server::{UserService, UserServiceServer};
    }
}

/// The orders service: places orders across users, payments and delivery.
pub mod orders {
    /// Version 1 of the `orderly.orders` package.
    #[allow(missing_docs, unused_variables, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("orderly.orders.v1");
        include!(concat!(env!("OUT_DIR"), "/orderly.orders.v1.methods.rs"));
        pub use order_service_client::OrderServiceClient;
        pub use order_service_server::{OrderService, OrderServiceServer};
    }
}

/// The payments service: charges and refunds, exactly once per idempotency key.
pub mod payments {
    /// Version 1 of the `orderly.payments` package.
    #[allow(missing_docs, unused_variables, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("orderly.payments.v1");
        include!(concat!(env!("OUT_DIR"), "/orderly.payments.v1.methods.rs"));
        pub use payment_service_client::PaymentServiceClient;
        pub use payment_service_server::{PaymentService, PaymentServiceServer};
    }
}

/// The delivery service: schedules and cancels the shipping of orders.
pub mod delivery {
    /// Version 1 of the `orderly.delivery` package.
    #[allow(missing_docs, unused_variables, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("orderly.delivery.v1");
        include!(concat!(env!("OUT_DIR"), "/orderly.delivery.v1.methods.rs"));
        pub use delivery_service_client::DeliveryServiceClient;
        pub use delivery_service_server::{DeliveryService, DeliveryServiceServer};
    }
}

/// The catalog service: products, their prices, and the stock orders reserve.
pub mod catalog {
    /// Version 1 of the `orderly.catalog` package.
    #[allow(missing_docs, unused_variables, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("orderly.catalog.v1");
        include!(concat!(env!("OUT_DIR"), "/orderly.catalog.v1.methods.rs"));
        pub use catalog_service_client::CatalogServiceClient;
        pub use catalog_service_server::{CatalogService, CatalogServiceServer};
    }
}

/// The encoded `google.protobuf.FileDescriptorSet` of every Orderly proto file (and the well-known
/// types they import), for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/orderly_descriptor.bin"));

/// The fully qualified names of Orderly's five gRPC services, as health checks and reflection know them.
pub const SERVICE_NAMES: [&str; 5] = [
    users::v1::user_service_server::SERVICE_NAME,
    orders::v1::order_service_server::SERVICE_NAME,
    payments::v1::payment_service_server::SERVICE_NAME,
    delivery::v1::delivery_service_server::SERVICE_NAME,
    catalog::v1::catalog_service_server::SERVICE_NAME,
];
