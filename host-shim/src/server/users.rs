//! User lookups bots make in bulk: many users by id or by username at once
//! (resolving the mentions in a post, the members of a channel).

use super::rest::{Result, json_body, json_response};
use super::{ApiError, Shim};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::Value;

pub fn routes() -> Router<Shim> {
    Router::new()
        .route("/api/v4/users/ids", post(by_ids))
        .route("/api/v4/users/usernames", post(by_usernames))
}

/// Reads the body's list of keys; Mattermost refuses an empty one.
async fn keys(shim: &Shim, body: Body, name: &str) -> Result<Vec<String>> {
    let keys: Vec<String> = json_body(shim, body, name).await?;
    if keys.is_empty() {
        return Err(ApiError::new(
            400,
            "api.context.invalid_param.app_error",
            format!("Invalid {name} parameter."),
        ));
    }
    Ok(keys)
}

/// `POST /users/ids`: the users with these ids; unknown ids are left out.
async fn by_ids(State(shim): State<Shim>, headers: HeaderMap, body: Body) -> Result<Response> {
    shim.require_user(&headers, None)?;
    let users: Vec<Value> = keys(&shim, body, "user_ids")
        .await?
        .iter()
        .filter_map(|id| shim.app.store.user(id).ok())
        .map(|u| u.to_json())
        .collect();
    Ok(json_response(StatusCode::OK, Value::Array(users)))
}

/// `POST /users/usernames`: the users with these usernames (any case).
async fn by_usernames(
    State(shim): State<Shim>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    shim.require_user(&headers, None)?;
    let users: Vec<Value> = keys(&shim, body, "usernames")
        .await?
        .iter()
        .filter_map(|name| shim.app.store.user_by_username(name).ok())
        .map(|u| u.to_json())
        .collect();
    Ok(json_response(StatusCode::OK, Value::Array(users)))
}
