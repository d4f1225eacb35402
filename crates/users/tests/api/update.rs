//! UpdateUser with field masks: only the named fields change; every error leaves the user as it was.

use orderly::users::v1::{GetUserRequest, UpdateUserRequest, User};
use prost_types::FieldMask;
use tonic::Code;

use crate::support::{TestServer, create, violated_fields};

crate::on_both_backends!(
    mask_names_the_fields_that_change,
    bad_updates_change_nothing
);

fn update(user: User, paths: &[&str]) -> UpdateUserRequest {
    UpdateUserRequest {
        user: Some(user),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
    }
}

async fn mask_names_the_fields_that_change(mut server: TestServer) {
    let ada = create(&mut server.client, "Ada", "ada@example.com").await;

    let request = User {
        id: ada.id.clone(),
        name: " Countess ".into(),
        email: "ignored@example.com".into(),
        ..Default::default()
    };
    let updated = server
        .client
        .update_user(update(request, &["name"]))
        .await
        .expect("update")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(
        (updated.name.as_str(), updated.email.as_str()),
        ("Countess", "ada@example.com")
    );
    assert_eq!(updated.create_time, ada.create_time);
    let micros = |t: Option<prost_types::Timestamp>| t.map(|t| (t.seconds, t.nanos));
    assert!(micros(updated.update_time) >= micros(ada.update_time));

    let request = User {
        id: ada.id.clone(),
        email: "Countess@Example.com".into(),
        ..Default::default()
    };
    let updated = server
        .client
        .update_user(update(request, &["email"]))
        .await
        .expect("update")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(
        (updated.name.as_str(), updated.email.as_str()),
        ("Countess", "Countess@Example.com")
    );

    // No mask: every mutable field.
    let request = UpdateUserRequest {
        user: Some(User {
            id: ada.id.clone(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            ..Default::default()
        }),
        update_mask: None,
    };
    let updated = server
        .client
        .update_user(request)
        .await
        .expect("update")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(
        (updated.name.as_str(), updated.email.as_str()),
        ("Ada", "ada@example.com")
    );

    let stored = server
        .client
        .get_user(GetUserRequest { id: ada.id })
        .await
        .expect("get")
        .into_inner()
        .user;
    assert_eq!(stored, Some(updated));
    server.stop().await;
}

async fn bad_updates_change_nothing(mut server: TestServer) {
    let ada = create(&mut server.client, "Ada", "ada@example.com").await;
    create(&mut server.client, "Grace", "grace@example.com").await;

    let taken = User {
        id: ada.id.clone(),
        email: "GRACE@example.com".into(),
        ..Default::default()
    };
    let status = server
        .client
        .update_user(update(taken, &["email"]))
        .await
        .expect_err("taken");
    assert_eq!(status.code(), Code::AlreadyExists);

    let bad = User {
        id: ada.id.clone(),
        name: "".into(),
        email: "nope".into(),
        ..Default::default()
    };
    let status = server
        .client
        .update_user(update(bad, &["name", "email", "create_time"]))
        .await
        .expect_err("bad");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["user.name", "user.email", "update_mask.paths[2]"]
    );

    let status = server
        .client
        .update_user(UpdateUserRequest {
            user: None,
            update_mask: None,
        })
        .await
        .expect_err("no user");
    assert_eq!(
        (status.code(), violated_fields(&status)),
        (Code::InvalidArgument, vec!["user".to_owned()])
    );

    let unknown = User {
        id: uuid::Uuid::now_v7().to_string(),
        name: "Nobody".into(),
        ..Default::default()
    };
    let status = server
        .client
        .update_user(update(unknown, &["name"]))
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);

    let stored = server
        .client
        .get_user(GetUserRequest { id: ada.id.clone() })
        .await
        .expect("get")
        .into_inner()
        .user;
    assert_eq!(stored, Some(ada), "nothing changed");
    server.stop().await;
}
