//! Racing writers: the database's unique index, not a check-then-insert, decides who wins.

use orderly::users::v1::{CreateUserRequest, ListUsersRequest};
use tonic::Code;

use crate::support::TestServer;

crate::on_both_backends!(fifty_concurrent_creates_with_one_email_make_one_user);

async fn fifty_concurrent_creates_with_one_email_make_one_user(server: TestServer) {
    let calls = (0..50).map(|i| {
        let mut client = server.client.clone();
        tokio::spawn(async move {
            // Different spellings of one address: uniqueness is case-insensitive.
            let email = if i % 2 == 0 {
                "race@example.com"
            } else {
                "RACE@example.com"
            };
            client
                .create_user(CreateUserRequest {
                    name: format!("Racer {i}"),
                    email: email.into(),
                })
                .await
        })
    });
    let mut successes = 0;
    let mut already_exists = 0;
    for call in calls.collect::<Vec<_>>() {
        match call.await.expect("task") {
            Ok(_) => successes += 1,
            Err(status) if status.code() == Code::AlreadyExists => already_exists += 1,
            Err(status) => panic!("unexpected status: {status:?}"),
        }
    }
    assert_eq!((successes, already_exists), (1, 49));
    let mut client = server.client.clone();
    let listed = client
        .list_users(ListUsersRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.users.len(), 1);
    server.stop().await;
}
