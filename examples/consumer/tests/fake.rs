//! A fake UserService that implements one method, served in memory (`orderly::testing`): the code
//! under test gets its client without a port, and every method the fake leaves out answers
//! UNIMPLEMENTED.

use orderly::error::{Reason, StatusExt};
use orderly::rpc::{Code, Request, Response, Status};
use orderly::tonic::service::Routes;
use orderly::users::v1::{
    CreateUserRequest, GetUserRequest, GetUserResponse, User, UserService, UserServiceServer,
};

/// Knows one user, Ada; implements GetUser only.
struct OneUser;

#[orderly::tonic::async_trait]
impl UserService for OneUser {
    async fn get_user(
        &self,
        request: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        let id = request.into_inner().id;
        if id != "ada" {
            return Err(Status::not_found(format!("no user {id}")));
        }
        let user = User {
            id,
            name: "Ada Lovelace".into(),
            ..Default::default()
        };
        Ok(Response::new(GetUserResponse { user: Some(user) }))
    }
}

#[tokio::test]
async fn a_fake_with_one_method_serves_it_and_refuses_the_rest() {
    let client = orderly::testing::serve(Routes::new(UserServiceServer::new(OneUser)));
    let ada = client
        .users()
        .get_user(GetUserRequest { id: "ada".into() })
        .await
        .expect("the faked method")
        .into_inner()
        .user
        .expect("a user");
    assert_eq!(ada.name, "Ada Lovelace");

    let missing = client
        .users()
        .get_user(GetUserRequest { id: "bob".into() })
        .await
        .expect_err("no such user");
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(
        missing.reason(),
        None::<Reason>,
        "the fake sent no ErrorInfo"
    );

    let unfaked = client
        .users()
        .create_user(CreateUserRequest::default())
        .await
        .expect_err("not faked");
    assert_eq!(unfaked.code(), Code::Unimplemented);
}
