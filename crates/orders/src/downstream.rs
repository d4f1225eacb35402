//! The three services an order needs, each a kit [`Downstream`]: shared channel, deadline on every
//! call, retries within a budget, and a circuit breaker. The keys sent make every call safe to
//! repeat, so all of them may be retried: the charge is keyed by the order id, its refund by
//! `refund:` and the order id, and a delivery is unique per order.

use orderly::delivery::v1::{
    CancelDeliveryRequest, Delivery, DeliveryServiceClient, ScheduleDeliveryRequest,
    delivery_service_methods,
};
use orderly::payments::v1::refund_request::Target;
use orderly::payments::v1::{
    ChargeRequest, Payment, PaymentServiceClient, RefundRequest, payment_service_methods,
};
use orderly::users::v1::{GetUserRequest, UserServiceClient, user_service_methods};
use orderly_kit::auth::OnBehalf;
use orderly_kit::client::ClientError;
use orderly_kit::client::breaker::Permit;
use orderly_kit::client::deadline::Deadline;
use orderly_kit::client::downstream::{Downstream, DownstreamConfig, Safety};
use orderly_kit::status::present;
use tonic::{Code, Status};

use crate::model::OrderRecord;

/// Where the downstream services listen: each one URL, a comma-separated list, or `dns://host:port`.
#[derive(Debug, Clone)]
pub struct DownstreamUrls {
    /// UserService, e.g. `http://127.0.0.1:50051`.
    pub users: String,
    /// PaymentService.
    pub payments: String,
    /// DeliveryService.
    pub delivery: String,
}

/// The downstream services of OrderService.
#[derive(Debug, Clone)]
pub struct Downstreams {
    users: Downstream,
    payments: Downstream,
    delivery: Downstream,
}

/// The breakers' leave for one order's charge and delivery (see [`Downstreams::admit_fanout`]).
#[derive(Debug)]
pub struct FanoutPermits {
    charge: Permit,
    schedule: Permit,
}

impl FanoutPermits {
    /// The charge's permit and the delivery's.
    pub fn split(self) -> (Permit, Permit) {
        (self.charge, self.schedule)
    }
}

/// The idempotency key of an order's refund: one per order, whether it compensates or cancels.
pub fn refund_key(order_id: &str) -> String {
    format!("refund:{order_id}")
}

impl Downstreams {
    /// Clients of the services at `urls`; they connect on first use.
    pub fn new(urls: &DownstreamUrls, config: &DownstreamConfig) -> Result<Self, ClientError> {
        Ok(Self {
            users: Downstream::new("users", &urls.users, config)?
                .declare(user_service_methods::SERVICE, user_service_methods::ALL),
            payments: Downstream::new("payments", &urls.payments, config)?.declare(
                payment_service_methods::SERVICE,
                payment_service_methods::ALL,
            ),
            delivery: Downstream::new("delivery", &urls.delivery, config)?.declare(
                delivery_service_methods::SERVICE,
                delivery_service_methods::ALL,
            ),
        })
    }

    /// Leave to charge and schedule one order, taken before the order is stored: while either
    /// breaker is open (or its probes are taken) the order would only be compensated, so it is
    /// refused up front, and the name of that downstream is the error.
    pub fn admit_fanout(&self) -> Result<FanoutPermits, &'static str> {
        let charge = self
            .payments
            .admit(payment_service_methods::CHARGE)
            .map_err(|_| self.payments.name())?;
        let schedule = self
            .delivery
            .admit(delivery_service_methods::SCHEDULE_DELIVERY)
            .map_err(|_| self.delivery.name())?;
        Ok(FanoutPermits { charge, schedule })
    }

    /// Whether the user exists, asked with the credentials of the caller it is asked for.
    pub async fn user_exists(
        &self,
        user_id: &str,
        on_behalf: &OnBehalf,
        deadline: Deadline,
    ) -> Result<bool, Status> {
        let request = GetUserRequest {
            id: user_id.to_owned(),
        };
        let found = self
            .users
            .unary(
                deadline,
                Safety::Idempotent,
                request,
                |channel, mut request| {
                    on_behalf.apply(&mut request);
                    async move {
                        UserServiceClient::new(channel)
                            .get_user(request)
                            .await
                            .map(drop)
                    }
                },
            )
            .await;
        match found {
            Ok(()) => Ok(true),
            Err(status) if status.code() == Code::NotFound => Ok(false),
            Err(status) => Err(status),
        }
    }

    /// Charges the order's total, keyed by the order id, under the permit taken at admission.
    pub async fn charge(
        &self,
        order: &OrderRecord,
        permit: Permit,
        deadline: Deadline,
    ) -> Result<Payment, Status> {
        let request = ChargeRequest {
            order_id: order.id.clone(),
            amount: Some(orderly::common::v1::Money {
                currency_code: order.currency.clone(),
                amount_minor: order.total,
            }),
            idempotency_key: order.id.clone(),
        };
        self.payments
            .unary_with(
                permit,
                deadline,
                Safety::Idempotent,
                request,
                |channel, request| async move {
                    let response = PaymentServiceClient::new(channel).charge(request).await?;
                    present(response.into_inner().payment, "payment")
                },
            )
            .await
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
        self.payments
            .unary(
                deadline,
                Safety::Idempotent,
                request,
                |channel, request| async move {
                    let response = PaymentServiceClient::new(channel).refund(request).await?;
                    present(response.into_inner().payment, "payment")
                },
            )
            .await
    }

    /// Schedules the order's delivery, under the permit taken at admission.
    pub async fn schedule(
        &self,
        order: &OrderRecord,
        permit: Permit,
        deadline: Deadline,
    ) -> Result<Delivery, Status> {
        let request = ScheduleDeliveryRequest {
            order_id: order.id.clone(),
            address: Some(order.address.clone()),
        };
        self.delivery
            .unary_with(
                permit,
                deadline,
                Safety::Idempotent,
                request,
                |channel, request| async move {
                    let response = DeliveryServiceClient::new(channel)
                        .schedule_delivery(request)
                        .await?;
                    present(response.into_inner().delivery, "delivery")
                },
            )
            .await
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
        self.delivery
            .unary(
                deadline,
                Safety::Idempotent,
                request,
                |channel, request| async move {
                    let response = DeliveryServiceClient::new(channel)
                        .cancel_delivery(request)
                        .await?;
                    present(response.into_inner().delivery, "delivery")
                },
            )
            .await
    }
}
