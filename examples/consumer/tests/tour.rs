//! The tour against the real services (users, orders, payments and delivery on port 0, over
//! SQLite), through the client alone.

use orderly::client::Client;
use orderly::orders::v1::OrderStatus;
use orderly_testkit::{Options, Stack};

#[tokio::test]
async fn the_tour_signs_up_places_watches_and_pages() {
    let stack = Stack::start(Options {
        tls: false,
        ..Options::default()
    })
    .await
    .expect("SQLite is always available");
    let client = Client::builder(stack.users_url.clone())
        .orders_url(stack.orders_url.clone())
        .connect()
        .await
        .expect("connected");
    let tour = orderly_consumer::tour(&client, "ada@example.com", 3)
        .await
        .expect("the tour");
    assert_eq!(tour.refused_fields, ["name"]);
    assert_eq!(tour.settled, OrderStatus::Confirmed);
    assert_eq!(tour.listed, 3, "three orders over two pages");
}
