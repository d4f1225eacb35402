//! A tour of Orderly through its Rust client, as a team integrating it would write it: sign a user
//! up (reading a refusal field by field first), place orders with idempotency keys (retried
//! safely), follow one until it settles, and page through them all.

use orderly::client::Client;
use orderly::common::v1::Address;
use orderly::error::{Error, StatusExt};
use orderly::orders::v1::{CreateOrderRequest, OrderLine, OrderStatus};
use orderly::rpc::{Code, Status, StreamExt as _};
use orderly::users::v1::CreateUserRequest;

/// What the tour saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tour {
    /// The fields of the sign-up refused first, as the service named them.
    pub refused_fields: Vec<String>,
    /// The user signed up.
    pub user_id: String,
    /// Where the first order settled.
    pub settled: OrderStatus,
    /// How many orders the paged listing returned.
    pub listed: usize,
}

/// Takes the tour with `client`, signing up `email` and placing `orders` orders.
pub async fn tour(client: &Client, email: &str, orders: usize) -> Result<Tour, Error> {
    // A sign-up with an empty name is refused, and says which field to fix.
    let refused = client
        .users()
        .create_user(CreateUserRequest {
            name: " ".into(),
            email: email.into(),
        })
        .await
        .expect_err_or(Code::InvalidArgument)?;
    let refused_fields = refused.violations().into_iter().map(|v| v.field).collect();

    // CreateUser is not idempotent: made once, never retried.
    let user = client
        .users()
        .create_user(CreateUserRequest {
            name: "Ada Lovelace".into(),
            email: email.into(),
        })
        .await?
        .into_inner()
        .user
        .ok_or_else(|| Status::internal("no user in the answer"))?;

    // CreateOrder carries an idempotency key: a retry is answered with the same order.
    let mut placed = Vec::new();
    for i in 0..orders {
        let request = CreateOrderRequest {
            user_id: user.id.clone(),
            // A product of the catalog; its price is the catalog's.
            items: vec![OrderLine::new(format!("BOOK-{}", i % 8 + 1), 1)],
            shipping_address: Some(Address::new(
                "Ada Lovelace",
                "12 St James's Square",
                "London",
                "SW1Y 4JH",
                "GB",
            )),
            idempotency_key: orderly::messages::idempotency_key(),
            expected_total: None,
        };
        let order = client
            .retry(|| async { client.orders().create_order(request.clone()).await })
            .await?
            .into_inner()
            .order
            .ok_or_else(|| Status::internal("no order in the answer"))?;
        placed.push(order.id);
    }
    let first = placed.first().cloned().unwrap_or_default();
    let settled = client.watch_until_settled(first).await?.status();

    // Every order, a page of two at a time.
    let mut listing = std::pin::pin!(client.list_orders(user.id.clone(), 2));
    let mut listed = 0;
    while let Some(order) = listing.next().await {
        order?;
        listed += 1;
    }
    Ok(Tour {
        refused_fields,
        user_id: user.id,
        settled,
        listed,
    })
}

/// The refusal a call was expected to end in.
trait ExpectRefusal<T> {
    /// The status, if the call failed with `code`; otherwise an error saying what happened.
    fn expect_err_or(self, code: Code) -> Result<Status, Error>;
}

impl<T> ExpectRefusal<T> for Result<T, Status> {
    fn expect_err_or(self, code: Code) -> Result<Status, Error> {
        match self {
            Err(status) if status.code() == code => Ok(status),
            Err(status) => Err(status.into()),
            Ok(_) => Err(Status::unknown(format!("expected {code:?}, the call succeeded")).into()),
        }
    }
}
