//! Shows the generated API is real: messages round-trip through the wire format, the descriptor set
//! describes all four services, and a generated client talks to a generated server over loopback.

use std::collections::BTreeMap;

use orderly::common::v1::{Address, Money};
use orderly::orders::v1::{CreateOrderRequest, OrderLine, OrderStatus};
use orderly::users::v1::{
    BatchGetUsersRequest, BatchGetUsersResponse, CreateUserRequest, CreateUserResponse,
    DeleteUserRequest, DeleteUserResponse, GetUserRequest, GetUserResponse, ListUsersRequest,
    ListUsersResponse, UpdateUserRequest, UpdateUserResponse, User, UserService, UserServiceClient,
    UserServiceServer,
};
use prost::Message;
use tonic::{Request, Response, Status};

#[test]
fn create_order_request_round_trips_through_the_wire_format() {
    let request = CreateOrderRequest {
        user_id: "u-1".into(),
        items: vec![OrderLine {
            sku: "SKU-42".into(),
            quantity: 3,
        }],
        expected_total: Some(Money {
            currency_code: "EUR".into(),
            amount_minor: 5997,
        }),
        shipping_address: Some(Address {
            recipient: "Ada".into(),
            line1: "1 Analytical Way".into(),
            city: "London".into(),
            postal_code: "N1".into(),
            country_code: "GB".into(),
            ..Default::default()
        }),
        idempotency_key: "key-1".into(),
    };
    let bytes = request.encode_to_vec();
    assert!(!bytes.is_empty());
    let decoded = CreateOrderRequest::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(decoded, request);
    assert_eq!(decoded.items[0].quantity, 3);
    assert_eq!(
        decoded.expected_total.as_ref().map(|m| m.amount_minor),
        Some(5997)
    );
}

#[test]
fn enums_have_an_unspecified_zero() {
    assert_eq!(OrderStatus::default(), OrderStatus::Unspecified);
    assert_eq!(OrderStatus::Unspecified as i32, 0);
    assert_eq!(
        OrderStatus::Confirmed.as_str_name(),
        "ORDER_STATUS_CONFIRMED"
    );
}

#[test]
fn descriptor_set_names_every_service_and_method() {
    let set =
        prost_types::FileDescriptorSet::decode(orderly::FILE_DESCRIPTOR_SET).expect("decodes");
    let mut services: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &set.file {
        for service in &file.service {
            let name = format!("{}.{}", file.package(), service.name());
            let methods = service.method.iter().map(|m| m.name().to_owned()).collect();
            services.insert(name, methods);
        }
    }
    let expected: [(&str, &[&str]); 5] = [
        (
            "orderly.users.v1.UserService",
            &[
                "CreateUser",
                "GetUser",
                "UpdateUser",
                "DeleteUser",
                "ListUsers",
                "BatchGetUsers",
            ],
        ),
        (
            "orderly.orders.v1.OrderService",
            &[
                "CreateOrder",
                "GetOrder",
                "ListOrders",
                "CancelOrder",
                "WatchOrder",
            ],
        ),
        (
            "orderly.payments.v1.PaymentService",
            &["Charge", "Refund", "GetPayment"],
        ),
        (
            "orderly.delivery.v1.DeliveryService",
            &["ScheduleDelivery", "CancelDelivery", "GetDelivery"],
        ),
        (
            "orderly.catalog.v1.CatalogService",
            &[
                "GetProduct",
                "ListProducts",
                "BatchGetProducts",
                "CreateProduct",
                "UpdateProduct",
                "AdjustStock",
                "ReserveStock",
                "CommitReservation",
                "ReleaseReservation",
            ],
        ),
    ];
    assert_eq!(
        services.len(),
        expected.len(),
        "services: {:?}",
        services.keys()
    );
    for (service, methods) in expected {
        assert!(orderly::SERVICE_NAMES.contains(&service));
        assert_eq!(
            services.get(service).map(Vec::as_slice),
            Some(&methods.iter().map(|m| m.to_string()).collect::<Vec<_>>()[..]),
            "{service}"
        );
    }
    // Reflection needs the imported well-known types too.
    assert!(
        set.file
            .iter()
            .any(|f| f.name() == "google/protobuf/timestamp.proto")
    );
    let watch = set
        .file
        .iter()
        .flat_map(|f| &f.service)
        .flat_map(|s| &s.method)
        .find(|m| m.name() == "WatchOrder")
        .expect("WatchOrder");
    assert!(watch.server_streaming(), "WatchOrder streams its responses");
}

/// A tiny in-test UserService that echoes what it is given, to prove the generated halves connect.
struct EchoUsers;

#[tonic::async_trait]
impl UserService for EchoUsers {
    async fn create_user(
        &self,
        request: Request<CreateUserRequest>,
    ) -> Result<Response<CreateUserResponse>, Status> {
        let request = request.into_inner();
        Ok(Response::new(CreateUserResponse {
            user: Some(User {
                id: "echo-1".into(),
                name: request.name,
                email: request.email,
                ..Default::default()
            }),
        }))
    }
    async fn get_user(
        &self,
        request: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        Err(Status::not_found(format!(
            "no user {}",
            request.into_inner().id
        )))
    }
    async fn update_user(
        &self,
        _: Request<UpdateUserRequest>,
    ) -> Result<Response<UpdateUserResponse>, Status> {
        Err(Status::unimplemented("echo"))
    }
    async fn delete_user(
        &self,
        _: Request<DeleteUserRequest>,
    ) -> Result<Response<DeleteUserResponse>, Status> {
        Err(Status::unimplemented("echo"))
    }
    async fn list_users(
        &self,
        _: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        Err(Status::unimplemented("echo"))
    }
    async fn batch_get_users(
        &self,
        _: Request<BatchGetUsersRequest>,
    ) -> Result<Response<BatchGetUsersResponse>, Status> {
        Err(Status::unimplemented("echo"))
    }
}

#[tokio::test]
async fn generated_client_and_server_talk_over_loopback() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(UserServiceServer::new(EchoUsers))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );

    let mut client = UserServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let user = client
        .create_user(CreateUserRequest {
            name: "Ada".into(),
            email: "ada@example.com".into(),
        })
        .await
        .expect("create")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(
        (user.id.as_str(), user.name.as_str(), user.email.as_str()),
        ("echo-1", "Ada", "ada@example.com")
    );

    let status = client
        .get_user(GetUserRequest {
            id: "nobody".into(),
        })
        .await
        .expect_err("not found");
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_eq!(status.message(), "no user nobody");

    let _ = stop.send(());
    server.await.expect("join").expect("server");
}
