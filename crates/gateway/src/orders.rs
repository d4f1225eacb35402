//! `/v1/orders`: OrderService over REST.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use orderly::orders::v1::{
    CancelOrderRequest, CreateOrderRequest, GetOrderRequest, ListOrdersRequest, OrderServiceClient,
    WatchOrderRequest,
};
use orderly_kit::client::downstream::Safety;
use orderly_kit::status::present;
use serde::Deserialize;
use tokio_stream::StreamExt as _;
use utoipa::IntoParams;

use crate::api::custom_method;
use crate::body::JsonBody;
use crate::json::{CancelOrder, NewOrder, Order, OrderPage};
use crate::problem::Problem;
use crate::state::{Forward, Gateway};

/// The header carrying a CreateOrder's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The response header that marks a CreateOrder answered from an earlier request with the same
/// key (200 instead of 201): the service's metadata of the same name, passed on.
pub const IDEMPOTENT_REPLAYED: &str = orderly::metadata::IDEMPOTENT_REPLAYED;

/// The query of `GET /v1/orders`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, default)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Whose orders (required).
    #[serde(alias = "userId")]
    pub user_id: String,
    /// The most orders to return.
    #[serde(alias = "pageSize")]
    pub page_size: i32,
    /// The `nextPageToken` of the previous page: sealed by the server (only
    /// tokens it issued, unchanged, are accepted); empty for the first page.
    #[serde(alias = "pageToken")]
    #[param(pattern = r"^([A-Za-z0-9_-]{43,})?$")]
    pub page_token: String,
}

/// Places an order: charges it and schedules its delivery, or undoes both. Sending the same
/// `Idempotency-Key` with the same body again returns the same order (200, `Idempotent-Replayed:
/// true`) and charges nothing more; with a different body it is refused (422).
#[utoipa::path(
    post, path = "/v1/orders", tag = "orders",
    params(("Idempotency-Key" = String, Header, description = "A key unique to this order; retries reuse it")),
    request_body = NewOrder,
    responses(
        (status = 201, description = "The order, CONFIRMED or FAILED (with its reason)", body = Order,
            headers(("location" = String, description = "The order's URL"))),
        (status = 200, description = "The order an earlier request with the same key and body placed; nothing was done again", body = Order,
            headers(("location" = String, description = "The order's URL"), ("idempotent-replayed" = String, description = "`true`"))),
        (status = 422, description = "The key placed a different order before (reason IDEMPOTENCY_KEY_REUSED)", body = Problem, content_type = "application/problem+json"),
        (status = "4XX", description = "Invalid order (also: the key sent twice), unknown user, or too many requests", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "A service failed or the order is still being processed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_order(
    State(gateway): State<Arc<Gateway>>,
    forward: Forward,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewOrder>,
) -> Result<impl IntoResponse, Problem> {
    let key = idempotency_key(&headers)?;
    let message = CreateOrderRequest {
        user_id: body.user_id,
        items: body.items.into_iter().map(Into::into).collect(),
        shipping_address: body.shipping_address.map(Into::into),
        idempotency_key: key,
        expected_total: body.expected_total.map(Into::into),
    };
    let reply = gateway
        .call_response(
            &gateway.orders,
            Safety::Idempotent,
            forward,
            message,
            |channel, request| async move {
                OrderServiceClient::new(channel).create_order(request).await
            },
        )
        .await
        .map_err(idempotency_key_field)?;
    let replayed = reply
        .metadata()
        .get(IDEMPOTENT_REPLAYED)
        .is_some_and(|v| v == "true");
    let order = Order::from(present(reply.into_inner().order, "order")?);
    let location = format!("/v1/orders/{}", order.id);
    let status = if replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = (status, [(header::LOCATION, location)], Json(order)).into_response();
    if replayed {
        response.headers_mut().insert(
            IDEMPOTENT_REPLAYED,
            header::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// The `Idempotency-Key` header of a request that changes something once per key: required, sent
/// once, visible ASCII.
#[expect(
    clippy::result_large_err,
    reason = "a handler's error is its Problem, returned as it is built"
)]
pub fn idempotency_key(headers: &HeaderMap) -> Result<String, Problem> {
    if headers.get_all(IDEMPOTENCY_KEY).iter().nth(1).is_some() {
        return Err(Problem::invalid(
            "Idempotency-Key",
            "must be sent once: one key per request",
        ));
    }
    match headers.get(IDEMPOTENCY_KEY).map(|v| v.to_str()) {
        Some(Ok(key)) if !key.trim().is_empty() => Ok(key.trim().to_owned()),
        Some(Err(_)) => Err(Problem::invalid(
            "Idempotency-Key",
            "must be visible ASCII text",
        )),
        _ => Err(Problem::invalid(
            "Idempotency-Key",
            "is required: a key unique to this request, reused when retrying it",
        )),
    }
}

/// The service names the key's field `idempotencyKey`; over REST it is the header.
pub fn idempotency_key_field(mut problem: Problem) -> Problem {
    for violation in &mut problem.violations {
        if violation.field == "idempotencyKey" {
            violation.field = "Idempotency-Key".into();
        }
    }
    problem
}

/// Gets an order.
#[utoipa::path(
    get, path = "/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = "4XX", description = "Invalid id, or no such order", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "A service failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_order(
    State(gateway): State<Arc<Gateway>>,
    forward: Forward,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(id) = id?;
    // `GET /v1/orders/{id}:watch` is mounted here too (one route per base path and method).
    if let Some(id) = custom_method(&id, "watch") {
        return watch_order(&gateway, forward, &headers, id.to_owned()).await;
    }
    let reply =
        gateway
            .call(
                &gateway.orders,
                Safety::Idempotent,
                forward,
                GetOrderRequest { id },
                |channel, request| async move {
                    OrderServiceClient::new(channel).get_order(request).await
                },
            )
            .await?;
    Ok(Json(Order::from(present(reply.order, "order")?)).into_response())
}

/// How long one watch may follow an order before the gateway ends it (the client reconnects with
/// `Last-Event-ID`).
const WATCH_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// Follows an order as it changes, as server-sent events: one `order` event per state (the
/// current one first), each with the order as JSON and, as its id, the order's update time in
/// microseconds; the stream ends when the order settles (FAILED or CANCELLED, or CONFIRMED), or
/// after five minutes. A reconnecting client's `Last-Event-ID` skips the states it has seen.
#[utoipa::path(
    get, path = "/v1/orders/{id}:watch", tag = "orders",
    params(
        ("id" = String, Path, description = "The order's id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event seen: states up to it are not sent again"),
    ),
    responses(
        (status = 200, description = "`order` events, each an Order as JSON, until the order settles", content_type = "text/event-stream", body = String),
        (status = "4XX", description = "Invalid id, or no such order", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "A service failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn watch_order_doc() {}

/// The response of `GET /v1/orders/{id}:watch` (see [`watch_order_doc`]).
async fn watch_order(
    gateway: &Gateway,
    forward: Forward,
    headers: &HeaderMap,
    id: String,
) -> Result<Response, Problem> {
    let seen: u64 = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    let stream = gateway
        .call_within(
            &gateway.orders,
            WATCH_FOR,
            forward,
            WatchOrderRequest { id },
            |channel, request| async move {
                OrderServiceClient::new(channel).watch_order(request).await
            },
        )
        .await?;
    // A failure after the first state ends the stream, as its end does.
    let events = stream.map_while(Result::ok).filter_map(move |update| {
        let order = update.order?;
        let id = event_id(&order);
        (id > seen).then(|| {
            let json = serde_json::to_string(&Order::from(order)).unwrap_or_default();
            Ok::<_, std::convert::Infallible>(
                Event::default()
                    .event("order")
                    .id(id.to_string())
                    .data(json),
            )
        })
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// An order state's event id: its update time in microseconds since the epoch, which grows with
/// every change.
fn event_id(order: &orderly::orders::v1::Order) -> u64 {
    order.update_time.map_or(0, |time| {
        u64::try_from(time.seconds).unwrap_or(0) * 1_000_000
            + u64::try_from(time.nanos / 1_000).unwrap_or(0)
    })
}

/// Lists a user's orders, newest first, a page at a time.
#[utoipa::path(
    get, path = "/v1/orders", tag = "orders",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the user's orders", body = OrderPage),
        (status = "4XX", description = "Missing user id, invalid page size or token", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "A service failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_orders(
    State(gateway): State<Arc<Gateway>>,
    forward: Forward,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<OrderPage>, Problem> {
    let Query(query) = query?;
    let message = ListOrdersRequest {
        user_id: query.user_id,
        page_size: query.page_size,
        page_token: query.page_token,
    };
    let reply = gateway
        .call(
            &gateway.orders,
            Safety::Idempotent,
            forward,
            message,
            |channel, request| async move {
                OrderServiceClient::new(channel).list_orders(request).await
            },
        )
        .await?;
    Ok(Json(OrderPage {
        orders: reply.orders.into_iter().map(Order::from).collect(),
        next_page_token: reply.next_page_token,
    }))
}

/// Cancels a CONFIRMED order: its delivery is cancelled and its payment refunded.
#[utoipa::path(
    post, path = "/v1/orders/{id}:cancel", tag = "orders",
    params(("id" = String, Path, description = "The order's id")),
    request_body(content = Option<CancelOrder>, description = "Optional: why it is cancelled"),
    responses(
        (status = 200, description = "The order, CANCELLED", body = Order),
        (status = "4XX", description = "Invalid id, no such order, or the order is not CONFIRMED", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "A service failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_order(
    State(gateway): State<Arc<Gateway>>,
    forward: Forward,
    segment: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<CancelOrder>,
) -> Result<Json<Order>, Problem> {
    let Path(segment) = segment?;
    let Some(id) = custom_method(&segment, "cancel") else {
        return Err(Problem::no_route(&format!("POST /v1/orders/{segment}")));
    };
    let message = CancelOrderRequest {
        id: id.to_owned(),
        reason: body.reason,
    };
    let reply = gateway
        .call(
            &gateway.orders,
            Safety::NotIdempotent,
            forward,
            message,
            |channel, request| async move {
                OrderServiceClient::new(channel).cancel_order(request).await
            },
        )
        .await?;
    Ok(Json(Order::from(present(reply.order, "order")?)))
}
