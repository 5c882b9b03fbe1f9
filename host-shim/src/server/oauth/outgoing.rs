//! Outgoing OAuth connections (`/api/v4/oauth/outgoing_connections`): the
//! credentials with which the host fetches tokens for integrations' requests
//! (`crate::deliveries::oauth`). Secrets go in and never come back out.

use super::web_url;
use crate::app::Scope;
use crate::deliveries::oauth::{connection_for, fetch_token};
use crate::server::plugin::read_body;
use crate::server::rest::json_response;
use crate::server::{ApiError, Shim};
use crate::store::{OutgoingOAuthConnection, StoreError, new_id, valid_id};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

type Result<T> = std::result::Result<T, ApiError>;

const MANAGE: &str = "manage_outgoing_oauth_connections";
const PREFIX: &str = "api.context.outgoing_oauth_connection";

pub fn routes() -> Router<Shim> {
    Router::new()
        .route("/api/v4/oauth/outgoing_connections", get(list).post(create))
        .route(
            "/api/v4/oauth/outgoing_connections/validate",
            post(validate_credentials),
        )
        .route(
            "/api/v4/oauth/outgoing_connections/{id}",
            get(read).put(update).delete(remove),
        )
}

fn route_error(status: u16, operation: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, &format!("{PREFIX}.{operation}"), message)
}

/// What every route checks first, in Mattermost's order: the permission
/// (403), then `EnableOutgoingOAuthConnections` (501). There is no license
/// to check: the feature is not held back here.
fn guard(shim: &Shim, allowed: bool, missing: &str) -> Result<()> {
    if !allowed {
        return Err(ApiError::forbidden().detail(format!("permission={missing}")));
    }
    if !shim
        .app
        .config()
        .service_settings
        .enable_outgoing_o_auth_connections
    {
        return Err(route_error(
            501,
            "not_available.configuration_disabled",
            "Outgoing OAuth connections are disabled (ServiceSettings.EnableOutgoingOAuthConnections).",
        ));
    }
    Ok(())
}

fn require_manage(shim: &Shim, headers: &HeaderMap) -> Result<String> {
    let session = shim.require_user(headers, None)?;
    let allowed = shim.app.has_permission(&session, MANAGE, &Scope::System);
    guard(shim, allowed, MANAGE)?;
    Ok(session)
}

/// The path's id: letters and digits (anything else is no connection's).
fn path_id(id: &str) -> Result<()> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::invalid_url_param("outgoing_oauth_connection_id"))
    }
}

/// A JSON body; unreadable JSON is 400 with the route's `input_error` id.
async fn body<T: DeserializeOwned>(shim: &Shim, body: Body, operation: &str) -> Result<T> {
    let bytes = read_body(shim, body)
        .await?
        .ok_or_else(ApiError::too_large)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        route_error(
            400,
            &format!("{operation}.input_error"),
            "Invalid request body.",
        )
        .detail(e.to_string())
    })
}

/// Mattermost's JSON for a connection, sanitized as every answer is: no
/// client secret, no password.
fn sanitized(c: &OutgoingOAuthConnection) -> Value {
    let mut value = json!({
        "id": c.id,
        "creator_id": c.creator_id,
        "create_at": c.create_at,
        "update_at": c.update_at,
        "name": c.name,
        "oauth_token_url": c.oauth_token_url,
        "grant_type": c.grant_type,
        "audiences": c.audiences,
    });
    if !c.client_id.is_empty() {
        value["client_id"] = json!(c.client_id);
    }
    if let Some(username) = &c.credentials_username {
        value["credentials_username"] = json!(username);
    }
    value
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::new(
        400,
        &format!("model.outgoing_oauth_connection.is_valid.{field}"),
        message,
    )
}

/// Mattermost's `OutgoingOAuthConnection.IsValid`, in its order (the
/// identity fields are the server's and always valid here).
fn check(c: &OutgoingOAuthConnection) -> Result<()> {
    let runes = |s: &str| s.chars().count();
    if c.name.is_empty() || runes(&c.name) > 64 {
        return Err(invalid(
            "name.error",
            "The name must be 1 to 64 characters.",
        ));
    }
    if c.client_id.is_empty() || runes(&c.client_id) > 255 {
        return Err(invalid(
            "client_id.error",
            "The client id must be 1 to 255 characters.",
        ));
    }
    if c.client_secret.is_empty() || runes(&c.client_secret) > 255 {
        return Err(invalid(
            "client_secret.error",
            "The client secret must be 1 to 255 characters.",
        ));
    }
    if !web_url(&c.oauth_token_url) || runes(&c.oauth_token_url) > 256 {
        return Err(invalid(
            "oauth_token_url.error",
            "The token URL must be an http:// or https:// URL of at most 256 characters.",
        ));
    }
    check_grant(c)?;
    if c.audiences.is_empty() {
        return Err(invalid(
            "audience.empty",
            "At least one audience URL is needed.",
        ));
    }
    if let Some(bad) = c.audiences.iter().find(|a| !web_url(a)) {
        return Err(invalid(
            "audience.error",
            &format!("The audience {bad:?} is not an http:// or https:// URL."),
        ));
    }
    Ok(())
}

fn check_grant(c: &OutgoingOAuthConnection) -> Result<()> {
    match c.grant_type.as_str() {
        "client_credentials" => Ok(()),
        "password" => {
            let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
            if present(&c.credentials_username) && present(&c.credentials_password) {
                Ok(())
            } else {
                Err(invalid(
                    "password_credentials.error",
                    "The password grant needs credentials_username and credentials_password.",
                ))
            }
        }
        _ => Err(invalid(
            "grant_type.error",
            "The grant type must be client_credentials or password.",
        )),
    }
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// Lists connections (cursor `from_id`, `limit` 1–100, default 10), or with
/// `audience` the one that URL would use. Integration authors may read it
/// too: with `manage_own_outgoing_webhooks` or `manage_own_slash_commands`
/// in `team_id`, so they can see which connection their URL gets.
async fn list(
    State(shim): State<Shim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let query = query.as_deref();
    let team = Scope::Team(query_param(query, "team_id").unwrap_or_default());
    let app = &shim.app;
    let allowed = app.has_permission(&session, MANAGE, &Scope::System)
        || app.has_permission(&session, "manage_own_outgoing_webhooks", &team)
        || app.has_permission(&session, "manage_own_slash_commands", &team);
    guard(
        &shim,
        allowed,
        "manage_own_outgoing_webhooks,manage_own_slash_commands",
    )?;
    let limit = match query_param(query, "limit") {
        None => 10,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                route_error(
                    400,
                    "list_connections.input_error",
                    "limit must be a number from 1 to 100.",
                )
            })? as u32,
    };
    let failed = |e: StoreError| route_error(500, "list_connections.app_error", e.to_string());
    let found = match query_param(query, "audience") {
        Some(audience) => {
            let all = app
                .store
                .outgoing_oauth_connections("", u32::MAX)
                .map_err(failed)?;
            connection_for(&all, &audience)
                .cloned()
                .into_iter()
                .collect()
        }
        None => app
            .store
            .outgoing_oauth_connections(&query_param(query, "from_id").unwrap_or_default(), limit)
            .map_err(failed)?,
    };
    let list: Vec<Value> = found.iter().map(sanitized).collect();
    Ok(json_response(StatusCode::OK, list.into()))
}

fn stored(shim: &Shim, id: &str, operation: &str) -> Result<OutgoingOAuthConnection> {
    shim.app
        .store
        .outgoing_oauth_connection(id)
        .map_err(|e| match e {
            StoreError::NotFound(_) => route_error(
                404,
                &format!("{operation}.app_error"),
                "The outgoing OAuth connection does not exist.",
            ),
            e => route_error(500, &format!("{operation}.app_error"), e.to_string()),
        })
}

async fn create(State(shim): State<Shim>, headers: HeaderMap, raw: Body) -> Result<Response> {
    let session = require_manage(&shim, &headers)?;
    let request: OutgoingOAuthConnection = body(&shim, raw, "create_connection").await?;
    if !request.id.is_empty() {
        return Err(invalid(
            "id.error",
            "A new connection's id is the server's to choose.",
        ));
    }
    let now = shim.app.clock.now_millis();
    let connection = OutgoingOAuthConnection {
        id: new_id(),
        creator_id: session,
        create_at: now,
        update_at: now,
        ..request
    };
    check(&connection)?;
    shim.app
        .store
        .create_outgoing_oauth_connection(&connection)
        .map_err(|e| route_error(500, "create_connection.app_error", e.to_string()))?;
    Ok(json_response(StatusCode::CREATED, sanitized(&connection)))
}

async fn read(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response> {
    require_manage(&shim, &headers)?;
    path_id(&id)?;
    let connection = stored(&shim, &id, "list_connections")?;
    Ok(json_response(StatusCode::OK, sanitized(&connection)))
}

/// A patch, as Mattermost's `Patch`: non-empty fields replace, an empty
/// audience list keeps the old one, credentials replace when present.
async fn update(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    raw: Body,
) -> Result<Response> {
    require_manage(&shim, &headers)?;
    path_id(&id)?;
    let patch: OutgoingOAuthConnection = body(&shim, raw, "update_connection").await?;
    if patch.id != id {
        return Err(ApiError::new(
            400,
            "api.context.invalid_param.app_error",
            "Invalid id parameter.",
        ));
    }
    let mut connection = stored(&shim, &id, "update_connection")?;
    let keep = |new: String, old: &mut String| {
        if !new.is_empty() {
            *old = new;
        }
    };
    keep(patch.name, &mut connection.name);
    keep(patch.client_id, &mut connection.client_id);
    keep(patch.client_secret, &mut connection.client_secret);
    keep(patch.oauth_token_url, &mut connection.oauth_token_url);
    keep(patch.grant_type, &mut connection.grant_type);
    if !patch.audiences.is_empty() {
        connection.audiences = patch.audiences;
    }
    if patch.credentials_username.is_some() {
        connection.credentials_username = patch.credentials_username;
    }
    if patch.credentials_password.is_some() {
        connection.credentials_password = patch.credentials_password;
    }
    connection.update_at = shim.app.clock.now_millis().max(connection.update_at + 1);
    check(&connection)?;
    shim.app
        .store
        .update_outgoing_oauth_connection(&connection)
        .map_err(|e| route_error(500, "update_connection.app_error", e.to_string()))?;
    shim.engine.tokens.forget(&id);
    Ok(json_response(StatusCode::OK, sanitized(&connection)))
}

async fn remove(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response> {
    require_manage(&shim, &headers)?;
    path_id(&id)?;
    stored(&shim, &id, "delete_connection")?;
    shim.app
        .store
        .delete_outgoing_oauth_connection(&id)
        .map_err(|e| route_error(500, "delete_connection.app_error", e.to_string()))?;
    shim.engine.tokens.forget(&id);
    Ok(json_response(StatusCode::OK, json!({"status": "OK"})))
}

/// Asks the token endpoint for a token with the given settings (saved or
/// not) and throws it away. A saved connection's secrets fill in what the
/// body leaves empty, so the form can be checked without typing them again.
async fn validate_credentials(
    State(shim): State<Shim>,
    headers: HeaderMap,
    raw: Body,
) -> Result<Response> {
    require_manage(&shim, &headers)?;
    let mut connection: OutgoingOAuthConnection =
        body(&shim, raw, "validate_connection_credentials").await?;
    if !connection.id.is_empty() {
        path_id(&connection.id)?;
        let saved = stored(&shim, &connection.id, "validate_connection_credentials")?;
        if connection.client_secret.is_empty() {
            connection.client_secret = saved.client_secret;
        }
        if connection.grant_type == "password"
            && connection
                .credentials_password
                .as_deref()
                .unwrap_or("")
                .is_empty()
        {
            connection.credentials_password = saved.credentials_password;
        }
    }
    check_grant(&connection)?;
    match fetch_token(&shim.app, &connection).await {
        Ok(_) => Ok(json_response(StatusCode::OK, json!({"status": "OK"}))),
        Err(e) => Err(route_error(
            400,
            "validate_connection_credentials.app_error",
            format!("The credentials could not be validated: {e}"),
        )),
    }
}
