//! The three services an order needs, called over gRPC through shared channels. Every call carries
//! a deadline; the keys sent make each call safe to repeat: the charge is keyed by the order id,
//! its refund by `refund:` and the order id, and a delivery is unique per order.

use orderly::delivery::v1::{
    CancelDeliveryRequest, Delivery, DeliveryServiceClient, ScheduleDeliveryRequest,
};
use orderly::payments::v1::refund_request::Target;
use orderly::payments::v1::{ChargeRequest, Payment, PaymentServiceClient, RefundRequest};
use orderly::users::v1::{GetUserRequest, UserServiceClient};
use orderly_kit::client::{ClientConfig, ClientError, channel};
use orderly_kit::deadline::Deadline;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::model::OrderRecord;

/// Where the downstream services listen.
#[derive(Debug, Clone)]
pub struct DownstreamUrls {
    /// UserService, e.g. `http://127.0.0.1:50051`.
    pub users: String,
    /// PaymentService.
    pub payments: String,
    /// DeliveryService.
    pub delivery: String,
}

/// Typed clients of the downstream services, each over one shared channel.
#[derive(Debug, Clone)]
pub struct Downstreams {
    users: UserServiceClient<Channel>,
    payments: PaymentServiceClient<Channel>,
    delivery: DeliveryServiceClient<Channel>,
}

/// The idempotency key of an order's refund: one per order, whether it compensates or cancels.
pub fn refund_key(order_id: &str) -> String {
    format!("refund:{order_id}")
}

impl Downstreams {
    /// Clients of the services at `urls`; they connect on first use.
    pub fn new(urls: &DownstreamUrls, config: &ClientConfig) -> Result<Self, ClientError> {
        Ok(Self {
            users: UserServiceClient::new(channel(&urls.users, config)?),
            payments: PaymentServiceClient::new(channel(&urls.payments, config)?),
            delivery: DeliveryServiceClient::new(channel(&urls.delivery, config)?),
        })
    }

    /// Whether the user exists.
    pub async fn user_exists(&self, user_id: &str, deadline: Deadline) -> Result<bool, Status> {
        let request = deadline.bound(tonic::Request::new(GetUserRequest {
            id: user_id.to_owned(),
        }))?;
        match self.users.clone().get_user(request).await {
            Ok(_) => Ok(true),
            Err(status) if status.code() == Code::NotFound => Ok(false),
            Err(status) => Err(status),
        }
    }

    /// Charges the order's total, keyed by the order id.
    pub async fn charge(&self, order: &OrderRecord, deadline: Deadline) -> Result<Payment, Status> {
        let request = ChargeRequest {
            order_id: order.id.clone(),
            amount: Some(orderly::common::v1::Money {
                currency_code: order.currency.clone(),
                amount_minor: order.total,
            }),
            idempotency_key: order.id.clone(),
        };
        let response = self
            .payments
            .clone()
            .charge(deadline.bound(tonic::Request::new(request))?)
            .await?;
        response
            .into_inner()
            .payment
            .ok_or_else(|| Status::internal("payments answered without a payment"))
    }

    /// Refunds whatever the order's charge took (voiding it if it was never made).
    pub async fn refund(
        &self,
        order_id: &str,
        reason: &str,
        deadline: Deadline,
    ) -> Result<Payment, Status> {
        let request = RefundRequest {
            target: Some(Target::ChargeIdempotencyKey(order_id.to_owned())),
            amount: None,
            idempotency_key: refund_key(order_id),
            reason: reason.to_owned(),
        };
        let response = self
            .payments
            .clone()
            .refund(deadline.bound(tonic::Request::new(request))?)
            .await?;
        response
            .into_inner()
            .payment
            .ok_or_else(|| Status::internal("payments answered without a payment"))
    }

    /// Schedules the order's delivery.
    pub async fn schedule(
        &self,
        order: &OrderRecord,
        deadline: Deadline,
    ) -> Result<Delivery, Status> {
        let request = ScheduleDeliveryRequest {
            order_id: order.id.clone(),
            address: Some(order.address.clone()),
        };
        let response = self
            .delivery
            .clone()
            .schedule_delivery(deadline.bound(tonic::Request::new(request))?)
            .await?;
        response
            .into_inner()
            .delivery
            .ok_or_else(|| Status::internal("delivery answered without a delivery"))
    }

    /// Cancels the order's delivery (so that it is never scheduled, if it was not yet).
    pub async fn cancel_delivery(
        &self,
        order_id: &str,
        reason: &str,
        deadline: Deadline,
    ) -> Result<Delivery, Status> {
        let request = CancelDeliveryRequest {
            order_id: order_id.to_owned(),
            reason: reason.to_owned(),
        };
        let response = self
            .delivery
            .clone()
            .cancel_delivery(deadline.bound(tonic::Request::new(request))?)
            .await?;
        response
            .into_inner()
            .delivery
            .ok_or_else(|| Status::internal("delivery answered without a delivery"))
    }
}
