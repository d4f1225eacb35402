//! `/v1/users`: UserService over REST.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use orderly::users::v1::{
    CreateUserRequest, DeleteUserRequest, GetUserRequest, ListUsersRequest, UpdateUserRequest,
    UserServiceClient,
};
use orderly_kit::client::downstream::Safety;
use orderly_kit::status::present;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::body::JsonBody;
use crate::json::{NewUser, User, UserPage, UserPatch};
use crate::problem::Problem;
use crate::state::{Forward, Gateway};

/// The query of `GET /v1/users`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, default)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The most users to return (default 50, at most 1000).
    #[serde(alias = "pageSize")]
    pub page_size: i32,
    /// The `nextPageToken` of the previous page: sealed by the server (only
    /// tokens it issued, unchanged, are accepted); empty for the first page.
    #[serde(alias = "pageToken")]
    #[param(pattern = r"^([A-Za-z0-9_-]{43,})?$")]
    pub page_token: String,
}

/// The query of `PATCH /v1/users/{id}`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, default)]
#[into_params(parameter_in = Query)]
pub struct PatchQuery {
    /// Comma-separated fields to change (`name`, `email`); by default, the fields in the body.
    #[serde(rename = "updateMask", alias = "update_mask")]
    pub update_mask: Option<String>,
}

/// Creates a user.
#[utoipa::path(
    post, path = "/v1/users", tag = "users",
    request_body = NewUser,
    responses(
        (status = 201, description = "The user, created", body = User,
            headers(("location" = String, description = "The user's URL"))),
        (status = "4XX", description = "Invalid or conflicting request", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "A service failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_user(
    State(gateway): State<Arc<Gateway>>,
    forward: Forward,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<impl IntoResponse, Problem> {
    let message = CreateUserRequest {
        name: body.name,
        email: body.email,
    };
    let reply =
        gateway
            .call(
                &gateway.users,
                Safety::NotIdempotent,
                forward,
                message,
                |channel, request| async move {
                    UserServiceClient::new(channel).create_user(request).await
                },
            )
            .await?;
    let user = User::from(present(reply.user, "user")?);
    let location = format!("/v1/users/{}", user.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(user),
    ))
}

/// Gets a user.
#[utoipa::path(
    get, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = "4XX", description = "Invalid id, or no such user", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "A service failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_user(
    State(gateway): State<Arc<Gateway>>,
    forward: Forward,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<User>, Problem> {
    let Path(id) = id?;
    let reply =
        gateway
            .call(
                &gateway.users,
                Safety::Idempotent,
                forward,
                GetUserRequest { id },
                |channel, request| async move {
                    UserServiceClient::new(channel).get_user(request).await
                },
            )
            .await?;
    Ok(Json(User::from(present(reply.user, "user")?)))
}

/// Changes a user's name or email.
#[utoipa::path(
    patch, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "The user's id"), PatchQuery),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user, changed", body = User),
        (status = "4XX", description = "Invalid or conflicting change, or no such user", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "A service failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_user(
    State(gateway): State<Arc<Gateway>>,
    forward: Forward,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<PatchQuery>, QueryRejection>,
    JsonBody(patch): JsonBody<UserPatch>,
) -> Result<Json<User>, Problem> {
    let Path(id) = id?;
    let Query(query) = query?;
    let paths = crate::body::update_paths(
        query.update_mask.as_deref(),
        &[
            ("name", patch.name.is_some()),
            ("email", patch.email.is_some()),
        ],
    )?;
    let message = UpdateUserRequest {
        user: Some(orderly::users::v1::User {
            id,
            name: patch.name.unwrap_or_default(),
            email: patch.email.unwrap_or_default(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths }),
    };
    let reply =
        gateway
            .call(
                &gateway.users,
                Safety::NotIdempotent,
                forward,
                message,
                |channel, request| async move {
                    UserServiceClient::new(channel).update_user(request).await
                },
            )
            .await?;
    Ok(Json(User::from(present(reply.user, "user")?)))
}

/// Deletes a user.
#[utoipa::path(
    delete, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "The user is deleted"),
        (status = "4XX", description = "Invalid id, or no such user", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "A service failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_user(
    State(gateway): State<Arc<Gateway>>,
    forward: Forward,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, Problem> {
    let Path(id) = id?;
    gateway
        .call(
            &gateway.users,
            Safety::NotIdempotent,
            forward,
            DeleteUserRequest { id },
            |channel, request| async move { UserServiceClient::new(channel).delete_user(request).await },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists users, oldest first, a page at a time.
#[utoipa::path(
    get, path = "/v1/users", tag = "users",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        (status = "4XX", description = "Invalid page size or token", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", description = "A service failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_users(
    State(gateway): State<Arc<Gateway>>,
    forward: Forward,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<UserPage>, Problem> {
    let Query(query) = query?;
    let message = ListUsersRequest {
        page_size: query.page_size,
        page_token: query.page_token,
    };
    let reply =
        gateway
            .call(
                &gateway.users,
                Safety::Idempotent,
                forward,
                message,
                |channel, request| async move {
                    UserServiceClient::new(channel).list_users(request).await
                },
            )
            .await?;
    Ok(Json(UserPage {
        users: reply.users.into_iter().map(User::from).collect(),
        next_page_token: reply.next_page_token,
    }))
}
