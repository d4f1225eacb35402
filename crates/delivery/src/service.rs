//! The gRPC implementation of DeliveryService: check the whole request, then let the store's
//! unique order id keep every order to one delivery.

use orderly::delivery::v1::{
    CancelDeliveryRequest, CancelDeliveryResponse, Delivery, DeliveryService, DeliveryStatus,
    GetDeliveryRequest, GetDeliveryResponse, ScheduleDeliveryRequest, ScheduleDeliveryResponse,
};
use orderly::validate::{required_text, text};
use orderly_kit::status::FieldViolations;
use orderly_kit::time::timestamp;
use tonic::{Request, Response, Status};

use crate::error::DeliveryError;
use crate::store::{self, DeliveryRecord, DeliveryStore};

/// The longest order or delivery id, in bytes.
pub const MAX_ID_CHARS: usize = 200;
/// The longest cancel reason, in characters.
pub use orderly::validate::limits::REASON_CHARS as MAX_REASON_CHARS;

/// DeliveryService over a [`DeliveryStore`].
#[derive(Debug, Clone)]
pub struct Deliveries {
    store: DeliveryStore,
}

impl Deliveries {
    /// The service over `store`.
    pub fn new(store: DeliveryStore) -> Self {
        Self { store }
    }
}

type Reply<T> = Result<Response<T>, Status>;
/// What a handler answers before the trait edge turns its error into a status.
type Answer<T> = Result<Response<T>, DeliveryError>;

/// The wire form of a stored delivery.
fn delivery(record: DeliveryRecord) -> Delivery {
    let status = match record.status {
        store::Status::Scheduled => DeliveryStatus::Scheduled,
        store::Status::Cancelled => DeliveryStatus::Cancelled,
    };
    Delivery {
        id: record.id,
        order_id: record.order_id,
        address: Some(record.address),
        status: status as i32,
        estimated_arrival_time: (record.eta > 0).then(|| timestamp(record.eta)),
        create_time: Some(timestamp(record.create_time)),
        update_time: Some(timestamp(record.update_time)),
    }
}

/// The handlers, in the service's own error type; [`DeliveryService`] turns it into a status
/// once.
impl Deliveries {
    async fn schedule_delivery(
        &self,
        request: Request<ScheduleDeliveryRequest>,
    ) -> Answer<ScheduleDeliveryResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let order_id = violations.text("order_id", required_text(&request.order_id, MAX_ID_CHARS));
        match &request.address {
            None => violations.add("address", "is required"),
            Some(address) => {
                for (field, problem) in orderly::validate::address(address) {
                    violations.add(format!("address.{field}"), problem);
                }
            }
        }
        let (Some(order_id), Some(address), true) =
            (order_id, request.address, violations.is_empty())
        else {
            return Err(DeliveryError::Invalid(violations));
        };
        let record = self.store.schedule(&order_id, &address).await?;
        tracing::info!(delivery_id = %record.id, %order_id, status = ?record.status, "schedule delivery");
        Ok(Response::new(ScheduleDeliveryResponse {
            delivery: Some(delivery(record)),
        }))
    }

    async fn cancel_delivery(
        &self,
        request: Request<CancelDeliveryRequest>,
    ) -> Answer<CancelDeliveryResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let order_id = violations.text("order_id", required_text(&request.order_id, MAX_ID_CHARS));
        let reason = violations.text("reason", text(&request.reason, MAX_REASON_CHARS));
        let (Some(order_id), Some(reason)) = (order_id, reason) else {
            return Err(DeliveryError::Invalid(violations));
        };
        let record = self.store.cancel(&order_id, &reason).await?;
        tracing::info!(delivery_id = %record.id, %order_id, "cancel delivery");
        Ok(Response::new(CancelDeliveryResponse {
            delivery: Some(delivery(record)),
        }))
    }

    async fn get_delivery(
        &self,
        request: Request<GetDeliveryRequest>,
    ) -> Answer<GetDeliveryResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let Some(id) = violations.text("id", required_text(&request.id, MAX_ID_CHARS)) else {
            return Err(DeliveryError::Invalid(violations));
        };
        match self.store.get(&id).await? {
            Some(record) => Ok(Response::new(GetDeliveryResponse {
                delivery: Some(delivery(record)),
            })),
            None => Err(DeliveryError::NotFound(id)),
        }
    }
}

#[tonic::async_trait]
impl DeliveryService for Deliveries {
    async fn schedule_delivery(
        &self,
        request: Request<ScheduleDeliveryRequest>,
    ) -> Reply<ScheduleDeliveryResponse> {
        Deliveries::schedule_delivery(self, request)
            .await
            .map_err(Status::from)
    }

    async fn cancel_delivery(
        &self,
        request: Request<CancelDeliveryRequest>,
    ) -> Reply<CancelDeliveryResponse> {
        Deliveries::cancel_delivery(self, request)
            .await
            .map_err(Status::from)
    }

    async fn get_delivery(
        &self,
        request: Request<GetDeliveryRequest>,
    ) -> Reply<GetDeliveryResponse> {
        Deliveries::get_delivery(self, request)
            .await
            .map_err(Status::from)
    }
}
