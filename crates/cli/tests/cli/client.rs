//! The Rust client (`orderly::client`) against `orderly serve`: its default retry policy carries
//! every read through a service that fails three calls in ten.

use std::sync::atomic::{AtomicUsize, Ordering};

use orderly::client::Client;
use orderly::users::v1::{CreateUserRequest, GetUserRequest};

#[tokio::test]
async fn the_default_policy_carries_every_read_through_a_30_percent_failure_rate() {
    let data = tempfile::tempdir().expect("data dir");
    let database = format!("sqlite://{}", data.path().join("users.db").display());
    let extra = ["--fail-rate", "0.3", "--fault-methods", "GetUser"];
    let args = crate::common::serve_args("users", "127.0.0.1:0", &database, &extra);
    let served = crate::common::start(&args, "UserService").await;
    let client = Client::builder(format!("http://{}", served.addr))
        .connect()
        .await
        .expect("connected");
    let id = client
        .users()
        .create_user(CreateUserRequest {
            name: "Ada".into(),
            email: "ada@example.com".into(),
        })
        .await
        .expect("created: sign-up is not faulted")
        .into_inner()
        .user
        .expect("user")
        .id;

    let attempts = AtomicUsize::new(0);
    for _ in 0..100 {
        let user = client
            .retry(|| async {
                attempts.fetch_add(1, Ordering::Relaxed);
                client
                    .users()
                    .get_user(GetUserRequest { id: id.clone() })
                    .await
            })
            .await
            .expect("every read succeeds in the end");
        assert_eq!(
            user.into_inner().user.map(|u| u.name).as_deref(),
            Some("Ada")
        );
    }
    let attempts = attempts.into_inner();
    // About 143 expected; fewer than 110 would mean the faults were not there to absorb.
    assert!(attempts > 110, "{attempts} attempts for 100 reads");
}

#[tokio::test]
async fn a_bad_endpoint_and_a_refused_connection_say_what_is_wrong() {
    let no_scheme = Client::builder("127.0.0.1:50051")
        .connect()
        .await
        .expect_err("no scheme");
    assert!(
        no_scheme
            .to_string()
            .contains("must start with http:// or https://"),
        "{no_scheme}"
    );
    let port = crate::common::free_port();
    let refused = Client::builder(format!("http://127.0.0.1:{port}"))
        .connect()
        .await
        .expect_err("nothing listens");
    let text = refused.to_string();
    assert!(
        text.starts_with(&format!("cannot connect to http://127.0.0.1:{port}")),
        "{text}"
    );
    assert!(
        text.len() > "cannot connect to http://127.0.0.1:00000: transport error".len(),
        "{text}"
    );
}
