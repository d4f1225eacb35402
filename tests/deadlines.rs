//! Deadlines a client can trust: a call that outlives its deadline fails with a status whose
//! `is_deadline()` is true, whether a real server over TCP hangs or an in-memory fake does, and a
//! call's own deadline wins over the builder's, shorter or longer.

use std::time::{Duration, Instant};

use orderly::client::Client;
use orderly::error::StatusExt;
use orderly::rpc::{Request, Response, Status};
use orderly::tonic::service::Routes;
use orderly::users::v1::{GetUserRequest, GetUserResponse, User, UserService, UserServiceServer};
use tokio::sync::oneshot;

/// Answers every GetUser after `delay`: a server slower than the deadlines below.
#[derive(Clone)]
struct Slow {
    delay: Duration,
}

#[orderly::tonic::async_trait]
impl UserService for Slow {
    async fn get_user(
        &self,
        _request: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        // The slowness under test, not a wait for something to happen.
        tokio::time::sleep(self.delay).await;
        Ok(Response::new(GetUserResponse {
            user: Some(User::default()),
        }))
    }
}

/// Serves `service` over TCP on 127.0.0.1:0 until the returned sender is dropped; its URL.
async fn serve_tcp(service: Slow) -> (String, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        orderly::tonic::transport::Server::builder()
            .add_service(UserServiceServer::new(service))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    (url, stop)
}

/// Calls GetUser, with the call's own deadline if given; the outcome and how long it took.
async fn get_user(client: &Client, own: Option<Duration>) -> (Result<(), Status>, Duration) {
    let mut request = Request::new(GetUserRequest::default());
    if let Some(own) = own {
        request.set_timeout(own);
    }
    let started = Instant::now();
    let outcome = client.users().get_user(request).await.map(drop);
    (outcome, started.elapsed())
}

#[tokio::test]
async fn a_hung_server_over_tcp_fails_the_call_at_its_deadline_as_a_deadline() {
    let (url, _stop) = serve_tcp(Slow {
        delay: Duration::from_secs(60),
    })
    .await;
    let client = Client::builder(url)
        .timeout(Duration::from_millis(300))
        .connect()
        .await
        .expect("connect");
    let (outcome, took) = get_user(&client, None).await;
    let status = outcome.expect_err("past its deadline");
    assert!(status.is_deadline(), "{status:?}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn a_calls_own_deadline_wins_whether_shorter_or_longer_than_the_builders() {
    let (url, _stop) = serve_tcp(Slow {
        delay: Duration::from_millis(400),
    })
    .await;
    // The builder's 200 ms would end the call; the call's own 5 s lets it finish.
    let short_default = Client::builder(url.clone())
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .expect("connect");
    let (outcome, took) = get_user(&short_default, Some(Duration::from_secs(5))).await;
    assert!(outcome.is_ok(), "{outcome:?} after {took:?}");
    let (outcome, _) = get_user(&short_default, None).await;
    assert!(outcome.expect_err("the builder's deadline").is_deadline());

    // The builder's 10 s would let it finish; the call's own 100 ms ends it.
    let long_default = Client::builder(url)
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect");
    let (outcome, took) = get_user(&long_default, Some(Duration::from_millis(100))).await;
    assert!(outcome.expect_err("its own deadline").is_deadline());
    assert!(took < Duration::from_millis(400), "{took:?}");
}

#[tokio::test]
async fn a_hung_fake_fails_the_call_at_its_deadline_as_a_deadline() {
    let builder = Client::builder("http://unused.invalid").timeout(Duration::from_millis(200));
    let client = orderly::testing::serve_as(
        builder,
        Routes::new(UserServiceServer::new(Slow {
            delay: Duration::from_secs(60),
        })),
    )
    .expect("client");
    let (outcome, took) = get_user(&client, None).await;
    let status = outcome.expect_err("past its deadline");
    assert!(status.is_deadline(), "{status:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}
