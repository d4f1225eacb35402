//! The four services an order needs, each a kit [`Downstream`]: shared channel, deadline on every
//! call, retries within a budget, and a circuit breaker. The keys sent make every call safe to
//! repeat, so all of them may be retried: the stock reservation (its commit and its release) and
//! the charge are keyed by the order id, the refund by `refund:` and the order id, and a delivery
//! is unique per order.

use std::collections::HashMap;

use orderly::catalog::v1::{
    CatalogServiceClient, CommitReservationRequest, ReleaseReservationRequest, Reservation,
    ReserveStockRequest, StockLine, catalog_service_methods,
};
use orderly::money::Money;

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
    /// CatalogService.
    pub catalog: String,
}

/// The downstream services of OrderService.
#[derive(Debug, Clone)]
pub struct Downstreams {
    users: Downstream,
    payments: Downstream,
    delivery: Downstream,
    catalog: Downstream,
}

/// The breakers' leave for one order's stock reservation, charge and delivery (see
/// [`Downstreams::admit_fanout`]).
#[derive(Debug)]
pub struct FanoutPermits {
    /// The reservation's.
    pub reserve: Permit,
    /// The charge's.
    pub charge: Permit,
    /// The delivery's.
    pub schedule: Permit,
}

/// The unit price of each line of `reservation`, by SKU, as the catalog reserved it; a line
/// without a valid price is the catalog's error (INTERNAL), never taken as free.
pub fn reserved_prices(reservation: &Reservation) -> Result<HashMap<String, Money>, Status> {
    reservation
        .lines
        .iter()
        .map(|line| {
            line.unit_price
                .as_ref()
                .and_then(|p| Money::parse_positive(&p.currency_code, p.amount_minor).ok())
                .map(|price| (line.sku.clone(), price))
                .ok_or_else(|| {
                    Status::internal(format!(
                        "the catalog reserved {} with no valid price",
                        line.sku
                    ))
                })
        })
        .collect()
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
            catalog: Downstream::new("catalog", &urls.catalog, config)?.declare(
                catalog_service_methods::SERVICE,
                catalog_service_methods::ALL,
            ),
        })
    }

    /// Leave to reserve, charge and schedule one order, taken before anything is reserved or
    /// stored: while any of those breakers is open (or its probes are taken) the order would only
    /// be compensated, so it is refused up front, and the name of that downstream is the error.
    pub fn admit_fanout(&self) -> Result<FanoutPermits, &'static str> {
        let reserve = self
            .catalog
            .admit(catalog_service_methods::RESERVE_STOCK)
            .map_err(|_| self.catalog.name())?;
        let charge = self
            .payments
            .admit(payment_service_methods::CHARGE)
            .map_err(|_| self.payments.name())?;
        let schedule = self
            .delivery
            .admit(delivery_service_methods::SCHEDULE_DELIVERY)
            .map_err(|_| self.delivery.name())?;
        Ok(FanoutPermits {
            reserve,
            charge,
            schedule,
        })
    }

    /// Reserves the order's stock, keyed by its id, under the permit taken at admission, for the
    /// caller `on_behalf`.
    pub async fn reserve(
        &self,
        order_id: &str,
        lines: Vec<StockLine>,
        (permit, on_behalf): (Permit, &OnBehalf),
        deadline: Deadline,
    ) -> Result<Reservation, Status> {
        let request = ReserveStockRequest {
            order_id: order_id.to_owned(),
            lines,
            ttl: None,
        };
        self.catalog
            .unary_with(
                permit,
                deadline,
                Safety::Idempotent,
                request,
                |channel, mut request| {
                    on_behalf.apply(&mut request);
                    async move {
                        let response = CatalogServiceClient::new(channel)
                            .reserve_stock(request)
                            .await?;
                        present(response.into_inner().reservation, "reservation")
                    }
                },
            )
            .await
    }

    /// Turns the order's reservation into a sale.
    pub async fn commit_stock(
        &self,
        order_id: &str,
        deadline: Deadline,
    ) -> Result<Reservation, Status> {
        let request = CommitReservationRequest {
            order_id: order_id.to_owned(),
        };
        self.catalog
            .unary(
                deadline,
                Safety::Idempotent,
                request,
                |channel, request| async move {
                    let response = CatalogServiceClient::new(channel)
                        .commit_reservation(request)
                        .await?;
                    present(response.into_inner().reservation, "reservation")
                },
            )
            .await
    }

    /// Puts the order's stock back on hand, reserved or sold (and keeps a reservation still on
    /// its way from being made).
    pub async fn release_stock(
        &self,
        order_id: &str,
        reason: &str,
        deadline: Deadline,
    ) -> Result<Reservation, Status> {
        let request = ReleaseReservationRequest {
            order_id: order_id.to_owned(),
            reason: reason.to_owned(),
        };
        self.catalog
            .unary(
                deadline,
                Safety::Idempotent,
                request,
                |channel, request| async move {
                    let response = CatalogServiceClient::new(channel)
                        .release_reservation(request)
                        .await?;
                    present(response.into_inner().reservation, "reservation")
                },
            )
            .await
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

    /// Charges the order's total, keyed by the order id, under the permit taken at admission, for
    /// the caller `on_behalf`.
    pub async fn charge(
        &self,
        order: &OrderRecord,
        (permit, on_behalf): (Permit, &OnBehalf),
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
                |channel, mut request| {
                    on_behalf.apply(&mut request);
                    async move {
                        let response = PaymentServiceClient::new(channel).charge(request).await?;
                        present(response.into_inner().payment, "payment")
                    }
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

    /// Schedules the order's delivery, under the permit taken at admission, for the caller
    /// `on_behalf`.
    pub async fn schedule(
        &self,
        order: &OrderRecord,
        (permit, on_behalf): (Permit, &OnBehalf),
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
                |channel, mut request| {
                    on_behalf.apply(&mut request);
                    async move {
                        let response = DeliveryServiceClient::new(channel)
                            .schedule_delivery(request)
                            .await?;
                        present(response.into_inner().delivery, "delivery")
                    }
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
