//! Orderly's gRPC API: the messages, servers and typed clients of the users, orders, payments and
//! delivery services, generated at build time from `proto/` by a pure-Rust protobuf compiler.
//!
//! This crate is what an integrating team depends on to call Orderly. It stays light on purpose:
//! tonic (client channel and codegen) and prost, no database driver, web framework or telemetry SDK.
//!
//! Each service lives in a module named after its protobuf package, with its client and server at
//! the top of the module:
//!
//! | package | client | server trait and adapter |
//! |---|---|---|
//! | `orderly.users.v1` | [`users::v1::UserServiceClient`] | [`users::v1::UserService`], [`users::v1::UserServiceServer`] |
//! | `orderly.orders.v1` | [`orders::v1::OrderServiceClient`] | [`orders::v1::OrderService`], [`orders::v1::OrderServiceServer`] |
//! | `orderly.payments.v1` | [`payments::v1::PaymentServiceClient`] | [`payments::v1::PaymentService`], [`payments::v1::PaymentServiceServer`] |
//! | `orderly.delivery.v1` | [`delivery::v1::DeliveryServiceClient`] | [`delivery::v1::DeliveryService`], [`delivery::v1::DeliveryServiceServer`] |
//!
//! # Calling a service
//!
//! ```no_run
//! use orderly::users::v1::{CreateUserRequest, GetUserRequest, UserServiceClient};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let mut users = UserServiceClient::connect("http://127.0.0.1:50051").await?;
//! let created = users
//!     .create_user(CreateUserRequest { name: "Ada".into(), email: "ada@example.com".into() })
//!     .await?
//!     .into_inner();
//! let id = created.user.map(|user| user.id).unwrap_or_default();
//! let fetched = users.get_user(GetUserRequest { id }).await?.into_inner();
//! println!("{:?}", fetched.user);
//! # Ok(())
//! # }
//! ```

// Every dependency is used (test builds excepted: they see the dev-dependencies too).
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod client;
pub mod error;
pub mod messages;
pub mod money;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validate;

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

/// The encoded `google.protobuf.FileDescriptorSet` of every Orderly proto file (and the well-known
/// types they import), for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/orderly_descriptor.bin"));

/// The fully qualified names of Orderly's four gRPC services, as health checks and reflection know them.
pub const SERVICE_NAMES: [&str; 4] = [
    users::v1::user_service_server::SERVICE_NAME,
    orders::v1::order_service_server::SERVICE_NAME,
    payments::v1::payment_service_server::SERVICE_NAME,
    delivery::v1::delivery_service_server::SERVICE_NAME,
];
