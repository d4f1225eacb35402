//! ListUsers (AIP-158): default and maximum page sizes, stable order, tamper-checked tokens.

use std::collections::HashSet;

use orderly::users::v1::{ListUsersRequest, ListUsersResponse, User};
use tonic::Code;

use crate::support::{TestServer, create, violated_fields};

crate::on_both_backends!(
    pages_walk_every_user_once_in_creation_order,
    page_sizes_and_tokens_are_checked
);

async fn list(
    server: &mut TestServer,
    page_size: i32,
    page_token: &str,
) -> Result<ListUsersResponse, tonic::Status> {
    server
        .client
        .list_users(ListUsersRequest {
            page_size,
            page_token: page_token.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn pages_walk_every_user_once_in_creation_order(mut server: TestServer) {
    let mut created: Vec<User> = Vec::new();
    for i in 0..7 {
        created.push(
            create(
                &mut server.client,
                &format!("User {i}"),
                &format!("user{i}@example.com"),
            )
            .await,
        );
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = list(&mut server, 3, &token).await.expect("page");
        pages += 1;
        assert!(page.users.len() <= 3);
        seen.extend(page.users.into_iter().map(|u| u.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        // A user created mid-walk lands after the cursor and does not shift earlier pages.
        if pages == 1 {
            created.push(create(&mut server.client, "Late", "late@example.com").await);
        }
    }
    assert_eq!(pages, 3, "8 users in pages of 3");
    let expected: Vec<String> = created.iter().map(|u| u.id.clone()).collect();
    assert_eq!(seen, expected, "every user once, oldest first");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());

    // Page size 0 means the default (50); oversize requests are coerced to the maximum (1000).
    let all = list(&mut server, 0, "").await.expect("default page");
    assert_eq!((all.users.len(), all.next_page_token.as_str()), (8, ""));
    let all = list(&mut server, 5000, "").await.expect("coerced page");
    assert_eq!(all.users.len(), 8);
    server.stop().await;
}

async fn page_sizes_and_tokens_are_checked(mut server: TestServer) {
    for i in 0..3 {
        create(
            &mut server.client,
            &format!("User {i}"),
            &format!("user{i}@example.com"),
        )
        .await;
    }
    let status = list(&mut server, -1, "").await.expect_err("negative size");
    assert_eq!(
        (status.code(), violated_fields(&status)),
        (Code::InvalidArgument, vec!["page_size".to_owned()])
    );

    let token = list(&mut server, 1, "")
        .await
        .expect("page")
        .next_page_token;
    assert!(!token.is_empty());
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    for bad in [
        String::from_utf8(forged).expect("ascii"),
        "garbage".into(),
        "!!".into(),
    ] {
        let status = list(&mut server, 1, &bad)
            .await
            .expect_err("tampered token");
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}");
        assert_eq!(violated_fields(&status), ["page_token"]);
    }
    // The genuine token still works.
    assert_eq!(
        list(&mut server, 5, &token)
            .await
            .expect("next page")
            .users
            .len(),
        2
    );
    server.stop().await;
}
