//! BatchGetUsers: found users in request order, missing ids reported, bounded batch size.

use orderly::users::v1::BatchGetUsersRequest;
use tonic::Code;

use crate::support::{TestServer, create, violated_fields};

crate::on_both_backends!(
    batch_reports_found_and_missing,
    batch_is_bounded_and_validated
);

async fn batch_reports_found_and_missing(mut server: TestServer) {
    let ada = create(&mut server.client, "Ada", "ada@example.com").await;
    let grace = create(&mut server.client, "Grace", "grace@example.com").await;
    let missing = uuid::Uuid::now_v7().to_string();
    let response = server
        .client
        .batch_get_users(BatchGetUsersRequest {
            ids: vec![
                grace.id.clone(),
                missing.clone(),
                ada.id.clone(),
                grace.id.clone(),
            ],
        })
        .await
        .expect("batch")
        .into_inner();
    let ids: Vec<&str> = response.users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(
        ids,
        [grace.id.as_str(), ada.id.as_str()],
        "request order, duplicates once"
    );
    assert_eq!(response.missing_ids, [missing]);

    let empty = server
        .client
        .batch_get_users(BatchGetUsersRequest { ids: vec![] })
        .await
        .expect("empty")
        .into_inner();
    assert!(empty.users.is_empty() && empty.missing_ids.is_empty());

    // The maximum batch is served.
    let ids: Vec<String> = (0..1000)
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    let response = server
        .client
        .batch_get_users(BatchGetUsersRequest { ids })
        .await
        .expect("max batch")
        .into_inner();
    assert_eq!(response.missing_ids.len(), 1000);
    server.stop().await;
}

async fn batch_is_bounded_and_validated(mut server: TestServer) {
    let ids: Vec<String> = (0..1001)
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    let status = server
        .client
        .batch_get_users(BatchGetUsersRequest { ids })
        .await
        .expect_err("too many");
    assert_eq!(
        (status.code(), violated_fields(&status)),
        (Code::InvalidArgument, vec!["ids".to_owned()])
    );

    let ids = vec![
        uuid::Uuid::now_v7().to_string(),
        "bad".into(),
        String::new(),
    ];
    let status = server
        .client
        .batch_get_users(BatchGetUsersRequest { ids })
        .await
        .expect_err("bad ids");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["ids[1]", "ids[2]"]);
    server.stop().await;
}
