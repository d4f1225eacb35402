//! Every validation rule: INVALID_ARGUMENT with a BadRequest naming every bad field, and nothing written.

use orderly::users::v1::{CreateUserRequest, DeleteUserRequest, GetUserRequest, ListUsersRequest};
use tonic::Code;

use crate::support::{TestServer, violated_fields};

crate::on_both_backends!(
    bad_create_lists_every_field_and_writes_nothing,
    ids_must_be_uuids
);

async fn bad_create_lists_every_field_and_writes_nothing(mut server: TestServer) {
    let long_email = format!("{}@{}.com", "a".repeat(64), "b".repeat(186));
    let cases: [(&str, &str, &[&str]); 8] = [
        ("", "ada@example.com", &["name"]),
        ("   ", "ada@example.com", &["name"]),
        (&"n".repeat(201), "ada@example.com", &["name"]),
        ("Ada\u{7}", "ada@example.com", &["name"]),
        ("Ada", "", &["email"]),
        ("Ada", "not-an-email", &["email"]),
        ("Ada", &long_email, &["email"]),
        ("", "ada@", &["name", "email"]),
    ];
    for (name, email, fields) in cases {
        let status = server
            .client
            .create_user(CreateUserRequest {
                name: name.into(),
                email: email.into(),
            })
            .await
            .expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument, "{name:?} {email:?}");
        assert_eq!(violated_fields(&status), fields, "{name:?} {email:?}");
    }
    // 200 characters is the limit, not 200 bytes.
    crate::support::create(&mut server.client, &"é".repeat(200), "long@example.com").await;

    let listed = server
        .client
        .list_users(ListUsersRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.users.len(), 1, "only the valid user was written");
    server.stop().await;
}

async fn ids_must_be_uuids(mut server: TestServer) {
    for id in ["", "42", "not-a-uuid"] {
        let status = server
            .client
            .get_user(GetUserRequest { id: id.into() })
            .await
            .expect_err("bad id");
        assert_eq!(status.code(), Code::InvalidArgument, "{id:?}");
        assert_eq!(violated_fields(&status), ["id"]);
        let status = server
            .client
            .delete_user(DeleteUserRequest { id: id.into() })
            .await
            .expect_err("bad id");
        assert_eq!(status.code(), Code::InvalidArgument, "{id:?}");
    }
    server.stop().await;
}
