//! `/v1/users`: create, get, patch, list, delete, over HTTP and JSON.

use serde_json::json;

use orderly_testkit::rest::{Stack, body, problem, violated_fields};

#[tokio::test]
async fn a_user_is_created_read_changed_listed_and_deleted() {
    let stack = Stack::start().await;

    let created = stack
        .json(
            "POST",
            "/v1/users",
            &[],
            &json!({"name": "Ada Lovelace", "email": "ada@example.com"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("content-type"), Some("application/json"));
    let user = body(&created);
    let id = user["id"].as_str().expect("id").to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/v1/users/{id}").as_str())
    );
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["email"], "ada@example.com");
    let create_time = user["createTime"].as_str().expect("createTime");
    assert!(
        create_time.ends_with('Z') && create_time.contains('T'),
        "{create_time}"
    );

    let read = stack.get(&format!("/v1/users/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(body(&read), user);

    // Without a mask, the fields present are the ones changed.
    let patched = stack
        .json(
            "PATCH",
            &format!("/v1/users/{id}"),
            &[],
            &json!({"name": "Ada King"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let patched = body(&patched);
    assert_eq!(patched["name"], "Ada King");
    assert_eq!(patched["email"], "ada@example.com");

    // With a mask, only the masked fields change.
    let masked = stack
        .json(
            "PATCH",
            &format!("/v1/users/{id}?updateMask=email"),
            &[],
            &json!({"name": "ignored", "email": "countess@example.com"}),
        )
        .await;
    assert_eq!(masked.status, 200, "{}", masked.body);
    let masked = body(&masked);
    assert_eq!(masked["name"], "Ada King");
    assert_eq!(masked["email"], "countess@example.com");

    // An empty mask is no mask (AIP-134): the fields sent change.
    let unmasked = stack
        .json(
            "PATCH",
            &format!("/v1/users/{id}?updateMask="),
            &[],
            &json!({"name": "Ada"}),
        )
        .await;
    assert_eq!(unmasked.status, 200, "{}", unmasked.body);
    assert_eq!(body(&unmasked)["name"], "Ada");

    let deleted = stack
        .send("DELETE", &format!("/v1/users/{id}"), &[], b"")
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert!(deleted.body.is_empty());

    let gone = stack.get(&format!("/v1/users/{id}")).await;
    assert_eq!(gone.status, 404);
    assert_eq!(problem(&gone)["code"], "NOT_FOUND");
    let again = stack
        .send("DELETE", &format!("/v1/users/{id}"), &[], b"")
        .await;
    assert_eq!(again.status, 404);

    stack.stop().await;
}

#[tokio::test]
async fn users_are_listed_a_page_at_a_time() {
    let stack = Stack::start().await;
    let mut made = Vec::new();
    for name in ["Ann", "Bob", "Cyd"] {
        made.push(
            stack.user(name).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }

    let mut seen = Vec::new();
    let mut path = "/v1/users?page_size=2".to_owned();
    loop {
        let page = stack.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let page = body(&page);
        let users = page["users"].as_array().expect("users");
        assert!(users.len() <= 2);
        seen.extend(
            users
                .iter()
                .map(|u| u["id"].as_str().expect("id").to_owned()),
        );
        let token = page["nextPageToken"].as_str().expect("nextPageToken");
        if token.is_empty() {
            break;
        }
        // The proto3 JSON names are accepted too.
        path = format!("/v1/users?pageSize=2&pageToken={token}");
    }
    assert_eq!(seen, made);

    let bad = stack.get("/v1/users?page_size=-1").await;
    assert_eq!(bad.status, 400);
    assert_eq!(violated_fields(&problem(&bad)), ["pageSize"]);
    let tampered = stack.get("/v1/users?page_token=forged").await;
    assert_eq!(tampered.status, 400);
    assert_eq!(violated_fields(&problem(&tampered)), ["pageToken"]);
    stack.stop().await;
}

#[tokio::test]
async fn bad_users_are_refused_with_their_fields_named() {
    let stack = Stack::start().await;
    let invalid = stack
        .json(
            "POST",
            "/v1/users",
            &[],
            &json!({"name": "", "email": "not-an-email"}),
        )
        .await;
    assert_eq!(invalid.status, 400);
    let invalid = problem(&invalid);
    assert_eq!(invalid["code"], "INVALID_ARGUMENT");
    let mut fields = violated_fields(&invalid);
    fields.sort();
    assert_eq!(fields, ["email", "name"]);

    stack.user("Ada").await;
    let taken = stack
        .json(
            "POST",
            "/v1/users",
            &[],
            &json!({"name": "Ada", "email": "dup@example.com"}),
        )
        .await;
    assert_eq!(taken.status, 201);
    let conflict = stack
        .json(
            "POST",
            "/v1/users",
            &[],
            &json!({"name": "Eve", "email": "dup@example.com"}),
        )
        .await;
    assert_eq!(conflict.status, 409);
    let conflict = problem(&conflict);
    assert_eq!(conflict["code"], "ALREADY_EXISTS");
    assert_eq!(conflict["reason"], "EMAIL_TAKEN");

    let id = body(&taken)["id"].as_str().expect("id").to_owned();
    let empty = stack
        .json("PATCH", &format!("/v1/users/{id}"), &[], &json!({}))
        .await;
    assert_eq!(empty.status, 400);
    assert_eq!(violated_fields(&problem(&empty)), ["body"]);

    let bad_id = stack.get("/v1/users/not-a-uuid").await;
    assert_eq!(bad_id.status, 400);
    assert_eq!(violated_fields(&problem(&bad_id)), ["id"]);
    stack.stop().await;
}
