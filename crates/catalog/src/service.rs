//! The gRPC implementation of CatalogService: check the whole request, then make the store calls
//! whose conditions decide every race (see [`crate::store`]).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use orderly::catalog::v1::{
    AdjustStockRequest, AdjustStockResponse, BatchGetProductsRequest, BatchGetProductsResponse,
    CatalogService, CommitReservationRequest, CommitReservationResponse, CreateProductRequest,
    CreateProductResponse, GetProductRequest, GetProductResponse, ListProductsRequest,
    ListProductsResponse, Product, ReleaseReservationRequest, ReleaseReservationResponse,
    Reservation, ReservationStatus, ReserveStockRequest, ReserveStockResponse, StockLine,
    UpdateProductRequest, UpdateProductResponse,
};
use orderly::common::v1::Money as MoneyMessage;
use orderly::money::{Money, MoneyError};
use orderly::validate::limits::{
    DEFAULT_PAGE_SIZE, DESCRIPTION_CHARS, KEY_CHARS, MAX_ITEMS, MAX_PAGE_SIZE, MAX_STOCK,
    MAX_UNIT_PRICE_MINOR, PRODUCT_NAME_CHARS, QUERY_CHARS, REASON_CHARS,
};
use orderly::validate::{required_text, text};
use orderly_kit::pagination::{PageTokens, page_size};
use orderly_kit::status::FieldViolations;
use orderly_kit::time::{now_micros, timestamp};
use tonic::{Request, Response, Status};

use crate::error::CatalogError;
use crate::store::{
    Adjusted, CatalogStore, Committed, NewProduct, ProductChange, ProductRecord, ReservationRecord,
    ReservationState, Reserved,
};

/// How long a reservation holds its stock when the request names no time.
pub const DEFAULT_RESERVATION_TTL: Duration = Duration::from_secs(600);
/// The longest a reservation may hold its stock.
pub const MAX_RESERVATION_TTL: Duration = Duration::from_secs(24 * 3600);
/// The scope page tokens of ListProducts are sealed with.
const LIST_SCOPE: &str = "orderly.catalog.v1.ListProducts";

/// CatalogService over a [`CatalogStore`].
#[derive(Debug, Clone)]
pub struct Catalog {
    store: CatalogStore,
    tokens: PageTokens,
}

impl Catalog {
    /// The service over `store`, sealing page tokens with `tokens`.
    pub fn new(store: CatalogStore, tokens: PageTokens) -> Self {
        Self { store, tokens }
    }
}

type Reply<T> = Result<Response<T>, Status>;
/// What a handler answers before the trait edge turns its error into a status.
type Answer<T> = Result<Response<T>, CatalogError>;

/// The wire form of a stored product.
pub fn product(record: ProductRecord) -> Product {
    Product {
        price: Some(MoneyMessage {
            currency_code: record.currency,
            amount_minor: record.price,
        }),
        sku: record.sku,
        name: record.name,
        description: record.description,
        stock_on_hand: record.on_hand,
        stock_reserved: record.reserved,
        stock_sold: record.sold,
        create_time: Some(timestamp(record.create_time)),
        update_time: Some(timestamp(record.update_time)),
    }
}

/// The wire form of a stored reservation.
fn reservation(record: ReservationRecord) -> Reservation {
    let status = match record.state {
        ReservationState::Reserved => ReservationStatus::Reserved,
        ReservationState::Committed => ReservationStatus::Committed,
        ReservationState::Released => ReservationStatus::Released,
    };
    Reservation {
        order_id: record.order_id,
        lines: record
            .lines
            .into_iter()
            .map(|line| StockLine {
                sku: line.sku,
                quantity: line.quantity,
                unit_price: line
                    .unit_price
                    .map(|(currency_code, amount_minor)| MoneyMessage {
                        currency_code,
                        amount_minor,
                    }),
            })
            .collect(),
        status: status as i32,
        expire_time: Some(timestamp(record.expire_time)),
        create_time: Some(timestamp(record.create_time)),
        update_time: Some(timestamp(record.update_time)),
    }
}

fn sku(violations: &mut FieldViolations, field: &str, raw: &str) -> Option<String> {
    violations.text(field, orderly::validate::sku(raw))
}

/// Checks a price: present, a currency code, from one minor unit up to the largest unit price.
fn price(
    violations: &mut FieldViolations,
    field: &str,
    money: Option<&MoneyMessage>,
) -> Option<Money> {
    let Some(money) = money else {
        violations.add(field, "is required");
        return None;
    };
    match Money::parse_positive(&money.currency_code, money.amount_minor) {
        Ok(money) if money.minor() <= MAX_UNIT_PRICE_MINOR => Some(money),
        Ok(_) => {
            violations.add(
                format!("{field}.amount_minor"),
                format!("must be at most {MAX_UNIT_PRICE_MINOR}"),
            );
            None
        }
        Err(error @ MoneyError::BadCurrency) => {
            violations.add(format!("{field}.currency_code"), error.to_string());
            None
        }
        Err(error) => {
            violations.add(format!("{field}.amount_minor"), error.to_string());
            None
        }
    }
}

/// A reservation's time to live: unset or zero means the default; negative or over the maximum is
/// refused.
fn ttl(violations: &mut FieldViolations, raw: Option<prost_types::Duration>) -> Option<Duration> {
    let Some(raw) = raw else {
        return Some(DEFAULT_RESERVATION_TTL);
    };
    match Duration::try_from(raw) {
        Ok(ttl) if ttl.is_zero() => Some(DEFAULT_RESERVATION_TTL),
        Ok(ttl) if ttl <= MAX_RESERVATION_TTL => Some(ttl),
        _ => {
            violations.add(
                "ttl",
                format!(
                    "must be between 0 and {} seconds",
                    MAX_RESERVATION_TTL.as_secs()
                ),
            );
            None
        }
    }
}

/// The lines of a reservation, checked, in SKU order.
fn stock_lines(violations: &mut FieldViolations, lines: &[StockLine]) -> Vec<(String, i64)> {
    if lines.is_empty() || lines.len() > MAX_ITEMS {
        violations.add("lines", format!("must hold 1 to {MAX_ITEMS} lines"));
        return Vec::new();
    }
    let mut seen = HashSet::with_capacity(lines.len());
    let mut checked = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let sku = sku(violations, &format!("lines[{index}].sku"), &line.sku);
        if !(1..=MAX_STOCK).contains(&line.quantity) {
            violations.add(
                format!("lines[{index}].quantity"),
                format!("must be from 1 to {MAX_STOCK}"),
            );
        }
        if let Some(sku) = sku {
            if !seen.insert(sku.clone()) {
                violations.add(format!("lines[{index}].sku"), "appears in an earlier line");
            }
            checked.push((sku, line.quantity));
        }
    }
    checked.sort();
    checked
}

/// The handlers, in the service's own error type; [`CatalogService`] turns it into a status once.
impl Catalog {
    async fn get_product(&self, request: Request<GetProductRequest>) -> Answer<GetProductResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let Some(sku) = sku(&mut violations, "sku", &request.sku) else {
            return Err(CatalogError::Invalid(violations));
        };
        match self.store.get(&sku).await? {
            Some(record) => Ok(Response::new(GetProductResponse {
                product: Some(product(record)),
            })),
            None => Err(CatalogError::ProductNotFound(vec![sku])),
        }
    }

    async fn list_products(
        &self,
        request: Request<ListProductsRequest>,
    ) -> Answer<ListProductsResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let size = violations.check(
            "page_size",
            page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        );
        let query = violations
            .text("query", text(&request.query, QUERY_CHARS))
            .map(|query| query.to_lowercase());
        // A token holds the query it was made for and the last SKU of its page.
        let after = match (&query, request.page_token.is_empty()) {
            (_, true) => Some(None),
            (None, false) => None,
            (Some(query), false) => violations
                .check(
                    "page_token",
                    self.tokens.open(LIST_SCOPE, &request.page_token),
                )
                .and_then(|cursor| {
                    let cursor = String::from_utf8_lossy(&cursor).into_owned();
                    match cursor.split_once('\0') {
                        Some((made_for, sku)) if made_for == query => Some(Some(sku.to_owned())),
                        _ => {
                            violations.add("page_token", "was made for another query");
                            None
                        }
                    }
                }),
        };
        let (Some(size), Some(query), Some(after)) = (size, query, after) else {
            return Err(CatalogError::Invalid(violations));
        };
        // One more than the page tells whether another page follows.
        let mut records = self.store.list(&query, after.as_deref(), size + 1).await?;
        let next_page_token = if records.len() > size as usize {
            records.truncate(size as usize);
            records
                .last()
                .map(|last| {
                    let cursor = format!("{query}\0{}", last.sku);
                    self.tokens.seal(LIST_SCOPE, cursor.as_bytes())
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListProductsResponse {
            products: records.into_iter().map(product).collect(),
            next_page_token,
        }))
    }

    async fn batch_get_products(
        &self,
        request: Request<BatchGetProductsRequest>,
    ) -> Answer<BatchGetProductsResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        // As many as an order has lines: a small read, which the shedder counts as cheap.
        if request.skus.len() > MAX_ITEMS {
            violations.add(
                "skus",
                format!("at most {MAX_ITEMS} SKUs, got {}", request.skus.len()),
            );
            return Err(CatalogError::Invalid(violations));
        }
        let mut skus = Vec::with_capacity(request.skus.len());
        let mut seen = HashSet::with_capacity(request.skus.len());
        for (index, raw) in request.skus.iter().enumerate() {
            if let Some(sku) = sku(&mut violations, &format!("skus[{index}]"), raw)
                && seen.insert(sku.clone())
            {
                skus.push(sku);
            }
        }
        if !violations.is_empty() {
            return Err(CatalogError::Invalid(violations));
        }
        let mut found: HashMap<String, ProductRecord> = self
            .store
            .batch_get(&skus)
            .await?
            .into_iter()
            .map(|record| (record.sku.clone(), record))
            .collect();
        let mut response = BatchGetProductsResponse::default();
        for sku in skus {
            match found.remove(&sku) {
                Some(record) => response.products.push(product(record)),
                None => response.missing_skus.push(sku),
            }
        }
        Ok(Response::new(response))
    }

    async fn create_product(
        &self,
        request: Request<CreateProductRequest>,
    ) -> Answer<CreateProductResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let Some(new) = request.product else {
            violations.add("product", "is required");
            return Err(CatalogError::Invalid(violations));
        };
        let sku = sku(&mut violations, "product.sku", &new.sku);
        let name = violations.text("product.name", required_text(&new.name, PRODUCT_NAME_CHARS));
        let description = violations.text(
            "product.description",
            text(&new.description, DESCRIPTION_CHARS),
        );
        let price = price(&mut violations, "product.price", new.price.as_ref());
        if !(0..=MAX_STOCK).contains(&new.stock_on_hand) {
            violations.add(
                "product.stock_on_hand",
                format!("must be from 0 to {MAX_STOCK}"),
            );
        }
        for (field, value) in [
            ("product.stock_reserved", new.stock_reserved),
            ("product.stock_sold", new.stock_sold),
        ] {
            if value != 0 {
                violations.add(
                    field,
                    "must be 0: a new product has nothing reserved or sold",
                );
            }
        }
        let (Some(sku), Some(name), Some(description), Some(price), true) =
            (sku, name, description, price, violations.is_empty())
        else {
            return Err(CatalogError::Invalid(violations));
        };
        let new = NewProduct {
            sku,
            name,
            description,
            price,
            on_hand: new.stock_on_hand,
        };
        match self.store.create(&new).await? {
            Some(record) => {
                tracing::info!(sku = %record.sku, "product created");
                Ok(Response::new(CreateProductResponse {
                    product: Some(product(record)),
                }))
            }
            None => Err(CatalogError::SkuTaken(new.sku)),
        }
    }

    async fn update_product(
        &self,
        request: Request<UpdateProductRequest>,
    ) -> Answer<UpdateProductResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let Some(new) = request.product else {
            violations.add("product", "is required");
            return Err(CatalogError::Invalid(violations));
        };
        let sku = sku(&mut violations, "product.sku", &new.sku);
        let mut paths = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        if paths.is_empty() {
            // AIP-134: no mask means every mutable field.
            paths = vec!["name".into(), "description".into(), "price".into()];
        }
        let mut change = ProductChange::default();
        for (index, path) in paths.iter().enumerate() {
            match path.as_str() {
                "name" => {
                    change.name = violations.text(
                        "product.name",
                        required_text(&new.name, PRODUCT_NAME_CHARS),
                    );
                }
                "description" => {
                    change.description = violations.text(
                        "product.description",
                        text(&new.description, DESCRIPTION_CHARS),
                    );
                }
                "price" => change.price = price(&mut violations, "product.price", new.price.as_ref()),
                other => violations.add(
                    format!("update_mask.paths[{index}]"),
                    format!(
                        "{other:?} is not a field that can be updated (name, description, price; stock changes by AdjustStock)"
                    ),
                ),
            }
        }
        let Some(sku) = sku.filter(|_| violations.is_empty()) else {
            return Err(CatalogError::Invalid(violations));
        };
        match self.store.update(&sku, &change).await? {
            Some(record) => Ok(Response::new(UpdateProductResponse {
                product: Some(product(record)),
            })),
            None => Err(CatalogError::ProductNotFound(vec![sku])),
        }
    }

    async fn adjust_stock(
        &self,
        request: Request<AdjustStockRequest>,
    ) -> Answer<AdjustStockResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let sku = sku(&mut violations, "sku", &request.sku);
        if request.delta == 0 || request.delta.unsigned_abs() > MAX_STOCK.unsigned_abs() {
            violations.add(
                "delta",
                format!("must be from -{MAX_STOCK} to {MAX_STOCK}, and not 0"),
            );
        }
        let key = violations.text(
            "idempotency_key",
            required_text(&request.idempotency_key, KEY_CHARS),
        );
        let reason = violations.text("reason", text(&request.reason, REASON_CHARS));
        let (Some(sku), Some(key), Some(reason), true) = (sku, key, reason, violations.is_empty())
        else {
            return Err(CatalogError::Invalid(violations));
        };
        match self
            .store
            .adjust(&sku, request.delta, &key, &reason)
            .await?
        {
            Adjusted::Done(record) => {
                tracing::info!(%sku, delta = request.delta, reason, "stock adjusted");
                Ok(Response::new(AdjustStockResponse {
                    product: Some(product(record)),
                }))
            }
            Adjusted::KeyReused => Err(CatalogError::KeyReused(key)),
            Adjusted::Short => Err(CatalogError::OutOfStock(vec![sku])),
            Adjusted::Missing => Err(CatalogError::ProductNotFound(vec![sku])),
        }
    }

    async fn reserve_stock(
        &self,
        request: Request<ReserveStockRequest>,
    ) -> Answer<ReserveStockResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let order_id = violations.text("order_id", required_text(&request.order_id, KEY_CHARS));
        let lines = stock_lines(&mut violations, &request.lines);
        let ttl = ttl(&mut violations, request.ttl);
        let (Some(order_id), Some(ttl), true) = (order_id, ttl, violations.is_empty()) else {
            return Err(CatalogError::Invalid(violations));
        };
        let expire_time =
            now_micros().saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX));
        let record = match self.store.reserve(&order_id, &lines, expire_time).await? {
            Reserved::New(record) => {
                tracing::info!(%order_id, lines = record.lines.len(), "stock reserved");
                record
            }
            // A release that came first answers every later attempt: the caller gave up on it.
            Reserved::Existing(record) if record.state == ReservationState::Released => record,
            Reserved::Existing(record) if !record.holds(&lines) => {
                return Err(CatalogError::KeyReused(order_id));
            }
            Reserved::Existing(record) => record,
            Reserved::Short(skus) => return Err(CatalogError::OutOfStock(skus)),
            Reserved::Unknown(skus) => return Err(CatalogError::ProductNotFound(skus)),
        };
        Ok(Response::new(ReserveStockResponse {
            reservation: Some(reservation(record)),
        }))
    }

    async fn commit_reservation(
        &self,
        request: Request<CommitReservationRequest>,
    ) -> Answer<CommitReservationResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let Some(order_id) =
            violations.text("order_id", required_text(&request.order_id, KEY_CHARS))
        else {
            return Err(CatalogError::Invalid(violations));
        };
        match self.store.commit(&order_id).await? {
            Committed::Done(record) => Ok(Response::new(CommitReservationResponse {
                reservation: Some(reservation(record)),
            })),
            Committed::Released => Err(CatalogError::ReservationReleased(order_id)),
            Committed::Missing => Err(CatalogError::ReservationNotFound(order_id)),
        }
    }

    async fn release_reservation(
        &self,
        request: Request<ReleaseReservationRequest>,
    ) -> Answer<ReleaseReservationResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let order_id = violations.text("order_id", required_text(&request.order_id, KEY_CHARS));
        let reason = violations.text("reason", text(&request.reason, REASON_CHARS));
        let (Some(order_id), Some(reason)) = (order_id, reason) else {
            return Err(CatalogError::Invalid(violations));
        };
        let record = self.store.release(&order_id, &reason).await?;
        Ok(Response::new(ReleaseReservationResponse {
            reservation: Some(reservation(record)),
        }))
    }
}

#[tonic::async_trait]
impl CatalogService for Catalog {
    async fn get_product(&self, request: Request<GetProductRequest>) -> Reply<GetProductResponse> {
        Catalog::get_product(self, request)
            .await
            .map_err(Status::from)
    }

    async fn list_products(
        &self,
        request: Request<ListProductsRequest>,
    ) -> Reply<ListProductsResponse> {
        Catalog::list_products(self, request)
            .await
            .map_err(Status::from)
    }

    async fn batch_get_products(
        &self,
        request: Request<BatchGetProductsRequest>,
    ) -> Reply<BatchGetProductsResponse> {
        Catalog::batch_get_products(self, request)
            .await
            .map_err(Status::from)
    }

    async fn create_product(
        &self,
        request: Request<CreateProductRequest>,
    ) -> Reply<CreateProductResponse> {
        Catalog::create_product(self, request)
            .await
            .map_err(Status::from)
    }

    async fn update_product(
        &self,
        request: Request<UpdateProductRequest>,
    ) -> Reply<UpdateProductResponse> {
        Catalog::update_product(self, request)
            .await
            .map_err(Status::from)
    }

    async fn adjust_stock(
        &self,
        request: Request<AdjustStockRequest>,
    ) -> Reply<AdjustStockResponse> {
        Catalog::adjust_stock(self, request)
            .await
            .map_err(Status::from)
    }

    async fn reserve_stock(
        &self,
        request: Request<ReserveStockRequest>,
    ) -> Reply<ReserveStockResponse> {
        Catalog::reserve_stock(self, request)
            .await
            .map_err(Status::from)
    }

    async fn commit_reservation(
        &self,
        request: Request<CommitReservationRequest>,
    ) -> Reply<CommitReservationResponse> {
        Catalog::commit_reservation(self, request)
            .await
            .map_err(Status::from)
    }

    async fn release_reservation(
        &self,
        request: Request<ReleaseReservationRequest>,
    ) -> Reply<ReleaseReservationResponse> {
        Catalog::release_reservation(self, request)
            .await
            .map_err(Status::from)
    }
}
