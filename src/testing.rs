//! Testing code that calls Orderly, without a port: serve fakes of the services in memory and get
//! a [`Client`] connected to them. With the generated default stubs, a fake implements only the
//! methods the test needs; the others answer UNIMPLEMENTED.
//!
//! ```
//! use orderly::rpc::{Code, Request, Response, Status};
//! use orderly::tonic::service::Routes;
//! use orderly::users::v1::{
//!     GetUserRequest, GetUserResponse, ListUsersRequest, User, UserService, UserServiceServer,
//! };
//!
//! struct OneUser;
//!
//! #[orderly::tonic::async_trait]
//! impl UserService for OneUser {
//!     async fn get_user(
//!         &self,
//!         request: Request<GetUserRequest>,
//!     ) -> Result<Response<GetUserResponse>, Status> {
//!         let id = request.into_inner().id;
//!         let user = User { id, name: "Ada".into(), ..Default::default() };
//!         Ok(Response::new(GetUserResponse { user: Some(user) }))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let client = orderly::testing::serve(Routes::new(UserServiceServer::new(OneUser)));
//! let request = GetUserRequest { id: "7".into() };
//! let user = client.users().get_user(request).await.unwrap().into_inner().user.unwrap();
//! assert_eq!(user.name, "Ada");
//! let unfaked = client.users().list_users(ListUsersRequest::default()).await.unwrap_err();
//! assert_eq!(unfaked.code(), Code::Unimplemented);
//! # }
//! ```

use std::io;

use tokio::io::DuplexStream;
use tonic::service::Routes;
use tonic::transport::{Channel, Endpoint, Server};

use crate::client::{Client, ClientBuilder, ClientError, Credentials, RetryPolicy};

/// Bytes a connection buffers each way.
const BUFFER: usize = 64 * 1024;

/// Serves `routes` (e.g. `Routes::new(UserServiceServer::new(fake))`) on in-memory connections
/// and returns a client of them, without retries. Call it inside a Tokio runtime: the server runs
/// as a task of it, until the runtime ends.
pub fn serve(routes: Routes) -> Client {
    Client::over(channel(routes), Credentials::default(), RetryPolicy::none())
}

/// As [`serve`], for a client configured by `builder` (its token, metadata, deadline and retry
/// policy; its addresses are ignored).
pub fn serve_as(builder: ClientBuilder, routes: Routes) -> Result<Client, ClientError> {
    let (credentials, retry) = builder.settings()?;
    Ok(Client::over(channel(routes), credentials, retry))
}

/// A channel to `routes`, served in memory.
fn channel(routes: Routes) -> Channel {
    let (connections, accepted) = tokio::sync::mpsc::unbounded_channel::<DuplexStream>();
    let incoming = futures_util::stream::unfold(accepted, |mut accepted| async move {
        let connection = accepted.recv().await?;
        Some((Ok::<_, io::Error>(connection), accepted))
    });
    tokio::spawn(
        Server::builder()
            .add_routes(routes)
            .serve_with_incoming(incoming),
    );
    let connector = tower::service_fn(move |_| {
        let connections = connections.clone();
        async move {
            let (client, server) = tokio::io::duplex(BUFFER);
            connections
                .send(server)
                .map_err(|_| io::Error::other("the in-memory server has stopped"))?;
            Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(client))
        }
    });
    Endpoint::from_static("http://in-memory.invalid").connect_with_connector_lazy(connector)
}
