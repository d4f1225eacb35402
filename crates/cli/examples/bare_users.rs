//! The benchmark baseline: a bare tonic UserService whose GetUser answers a fixed user from memory,
//! with none of Orderly's validation, storage, health or fault layers. `bench/getuser.sh` measures
//! the real service against it in the same run.
//!
//! Usage: `bare_users [ADDR]` (default 127.0.0.1:0); prints `listening ADDR` once it accepts calls.

use orderly::users::v1::{
    BatchGetUsersRequest, BatchGetUsersResponse, CreateUserRequest, CreateUserResponse,
    DeleteUserRequest, DeleteUserResponse, GetUserRequest, GetUserResponse, ListUsersRequest,
    ListUsersResponse, UpdateUserRequest, UpdateUserResponse, User, UserService, UserServiceServer,
};
use tonic::{Request, Response, Status};

struct Bare;

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl UserService for Bare {
    async fn get_user(&self, request: Request<GetUserRequest>) -> Reply<GetUserResponse> {
        let id = request.into_inner().id;
        let user = User {
            id,
            name: "Bench".into(),
            email: "bench@example.com".into(),
            ..Default::default()
        };
        Ok(Response::new(GetUserResponse { user: Some(user) }))
    }
    async fn create_user(&self, _: Request<CreateUserRequest>) -> Reply<CreateUserResponse> {
        Err(Status::unimplemented("baseline serves GetUser only"))
    }
    async fn update_user(&self, _: Request<UpdateUserRequest>) -> Reply<UpdateUserResponse> {
        Err(Status::unimplemented("baseline serves GetUser only"))
    }
    async fn delete_user(&self, _: Request<DeleteUserRequest>) -> Reply<DeleteUserResponse> {
        Err(Status::unimplemented("baseline serves GetUser only"))
    }
    async fn list_users(&self, _: Request<ListUsersRequest>) -> Reply<ListUsersResponse> {
        Err(Status::unimplemented("baseline serves GetUser only"))
    }
    async fn batch_get_users(
        &self,
        _: Request<BatchGetUsersRequest>,
    ) -> Reply<BatchGetUsersResponse> {
        Err(Status::unimplemented("baseline serves GetUser only"))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening {}", listener.local_addr()?);
    tonic::transport::Server::builder()
        .add_service(UserServiceServer::new(Bare))
        .serve_with_incoming_shutdown(
            // Same socket options as Orderly's servers, for a fair baseline.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            orderly_kit::shutdown::signal(),
        )
        .await?;
    Ok(())
}
