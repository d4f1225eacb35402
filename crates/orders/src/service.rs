//! The gRPC implementation of OrderService. CreateOrder checks the request, reserves its stock,
//! which prices it in the same catalog call, while it checks the user (refusing, with nothing
//! stored and the stock given back, an unknown user, what is out of stock or priced otherwise than
//! the caller expected), stores the order PENDING, and hands it to the
//! saga in a task of its own, so that a caller who hangs up or times out never leaves an order
//! half-done; the call answers with the order as it stands when the saga finishes, or
//! DEADLINE_EXCEEDED if the saga is still working when the time is up.

use orderly::rpc::BoxStream;
use std::time::Duration;

use orderly::orders::v1::{
    CancelOrderRequest, CancelOrderResponse, CreateOrderRequest, CreateOrderResponse,
    GetOrderRequest, GetOrderResponse, ListOrdersRequest, ListOrdersResponse, Order, OrderService,
    WatchOrderRequest, WatchOrderResponse,
};
use orderly::validate::text;
use orderly_kit::auth::{Caller, OnBehalf};
use orderly_kit::client::deadline::Deadline;
use orderly_kit::pagination::{PageTokens, page_size};
use orderly_kit::status::FieldViolations;
use tokio::time::Instant;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::changes::Changes;
use crate::downstream::{Downstreams, reserved_prices};
use crate::error::OrderError;
use crate::flow::Flow;
use crate::follow::Follower;
use crate::model::{OrderRecord, OrderRequest, Status as OrderStatus};
use crate::store::{Inserted, OrderStore};
use orderly::catalog::v1::{ReservationStatus, StockLine};
use orderly::error::{Reason, StatusExt as _};

/// Page sizes of ListOrders: the default when the request names none, and the largest (larger
/// requests are coerced down, AIP-158).
pub use orderly::validate::limits::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
/// The most bytes of orders one ListOrders page carries. A page stops early (with a next-page
/// token, as AIP-158 allows) rather than outgrow the 4 MiB message limit: a thousand orders of a
/// hundred lines each would be ten times that.
pub const PAGE_BYTES: usize = 1024 * 1024;
/// How many orders ListOrders reads from the database at a time while it fills a page, so that
/// a page that stops early has not read (and held) the rest.
const LIST_CHUNK: u32 = 50;
/// Longest cancel reason, in characters.
pub use orderly::validate::limits::REASON_CHARS as MAX_REASON_CHARS;
/// Time kept from the caller's deadline to store and report the outcome after the fan-out.
const ANSWER_MARGIN: Duration = Duration::from_millis(20);
/// How long the release of an unplaced order's stock may take.
const UNPLACED_RELEASE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long past the fan-out deadline a caller waits for a quick compensation to finish.
const SETTLE_GRACE: Duration = Duration::from_millis(50);

/// How OrderService times its work.
#[derive(Debug, Clone)]
pub struct Timing {
    /// The most a CreateOrder fan-out may take, even when the caller allows more.
    pub budget: Duration,
    /// How often watchers re-read an order, for changes made by other replicas.
    pub watch_poll: Duration,
}

/// OrderService over its store and saga.
#[derive(Debug, Clone)]
pub struct Orders {
    store: OrderStore,
    downstreams: Downstreams,
    flow: Flow,
    changes: Changes,
    tokens: PageTokens,
    timing: Timing,
}

impl Orders {
    /// The service over these parts.
    pub fn new(
        store: OrderStore,
        downstreams: Downstreams,
        flow: Flow,
        changes: Changes,
        tokens: PageTokens,
        timing: Timing,
    ) -> Self {
        Self {
            store,
            downstreams,
            flow,
            changes,
            tokens,
            timing,
        }
    }

    fn follower(&self, id: &str) -> Follower {
        Follower::new(
            self.store.clone(),
            &self.changes,
            id,
            self.timing.watch_poll,
        )
    }

    /// The order once it settles, or as it stands at `until`.
    async fn settled(&self, order: OrderRecord, until: Instant) -> Result<OrderRecord, OrderError> {
        if order.status.is_settled() {
            return Ok(order);
        }
        let mut follower = self.follower(&order.id);
        let mut latest = order;
        while !latest.status.is_settled() {
            match tokio::time::timeout_at(until, follower.next()).await {
                Ok(Ok(Some(next))) => latest = next,
                Ok(Ok(None)) => return Err(OrderError::NotFound(latest.id)),
                Ok(Err(error)) => return Err(error.into()),
                Err(_) => break,
            }
        }
        Ok(latest)
    }

    /// The answer to a CreateOrder whose key made `existing` before: the same order (as it settles)
    /// marked as a replay, or refused if the key came with a different request.
    async fn replay(
        &self,
        request: &OrderRequest,
        existing: OrderRecord,
        until: Instant,
    ) -> Answer<CreateOrderResponse> {
        if !existing.request_hash.is_empty() && existing.request_hash != request.fingerprint {
            return Err(OrderError::KeyReused(request.idempotency_key.clone()));
        }
        let order = self.settled(existing, until).await?;
        let mut response = Response::new(CreateOrderResponse {
            order: Some(order.into()),
        });
        response.metadata_mut().insert(
            orderly::metadata::IDEMPOTENT_REPLAYED,
            tonic::metadata::MetadataValue::from_static("true"),
        );
        Ok(response)
    }

    /// Up to `size` of the user's orders after the cursor `before`, read a chunk at a time and
    /// stopping at [`PAGE_BYTES`] (always at least one order); and whether more orders follow.
    async fn page(
        &self,
        user_id: &str,
        mut before: Option<String>,
        size: usize,
    ) -> Result<(Vec<Order>, bool), OrderError> {
        let mut page: Vec<Order> = Vec::new();
        let mut bytes = 0;
        loop {
            let remaining = u32::try_from(size - page.len()).unwrap_or(u32::MAX);
            let want = remaining.min(LIST_CHUNK) + 1;
            let chunk = self.store.list(user_id, before.as_deref(), want).await?;
            let exhausted = chunk.len() < want as usize;
            for record in chunk {
                let order = Order::from(record);
                let length = prost::Message::encoded_len(&order);
                if page.len() == size || (!page.is_empty() && bytes + length > PAGE_BYTES) {
                    return Ok((page, true));
                }
                bytes += length;
                page.push(order);
            }
            match page.last() {
                Some(last) if !exhausted => before = Some(last.id.clone()),
                _ => return Ok((page, false)),
            }
        }
    }

    /// Releases, in the background, the stock that may have been reserved for an order id that
    /// was never stored (a reservation whose answer was lost, an insert that failed).
    fn release_unplaced(&self, id: &str) {
        let downstreams = self.downstreams.clone();
        let id = id.to_owned();
        tokio::spawn(async move { release_reservation(&downstreams, &id).await }.in_current_span());
    }

    async fn existing(&self, id: &str) -> Result<OrderRecord, OrderError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| OrderError::NotFound(id.to_owned()))
    }
}

type Reply<T> = Result<Response<T>, Status>;
/// What a handler answers before the trait edge turns its error into a status.
type Answer<T> = Result<Response<T>, OrderError>;

/// Allows the call on `user_id`'s orders: the caller is that user or an admin (or the server does
/// not authenticate, and there is no caller).
fn owner(caller: Option<&Caller>, user_id: &str) -> Result<(), OrderError> {
    match caller {
        Some(caller) => Ok(caller.may_act_for(user_id)?),
        None => Ok(()),
    }
}

/// Releases the stock reserved for `id`, an order that was never stored (should this fail, the
/// reservation expires and the catalog releases it). Awaited for a refused order, so that a caller
/// who reads the stock next finds it back on hand.
async fn release_reservation(downstreams: &Downstreams, id: &str) {
    let deadline = Deadline::after(UNPLACED_RELEASE_TIMEOUT);
    if let Err(status) = downstreams
        .release_stock(id, "order not placed", deadline)
        .await
    {
        tracing::warn!(order_id = %id, %status, "stock of an unplaced order not released; it expires");
    }
}

/// Checks an order id.
fn order_id(raw: &str) -> Result<String, OrderError> {
    let mut violations = FieldViolations::new();
    match uuid::Uuid::try_parse(raw.trim()) {
        Ok(id) => Ok(id.to_string()),
        Err(_) => {
            let problem = if raw.trim().is_empty() {
                "is required"
            } else {
                "is not a valid order id (a UUID)"
            };
            violations.add("id", problem);
            Err(violations.into())
        }
    }
}

/// The handlers, in the service's own error type; [`OrderService`] turns it into a status
/// once.
impl Orders {
    async fn create_order(
        &self,
        request: Request<CreateOrderRequest>,
    ) -> Answer<CreateOrderResponse> {
        let work = Deadline::for_request(&request, self.timing.budget, ANSWER_MARGIN);
        let answer_by = work.instant() + SETTLE_GRACE;
        let caller = Caller::of(&request).cloned();
        let on_behalf = OnBehalf::of(&request);
        let request = OrderRequest::parse(request.into_inner())?;
        let user_id = request.user_id.to_string();
        owner(caller.as_ref(), &user_id)?;

        if let Some(existing) = self
            .store
            .by_key(&user_id, &request.idempotency_key)
            .await?
        {
            return self.replay(&request, existing, answer_by).await;
        }
        // Taken before anything is reserved or stored: an order that could only fail is refused
        // up front.
        let permits = self
            .downstreams
            .admit_fanout()
            .map_err(OrderError::FailingFast)?;
        // The catalog prices the order in the call that reserves its stock (one call, not two),
        // while the user is checked; a refusal after the stock was reserved gives it back before
        // it is answered.
        let id = uuid::Uuid::now_v7().to_string();
        let lines = request
            .units()
            .into_iter()
            .map(|(sku, quantity)| StockLine {
                sku,
                quantity,
                unit_price: None,
            })
            .collect();
        let (exists, reserved) = tokio::join!(
            self.downstreams.user_exists(&user_id, &on_behalf, work),
            self.downstreams
                .reserve(&id, lines, (permits.reserve, &on_behalf), work),
        );
        let user = match exists {
            Ok(true) => Ok(()),
            Ok(false) => Err(OrderError::UnknownUser(user_id.clone())),
            Err(status) => Err(OrderError::Users(status)),
        };
        let reservation = match reserved {
            Ok(reservation) if reservation.status() == ReservationStatus::Reserved => {
                Ok(reservation)
            }
            // Released before it was made: only a release for this fresh id could do that.
            Ok(_) => Err(OrderError::Internal(format!(
                "the reservation of new order {id} was released"
            ))),
            Err(status) if status.reason() == Some(Reason::OutOfStock) => {
                Err(OrderError::OutOfStock(status.skus()))
            }
            Err(status) if status.reason() == Some(Reason::ProductNotFound) => {
                Err(OrderError::UnknownProducts(status.skus()))
            }
            Err(status) => {
                // The reservation may have been made before the answer was lost: void it.
                self.release_unplaced(&id);
                Err(OrderError::Catalog(status))
            }
        };
        // The user's refusal comes first, as when the user was checked before anything else.
        let reservation = match (user, reservation) {
            (Ok(()), Ok(reservation)) => reservation,
            (Err(refused), Ok(_)) => {
                release_reservation(&self.downstreams, &id).await;
                return Err(refused);
            }
            (Err(refused), Err(_)) | (Ok(()), Err(refused)) => return Err(refused),
        };
        let new = match reserved_prices(&reservation)
            .map_err(OrderError::Catalog)
            .and_then(|prices| request.price(&prices).map_err(OrderError::from))
        {
            Ok(new) => new,
            Err(refused) => {
                release_reservation(&self.downstreams, &id).await;
                return Err(refused);
            }
        };
        let order = match self.store.insert_pending(&id, &new).await {
            Ok(Inserted::New(order)) => order,
            Ok(Inserted::Existing(existing)) => {
                // The same request raced this one and won: its order holds its own stock.
                self.release_unplaced(&id);
                return self.replay(&new.request, existing, answer_by).await;
            }
            Err(error) => {
                self.release_unplaced(&id);
                return Err(error.into());
            }
        };
        tracing::info!(order_id = %order.id, %user_id, total = order.total, currency = %order.currency, "order accepted");
        self.changes.notify(&order.id);

        let id = order.id.clone();
        let flow = self.flow.clone();
        // The saga's spans stay children of this call's span.
        let legs = (permits.charge, permits.schedule);
        let saga = tokio::spawn(
            async move { flow.process(order, legs, &on_behalf, work).await }.in_current_span(),
        );
        match tokio::time::timeout_at(answer_by, saga).await {
            Ok(Ok(result)) => {
                let order = result?;
                Ok(Response::new(CreateOrderResponse {
                    order: Some(order.into()),
                }))
            }
            Ok(Err(join)) => {
                tracing::error!(order_id = %id, error = %join, "order saga panicked; the recovery sweep will settle it");
                Err(OrderError::Internal(format!("order saga: {join}")))
            }
            Err(_) => Err(OrderError::StillProcessing(id)),
        }
    }

    async fn get_order(&self, request: Request<GetOrderRequest>) -> Answer<GetOrderResponse> {
        let caller = Caller::of(&request).cloned();
        let id = order_id(&request.into_inner().id)?;
        let order = self.existing(&id).await?;
        owner(caller.as_ref(), &order.user_id)?;
        Ok(Response::new(GetOrderResponse {
            order: Some(order.into()),
        }))
    }

    async fn list_orders(&self, request: Request<ListOrdersRequest>) -> Answer<ListOrdersResponse> {
        let caller = Caller::of(&request).cloned();
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let user_id = match uuid::Uuid::try_parse(request.user_id.trim()) {
            Ok(id) => Some(id.to_string()),
            Err(_) => {
                violations.add("user_id", "is required: a user id (a UUID)");
                None
            }
        };
        let size = violations.check(
            "page_size",
            page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        );
        let scope = format!(
            "orderly.orders.v1.ListOrders/{}",
            user_id.as_deref().unwrap_or_default()
        );
        let before = if request.page_token.is_empty() {
            Some(None)
        } else {
            violations
                .check("page_token", self.tokens.open(&scope, &request.page_token))
                .map(|cursor| Some(String::from_utf8_lossy(&cursor).into_owned()))
        };
        let (Some(user_id), Some(size), Some(before)) = (user_id, size, before) else {
            return Err(OrderError::Invalid(violations));
        };
        owner(caller.as_ref(), &user_id)?;
        let (orders, more) = self.page(&user_id, before, size as usize).await?;
        let next_page_token = match orders.last() {
            Some(last) if more => self.tokens.seal(&scope, last.id.as_bytes()),
            _ => String::new(),
        };
        Ok(Response::new(ListOrdersResponse {
            orders,
            next_page_token,
        }))
    }

    async fn cancel_order(
        &self,
        request: Request<CancelOrderRequest>,
    ) -> Answer<CancelOrderResponse> {
        let caller = Caller::of(&request).cloned();
        let request = request.into_inner();
        let id = order_id(&request.id)?;
        let mut violations = FieldViolations::new();
        let Some(reason) = violations.text("reason", text(&request.reason, MAX_REASON_CHARS))
        else {
            return Err(OrderError::Invalid(violations));
        };
        let order = self.existing(&id).await?;
        owner(caller.as_ref(), &order.user_id)?;
        if matches!(order.status, OrderStatus::Pending | OrderStatus::Failed) {
            return Err(OrderError::NotConfirmed {
                id,
                status: order.status.as_str(),
            });
        }
        let reason = if reason.is_empty() {
            "cancelled by request".to_owned()
        } else {
            reason
        };
        // In a task of its own, so a caller who hangs up cannot stop a cancel half-way.
        let flow = self.flow.clone();
        let cancelled =
            tokio::spawn(async move { flow.cancel(order, &reason).await }.in_current_span())
                .await
                .map_err(|join| OrderError::Internal(format!("cancel failed: {join}")))??;
        Ok(Response::new(CancelOrderResponse {
            order: Some(cancelled.into()),
        }))
    }

    async fn watch_order(
        &self,
        request: Request<WatchOrderRequest>,
    ) -> Answer<BoxStream<WatchOrderResponse>> {
        let caller = Caller::of(&request).cloned();
        let id = order_id(&request.into_inner().id)?;
        let mut follower = self.follower(&id);
        let first = follower.next().await?.ok_or(OrderError::NotFound(id))?;
        owner(caller.as_ref(), &first.user_id)?;
        let (sender, receiver) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            let mut current = Some(first);
            while let Some(order) = current.take() {
                let settled = order.status.is_settled();
                if sender
                    .send(Ok(WatchOrderResponse {
                        order: Some(order.into()),
                    }))
                    .await
                    .is_err()
                    || settled
                {
                    return;
                }
                current = tokio::select! {
                    next = follower.next() => match next {
                        Ok(next) => next,
                        Err(error) => {
                            let _ = sender.send(Err(Status::from(OrderError::from(error)))).await;
                            None
                        }
                    },
                    // The watcher left.
                    () = sender.closed() => None,
                };
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }
}

#[tonic::async_trait]
impl OrderService for Orders {
    async fn create_order(
        &self,
        request: Request<CreateOrderRequest>,
    ) -> Reply<CreateOrderResponse> {
        Orders::create_order(self, request)
            .await
            .map_err(Status::from)
    }

    async fn get_order(&self, request: Request<GetOrderRequest>) -> Reply<GetOrderResponse> {
        Orders::get_order(self, request).await.map_err(Status::from)
    }

    async fn list_orders(&self, request: Request<ListOrdersRequest>) -> Reply<ListOrdersResponse> {
        Orders::list_orders(self, request)
            .await
            .map_err(Status::from)
    }

    async fn cancel_order(
        &self,
        request: Request<CancelOrderRequest>,
    ) -> Reply<CancelOrderResponse> {
        Orders::cancel_order(self, request)
            .await
            .map_err(Status::from)
    }

    async fn watch_order(
        &self,
        request: Request<WatchOrderRequest>,
    ) -> Reply<BoxStream<WatchOrderResponse>> {
        Orders::watch_order(self, request)
            .await
            .map_err(Status::from)
    }
}
