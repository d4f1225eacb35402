//! CreateUser, GetUser and DeleteUser: the happy paths and NOT_FOUND / ALREADY_EXISTS.

use orderly::users::v1::{CreateUserRequest, DeleteUserRequest, GetUserRequest};
use tonic::Code;

use crate::support::{TestServer, create, reason};

crate::on_both_backends!(
    created_user_is_returned_and_found,
    email_is_unique_case_insensitively,
    deleted_user_is_gone
);

async fn created_user_is_returned_and_found(mut server: TestServer) {
    let created = create(&mut server.client, "  Ada Lovelace ", " ada@example.com").await;
    assert_eq!(created.name, "Ada Lovelace", "names are trimmed");
    assert_eq!(created.email, "ada@example.com");
    assert!(
        uuid::Uuid::try_parse(&created.id).is_ok(),
        "id is a UUID: {}",
        created.id
    );
    let created_at = created.create_time.expect("create_time");
    assert!(created_at.seconds > 1_700_000_000, "a real timestamp");
    assert_eq!(created.update_time, created.create_time);

    let fetched = server
        .client
        .get_user(GetUserRequest {
            id: created.id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(fetched, created);

    let missing = uuid::Uuid::now_v7().to_string();
    let status = server
        .client
        .get_user(GetUserRequest {
            id: missing.clone(),
        })
        .await
        .expect_err("unknown id");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status).as_deref(), Some("USER_NOT_FOUND"));
    assert!(status.message().contains(&missing));
    server.stop().await;
}

async fn email_is_unique_case_insensitively(mut server: TestServer) {
    create(&mut server.client, "Ada", "ada@example.com").await;
    let status = server
        .client
        .create_user(CreateUserRequest {
            name: "Other Ada".into(),
            email: "ADA@Example.COM".into(),
        })
        .await
        .expect_err("duplicate email");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(reason(&status).as_deref(), Some("EMAIL_TAKEN"));
    server.stop().await;
}

async fn deleted_user_is_gone(mut server: TestServer) {
    let user = create(&mut server.client, "Ada", "ada@example.com").await;
    server
        .client
        .delete_user(DeleteUserRequest {
            id: user.id.clone(),
        })
        .await
        .expect("delete");
    let status = server
        .client
        .get_user(GetUserRequest {
            id: user.id.clone(),
        })
        .await
        .expect_err("gone");
    assert_eq!(status.code(), Code::NotFound);
    let status = server
        .client
        .delete_user(DeleteUserRequest {
            id: user.id.clone(),
        })
        .await
        .expect_err("twice");
    assert_eq!(status.code(), Code::NotFound);
    // The email is free again.
    create(&mut server.client, "Ada again", "ada@example.com").await;
    server.stop().await;
}
