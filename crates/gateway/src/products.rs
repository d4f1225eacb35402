//! `/v1/products`: CatalogService over REST. Anyone may browse the catalog (no token needed);
//! creating, changing and restocking products is for admins (the catalog's rules).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use orderly::catalog::v1::{
    AdjustStockRequest, CatalogServiceClient, CreateProductRequest, GetProductRequest,
    ListProductsRequest, UpdateProductRequest,
};
use orderly_kit::client::downstream::Safety;
use orderly_kit::status::present;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::custom_method;
use crate::body::JsonBody;
use crate::json::{NewProduct, Product, ProductPage, ProductPatch, StockAdjustment};
use crate::orders::{idempotency_key, idempotency_key_field};
use crate::problem::Problem;
use crate::state::{Forward, Gateway};

/// The query of `GET /v1/products`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, default)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only products whose SKU, name or description contains this text, ignoring case.
    pub query: String,
    /// The most products to return (default 50, at most 1000).
    #[serde(alias = "pageSize")]
    pub page_size: i32,
    /// The `nextPageToken` of the previous page (of the same query): sealed by the server (only
    /// tokens it issued, unchanged, are accepted); empty for the first page.
    #[serde(alias = "pageToken")]
    #[param(pattern = r"^([A-Za-z0-9_-]{43,})?$")]
    pub page_token: String,
}

/// The query of `PATCH /v1/products/{sku}`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, default)]
#[into_params(parameter_in = Query)]
pub struct PatchQuery {
    /// Comma-separated fields to change (`name`, `description`, `price`); by default, the fields
    /// in the body.
    #[serde(rename = "updateMask", alias = "update_mask")]
    pub update_mask: Option<String>,
}

/// Lists products in SKU order, a page at a time, optionally those matching a text.
#[utoipa::path(
    get, path = "/v1/products", tag = "products",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of products", body = ProductPage),
        (status = "4XX", description = "Invalid query, page size or token", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "A service failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_products(
    State(gateway): State<Arc<Gateway>>,
    forward: Forward,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ProductPage>, Problem> {
    let Query(query) = query?;
    let message = ListProductsRequest {
        page_size: query.page_size,
        page_token: query.page_token,
        query: query.query,
    };
    let reply = gateway
        .call(
            &gateway.catalog,
            Safety::Idempotent,
            forward,
            message,
            |channel, request| async move {
                CatalogServiceClient::new(channel)
                    .list_products(request)
                    .await
            },
        )
        .await?;
    Ok(Json(ProductPage {
        products: reply.products.into_iter().map(Product::from).collect(),
        next_page_token: reply.next_page_token,
    }))
}

/// Gets a product.
#[utoipa::path(
    get, path = "/v1/products/{sku}", tag = "products",
    params(("sku" = String, Path, description = "The product's SKU")),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = "4XX", description = "Invalid SKU, or no such product", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "A service failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_product(
    State(gateway): State<Arc<Gateway>>,
    forward: Forward,
    sku: Result<Path<String>, PathRejection>,
) -> Result<Json<Product>, Problem> {
    let Path(sku) = sku?;
    let reply = gateway
        .call(
            &gateway.catalog,
            Safety::Idempotent,
            forward,
            GetProductRequest { sku },
            |channel, request| async move {
                CatalogServiceClient::new(channel)
                    .get_product(request)
                    .await
            },
        )
        .await?;
    Ok(Json(Product::from(present(reply.product, "product")?)))
}

/// Adds a product to the catalog (admins only).
#[utoipa::path(
    post, path = "/v1/products", tag = "products",
    request_body = NewProduct,
    responses(
        (status = 201, description = "The product, created", body = Product,
            headers(("location" = String, description = "The product's URL"))),
        (status = "4XX", description = "Invalid product, or its SKU is taken", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "A service failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_product(
    State(gateway): State<Arc<Gateway>>,
    forward: Forward,
    JsonBody(body): JsonBody<NewProduct>,
) -> Result<impl IntoResponse, Problem> {
    let message = CreateProductRequest {
        product: Some(orderly::catalog::v1::Product {
            sku: body.sku,
            name: body.name,
            description: body.description,
            price: body.price.map(Into::into),
            stock_on_hand: body.stock_on_hand,
            ..Default::default()
        }),
    };
    let reply = gateway
        .call(
            &gateway.catalog,
            Safety::NotIdempotent,
            forward,
            message,
            |channel, request| async move {
                CatalogServiceClient::new(channel)
                    .create_product(request)
                    .await
            },
        )
        .await?;
    let product = Product::from(present(reply.product, "product")?);
    let location = format!("/v1/products/{}", product.sku);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(product),
    ))
}

/// Changes a product's name, description or price (admins only).
#[utoipa::path(
    patch, path = "/v1/products/{sku}", tag = "products",
    params(("sku" = String, Path, description = "The product's SKU"), PatchQuery),
    request_body = ProductPatch,
    responses(
        (status = 200, description = "The product, changed", body = Product),
        (status = "4XX", description = "Invalid change, or no such product", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "A service failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_product(
    State(gateway): State<Arc<Gateway>>,
    forward: Forward,
    sku: Result<Path<String>, PathRejection>,
    query: Result<Query<PatchQuery>, QueryRejection>,
    JsonBody(patch): JsonBody<ProductPatch>,
) -> Result<Json<Product>, Problem> {
    let Path(sku) = sku?;
    let Query(query) = query?;
    let paths = crate::body::update_paths(
        query.update_mask.as_deref(),
        &[
            ("name", patch.name.is_some()),
            ("description", patch.description.is_some()),
            ("price", patch.price.is_some()),
        ],
    )?;
    let message = UpdateProductRequest {
        product: Some(orderly::catalog::v1::Product {
            sku,
            name: patch.name.unwrap_or_default(),
            description: patch.description.unwrap_or_default(),
            price: patch.price.map(Into::into),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths }),
    };
    let reply = gateway
        .call(
            &gateway.catalog,
            Safety::NotIdempotent,
            forward,
            message,
            |channel, request| async move {
                CatalogServiceClient::new(channel)
                    .update_product(request)
                    .await
            },
        )
        .await?;
    Ok(Json(Product::from(present(reply.product, "product")?)))
}

/// Adds units to a product's stock or takes them away (admins only), once per `Idempotency-Key`.
#[utoipa::path(
    post, path = "/v1/products/{sku}:adjustStock", tag = "products",
    params(
        ("sku" = String, Path, description = "The product's SKU"),
        ("Idempotency-Key" = String, Header, description = "A key unique to this adjustment; a retry with it adjusts once"),
    ),
    request_body = StockAdjustment,
    responses(
        (status = 200, description = "The product after the adjustment", body = Product),
        (status = 422, description = "The key made another adjustment before (reason IDEMPOTENCY_KEY_REUSED)", body = Problem, content_type = "application/problem+json"),
        (status = "4XX", description = "Invalid adjustment, no such product, or not enough stock to take away", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "A service failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn adjust_stock(
    State(gateway): State<Arc<Gateway>>,
    forward: Forward,
    headers: HeaderMap,
    segment: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<StockAdjustment>,
) -> Result<Json<Product>, Problem> {
    let Path(segment) = segment?;
    let Some(sku) = custom_method(&segment, "adjustStock") else {
        return Err(Problem::no_route(&format!("POST /v1/products/{segment}")));
    };
    let key = idempotency_key(&headers)?;
    let message = AdjustStockRequest {
        sku: sku.to_owned(),
        delta: body.delta,
        idempotency_key: key,
        reason: body.reason,
    };
    let reply = gateway
        .call(
            &gateway.catalog,
            Safety::Idempotent,
            forward,
            message,
            |channel, request| async move {
                CatalogServiceClient::new(channel)
                    .adjust_stock(request)
                    .await
            },
        )
        .await
        .map_err(idempotency_key_field)?;
    Ok(Json(Product::from(present(reply.product, "product")?)))
}
