//! Managing personal access tokens (`/api/v4/users/.../tokens`): listing
//! them (never the token itself, only its id), reading one, disabling,
//! enabling and revoking, and the admins' search. Minting is in `rest.rs`,
//! which also routes `GET /users/{user_id}/tokens` here.

use super::rest::{Result, json_body, json_response, paging, require};
use super::{ApiError, Shim};
use crate::app::Scope;
use crate::store::AccessToken;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<Shim> {
    Router::new()
        .route("/api/v4/users/tokens", get(all))
        .route("/api/v4/users/tokens/{token_id}", get(one))
        .route("/api/v4/users/tokens/revoke", post(revoke))
        .route("/api/v4/users/tokens/disable", post(disable))
        .route("/api/v4/users/tokens/enable", post(enable))
        .route("/api/v4/users/tokens/search", post(search))
}

fn list(tokens: &[AccessToken]) -> Response {
    json_response(
        StatusCode::OK,
        Value::Array(tokens.iter().map(AccessToken::to_json).collect()),
    )
}

/// Mattermost's "may act for this user or bot": themselves, an admin, or
/// for a bot whoever may manage it.
fn may_act_for(shim: &Shim, session: &str, user_id: &str) -> Result<()> {
    if user_id == session
        || shim
            .app
            .has_permission(session, "manage_system", &Scope::System)
    {
        return Ok(());
    }
    let is_bot = shim.app.store.user(user_id).is_ok_and(|u| u.is_bot);
    if is_bot && super::bots::manageable_bot(shim, session, user_id).is_ok() {
        return Ok(());
    }
    Err(ApiError::forbidden().detail("missing permission edit_other_users"))
}

fn missing_token(e: crate::store::StoreError) -> ApiError {
    ApiError::store("app.user_access_token.get_by_user.app_error", e)
}

/// `GET /users/{user_id}/tokens`: a user's tokens, a page at a time.
pub(super) async fn for_user(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let user_id = super::rest::resolve_me(user_id, &session);
    require(&shim, &session, "read_user_access_token", Scope::System)?;
    may_act_for(&shim, &session, &user_id)?;
    let paging = paging(query.as_deref())?;
    let tokens = shim
        .app
        .store
        .access_tokens_for_user(&user_id, paging.offset, paging.per_page)
        .map_err(|e| ApiError::store("app.user_access_token.get_by_user.app_error", e))?;
    Ok(list(&tokens))
}

/// `GET /users/tokens`: everyone's tokens, for admins.
async fn all(
    State(shim): State<Shim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require(&shim, &session, "manage_system", Scope::System)?;
    let paging = paging(query.as_deref())?;
    let tokens = shim
        .app
        .store
        .access_tokens(paging.offset, paging.per_page)
        .map_err(|e| ApiError::store("app.user_access_token.get_all.app_error", e))?;
    Ok(list(&tokens))
}

/// `GET /users/tokens/{token_id}`.
async fn one(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(token_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require(&shim, &session, "read_user_access_token", Scope::System)?;
    let token = shim
        .app
        .store
        .access_token(&token_id)
        .map_err(missing_token)?;
    may_act_for(&shim, &session, &token.user_id)?;
    Ok(json_response(StatusCode::OK, token.to_json()))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenId {
    token_id: String,
}

/// The token a revoke, disable or enable names, once the session holds
/// `permission` and may act for the token's owner.
async fn named_token(
    shim: &Shim,
    headers: &HeaderMap,
    body: Body,
    permission: &str,
) -> Result<AccessToken> {
    let session = shim.require_user(headers, None)?;
    let request: TokenId = json_body(shim, body, "token_id").await?;
    if request.token_id.is_empty() {
        return Err(ApiError::invalid_body("token_id"));
    }
    require(shim, &session, permission, Scope::System)?;
    let token = shim
        .app
        .store
        .access_token(&request.token_id)
        .map_err(missing_token)?;
    may_act_for(shim, &session, &token.user_id)?;
    Ok(token)
}

fn status_ok() -> Response {
    json_response(StatusCode::OK, json!({"status": "OK"}))
}

/// `POST /users/tokens/revoke`: the token is deleted and stops working.
async fn revoke(State(shim): State<Shim>, headers: HeaderMap, body: Body) -> Result<Response> {
    let token = named_token(&shim, &headers, body, "revoke_user_access_token").await?;
    shim.app
        .store
        .delete_access_token(&token.id)
        .map_err(|e| ApiError::store("app.user_access_token.delete.app_error", e))?;
    Ok(status_ok())
}

/// `POST /users/tokens/disable`: the token stops working until enabled.
async fn disable(State(shim): State<Shim>, headers: HeaderMap, body: Body) -> Result<Response> {
    let token = named_token(&shim, &headers, body, "revoke_user_access_token").await?;
    shim.app
        .store
        .set_access_token_active(&token.id, false)
        .map_err(|e| ApiError::store("app.user_access_token.update_token_disable.app_error", e))?;
    Ok(status_ok())
}

/// `POST /users/tokens/enable`: a disabled token works again.
async fn enable(State(shim): State<Shim>, headers: HeaderMap, body: Body) -> Result<Response> {
    let token = named_token(&shim, &headers, body, "create_user_access_token").await?;
    shim.app
        .store
        .set_access_token_active(&token.id, true)
        .map_err(|e| ApiError::store("app.user_access_token.update_token_enable.app_error", e))?;
    Ok(status_ok())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Search {
    term: String,
}

/// `POST /users/tokens/search` `{"term"}`: tokens by id, user id or
/// username prefix, for admins.
async fn search(State(shim): State<Shim>, headers: HeaderMap, body: Body) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require(&shim, &session, "manage_system", Scope::System)?;
    let request: Search = json_body(&shim, body, "user_access_token_search").await?;
    if request.term.is_empty() {
        return Err(ApiError::invalid_body("term"));
    }
    let tokens = shim
        .app
        .store
        .search_access_tokens(&request.term)
        .map_err(|e| ApiError::store("app.user_access_token.search.app_error", e))?;
    Ok(list(&tokens))
}
