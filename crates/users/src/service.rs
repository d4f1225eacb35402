//! The gRPC implementation of UserService: parse and validate the whole request, then make one
//! store call, then map the result. Invalid requests never reach the store.

use std::collections::{HashMap, HashSet};

use orderly::users::v1::{
    BatchGetUsersRequest, BatchGetUsersResponse, CreateUserRequest, CreateUserResponse,
    DeleteUserRequest, DeleteUserResponse, GetUserRequest, GetUserResponse, ListUsersRequest,
    ListUsersResponse, UpdateUserRequest, UpdateUserResponse, User, UserService,
};
use orderly_kit::auth::Caller;
use orderly_kit::pagination::{PageTokens, page_size};
use orderly_kit::status::FieldViolations;
use tonic::{Request, Response, Status};

use crate::error::UserError;
use crate::model::{Email, ModelError, UserId, UserName};
use crate::store::UserStore;

/// Page sizes of ListUsers: the default when the request names none, and the largest (larger
/// requests are coerced down, AIP-158).
pub use orderly::validate::limits::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
/// Most ids in one BatchGetUsers.
pub const MAX_BATCH: usize = 1000;
/// The scope page tokens of ListUsers are sealed with.
const LIST_SCOPE: &str = "orderly.users.v1.ListUsers";

/// UserService over a [`UserStore`].
#[derive(Debug, Clone)]
pub struct Users {
    store: UserStore,
    tokens: PageTokens,
}

impl Users {
    /// The service over `store`, sealing page tokens with `tokens`.
    pub fn new(store: UserStore, tokens: PageTokens) -> Self {
        Self { store, tokens }
    }
}

type Reply<T> = Result<Response<T>, Status>;
/// What a handler answers before the trait edge turns its error into a status.
type Answer<T> = Result<Response<T>, UserError>;

/// The id of a request, or a violation against `field`.
/// Allows the call on `id`'s record: the caller is that user or an admin (or the server does not
/// authenticate, and there is no caller).
fn owner(caller: Option<&Caller>, id: &UserId) -> Result<(), UserError> {
    match caller {
        Some(caller) => Ok(caller.may_act_for(&id.to_string())?),
        None => Ok(()),
    }
}

fn user_id(violations: &mut FieldViolations, field: &str, raw: &str) -> Option<UserId> {
    violations.check(field, UserId::parse(raw))
}

/// The handlers, in the service's own error type; [`UserService`] turns it into a status
/// once.
impl Users {
    async fn create_user(&self, request: Request<CreateUserRequest>) -> Answer<CreateUserResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let name = violations.check("name", UserName::parse(&request.name));
        let email = violations.check("email", Email::parse(&request.email));
        let (Some(name), Some(email)) = (name, email) else {
            return Err(UserError::Invalid(violations));
        };
        let record = self.store.insert(&name, &email).await?;
        Ok(Response::new(CreateUserResponse {
            user: Some(record.into()),
        }))
    }

    async fn get_user(&self, request: Request<GetUserRequest>) -> Answer<GetUserResponse> {
        let caller = Caller::of(&request).cloned();
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let Some(id) = user_id(&mut violations, "id", &request.id) else {
            return Err(UserError::Invalid(violations));
        };
        owner(caller.as_ref(), &id)?;
        match self.store.get(&id).await? {
            Some(record) => Ok(Response::new(GetUserResponse {
                user: Some(record.into()),
            })),
            None => Err(UserError::NotFound(id.to_string())),
        }
    }

    async fn update_user(&self, request: Request<UpdateUserRequest>) -> Answer<UpdateUserResponse> {
        let caller = Caller::of(&request).cloned();
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let Some(user) = request.user else {
            violations.add("user", ModelError::Missing.to_string());
            return Err(UserError::Invalid(violations));
        };
        let id = user_id(&mut violations, "user.id", &user.id);
        let mut paths = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        if paths.is_empty() {
            // AIP-134: no mask means every mutable field.
            paths = vec!["name".into(), "email".into()];
        }
        let (mut name, mut email) = (None, None);
        for (index, path) in paths.iter().enumerate() {
            match path.as_str() {
                "name" => name = violations.check("user.name", UserName::parse(&user.name)),
                "email" => email = violations.check("user.email", Email::parse(&user.email)),
                other => violations.add(
                    format!("update_mask.paths[{index}]"),
                    format!("{other:?} is not a field that can be updated (name, email)"),
                ),
            }
        }
        let Some(id) = id.filter(|_| violations.is_empty()) else {
            return Err(UserError::Invalid(violations));
        };
        owner(caller.as_ref(), &id)?;
        match self
            .store
            .update(&id, name.as_ref(), email.as_ref())
            .await?
        {
            Some(record) => Ok(Response::new(UpdateUserResponse {
                user: Some(record.into()),
            })),
            None => Err(UserError::NotFound(id.to_string())),
        }
    }

    async fn delete_user(&self, request: Request<DeleteUserRequest>) -> Answer<DeleteUserResponse> {
        let caller = Caller::of(&request).cloned();
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let Some(id) = user_id(&mut violations, "id", &request.id) else {
            return Err(UserError::Invalid(violations));
        };
        owner(caller.as_ref(), &id)?;
        if self.store.delete(&id).await? {
            Ok(Response::new(DeleteUserResponse {}))
        } else {
            Err(UserError::NotFound(id.to_string()))
        }
    }

    async fn list_users(&self, request: Request<ListUsersRequest>) -> Answer<ListUsersResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let size = violations.check(
            "page_size",
            page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        );
        let after = if request.page_token.is_empty() {
            Some(None)
        } else {
            violations
                .check(
                    "page_token",
                    self.tokens.open(LIST_SCOPE, &request.page_token),
                )
                .map(|cursor| Some(String::from_utf8_lossy(&cursor).into_owned()))
        };
        let (Some(size), Some(after)) = (size, after) else {
            return Err(UserError::Invalid(violations));
        };
        // One more than the page tells whether another page follows.
        let mut records = self.store.list(after.as_deref(), size + 1).await?;
        let next_page_token = if records.len() > size as usize {
            records.truncate(size as usize);
            records
                .last()
                .map(|last| self.tokens.seal(LIST_SCOPE, last.id.as_bytes()))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListUsersResponse {
            users: records.into_iter().map(User::from).collect(),
            next_page_token,
        }))
    }

    async fn batch_get_users(
        &self,
        request: Request<BatchGetUsersRequest>,
    ) -> Answer<BatchGetUsersResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        if request.ids.len() > MAX_BATCH {
            violations.add(
                "ids",
                format!("at most {MAX_BATCH} ids, got {}", request.ids.len()),
            );
            return Err(UserError::Invalid(violations));
        }
        let mut ids: Vec<UserId> = Vec::with_capacity(request.ids.len());
        let mut seen = HashSet::with_capacity(request.ids.len());
        for (index, raw) in request.ids.iter().enumerate() {
            if let Some(id) = user_id(&mut violations, &format!("ids[{index}]"), raw)
                && seen.insert(id)
            {
                ids.push(id);
            }
        }
        if !violations.is_empty() {
            return Err(UserError::Invalid(violations));
        }
        let mut found: HashMap<String, User> = self
            .store
            .batch_get(&ids)
            .await?
            .into_iter()
            .map(|record| (record.id.clone(), record.into()))
            .collect();
        let mut response = BatchGetUsersResponse::default();
        for id in ids.iter().map(UserId::to_string) {
            match found.remove(&id) {
                Some(user) => response.users.push(user),
                None => response.missing_ids.push(id),
            }
        }
        Ok(Response::new(response))
    }
}

#[tonic::async_trait]
impl UserService for Users {
    async fn create_user(&self, request: Request<CreateUserRequest>) -> Reply<CreateUserResponse> {
        Users::create_user(self, request)
            .await
            .map_err(Status::from)
    }

    async fn get_user(&self, request: Request<GetUserRequest>) -> Reply<GetUserResponse> {
        Users::get_user(self, request).await.map_err(Status::from)
    }

    async fn update_user(&self, request: Request<UpdateUserRequest>) -> Reply<UpdateUserResponse> {
        Users::update_user(self, request)
            .await
            .map_err(Status::from)
    }

    async fn delete_user(&self, request: Request<DeleteUserRequest>) -> Reply<DeleteUserResponse> {
        Users::delete_user(self, request)
            .await
            .map_err(Status::from)
    }

    async fn list_users(&self, request: Request<ListUsersRequest>) -> Reply<ListUsersResponse> {
        Users::list_users(self, request).await.map_err(Status::from)
    }

    async fn batch_get_users(
        &self,
        request: Request<BatchGetUsersRequest>,
    ) -> Reply<BatchGetUsersResponse> {
        Users::batch_get_users(self, request)
            .await
            .map_err(Status::from)
    }
}
