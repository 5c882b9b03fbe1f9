//! Registering and managing OAuth apps (`/api/v4/oauth/apps`), and the apps a
//! user has authorized. Validation order and ids are Mattermost's.

use super::{app_missing, require_enabled, web_url};
use crate::app::Scope;
use crate::server::rest::{json_body, json_response, paging, resolve_me};
use crate::server::{ApiError, Shim};
use crate::store::{OAuthApp, StoreError, new_id};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

type Result<T> = std::result::Result<T, ApiError>;

pub fn routes() -> Router<Shim> {
    Router::new()
        .route("/api/v4/oauth/apps", get(list_apps).post(create_app))
        .route(
            "/api/v4/oauth/apps/{app_id}",
            get(get_app).put(update_app).delete(delete_app),
        )
        .route(
            "/api/v4/oauth/apps/{app_id}/regen_secret",
            post(regen_secret),
        )
        .route("/api/v4/oauth/apps/{app_id}/info", get(app_info))
        .route(
            "/api/v4/users/{user_id}/oauth/apps/authorized",
            get(authorized_apps),
        )
}

/// The create and update body.
#[derive(Deserialize, Default)]
#[serde(default)]
struct AppRequest {
    id: String,
    name: String,
    description: String,
    icon_url: String,
    callback_urls: Vec<String>,
    homepage: String,
    is_trusted: bool,
    is_public: bool,
    mattermost_app_id: String,
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::new(
        400,
        &format!("model.oauth.is_valid.{field}.app_error"),
        message,
    )
}

/// Mattermost's `OAuthApp.IsValid`, in its order.
pub(super) fn validate(app: &OAuthApp) -> Result<()> {
    if app.client_secret.len() > 128 {
        return Err(invalid("client_secret", "Invalid client secret."));
    }
    if app.name.is_empty() || app.name.len() > 64 {
        return Err(invalid("name", "Invalid name: 1 to 64 bytes."));
    }
    // Go renders the list as `[u1 u2]`; that rendering is what is capped.
    let rendered = app.callback_urls.join(" ").len() + 2;
    if app.callback_urls.is_empty()
        || rendered > 1024
        || !app.callback_urls.iter().all(|u| web_url(u))
    {
        return Err(invalid(
            "callback",
            "Callback URLs must be one or more http:// or https:// URLs.",
        ));
    }
    // A dynamically registered client need not have a homepage.
    let missing = app.homepage.is_empty() && !app.is_dynamically_registered;
    let bad = !app.homepage.is_empty() && (app.homepage.len() > 256 || !web_url(&app.homepage));
    if missing || bad {
        return Err(invalid(
            "homepage",
            "Homepage must be an http:// or https:// URL of at most 256 characters.",
        ));
    }
    if app.description.chars().count() > 512 {
        return Err(invalid(
            "description",
            "Description: at most 512 characters.",
        ));
    }
    if !app.icon_url.is_empty() && (app.icon_url.len() > 512 || !web_url(&app.icon_url)) {
        return Err(invalid(
            "icon_url",
            "Icon URL must be an http:// or https:// URL.",
        ));
    }
    if app.mattermost_app_id.len() > 32 {
        return Err(invalid("mattermost_app_id", "Invalid Mattermost app id."));
    }
    Ok(())
}

fn may(shim: &Shim, user: &str, permission: &str) -> bool {
    shim.app.has_permission(user, permission, &Scope::System)
}

/// The app, if the caller may manage it: `manage_oauth`, and either created
/// it or holds `manage_system_wide_oauth`.
fn manageable_app(shim: &Shim, session: &str, app_id: &str) -> Result<OAuthApp> {
    if !may(shim, session, "manage_oauth") {
        return Err(ApiError::forbidden().detail("permission=manage_oauth"));
    }
    let app = shim
        .app
        .store
        .oauth_app(app_id)
        .map_err(|_| app_missing())?;
    if app.creator_id != session && !may(shim, session, "manage_system_wide_oauth") {
        return Err(ApiError::forbidden().detail("permission=manage_system_wide_oauth"));
    }
    Ok(app)
}

async fn create_app(State(shim): State<Shim>, headers: HeaderMap, body: Body) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require_enabled(&shim, "api.oauth.register_oauth_app.turn_off.app_error")?;
    let request: AppRequest = json_body(&shim, body, "oauth_app").await?;
    if !may(&shim, &session, "manage_oauth") {
        return Err(ApiError::forbidden().detail("permission=manage_oauth"));
    }
    let now = shim.app.clock.now_millis();
    let app = OAuthApp {
        id: new_id(),
        creator_id: session.clone(),
        create_at: now,
        update_at: now,
        client_secret: if request.is_public {
            String::new()
        } else {
            new_id()
        },
        name: request.name,
        description: request.description,
        icon_url: request.icon_url,
        callback_urls: request.callback_urls,
        homepage: request.homepage,
        is_trusted: request.is_trusted && may(&shim, &session, "manage_system"),
        mattermost_app_id: request.mattermost_app_id,
        is_dynamically_registered: false,
    };
    validate(&app)?;
    shim.app.store.create_oauth_app(&app).map_err(|e| match e {
        StoreError::Conflict(_) => ApiError::new(
            400,
            "app.oauth.save_app.existing.app_error",
            "The app exists.",
        ),
        e => ApiError::store("app.oauth.save_app.save.app_error", e),
    })?;
    Ok(json_response(StatusCode::CREATED, app.to_json(true)))
}

async fn list_apps(
    State(shim): State<Shim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require_enabled(&shim, "api.oauth.allow_oauth.turn_off.app_error")?;
    if !may(&shim, &session, "manage_oauth") {
        // Mattermost's id for this one refusal.
        return Err(ApiError::new(
            403,
            "api.command.admin_only.app_error",
            "Only an admin may manage OAuth apps.",
        ));
    }
    let paging = paging(query.as_deref())?;
    let creator = (!may(&shim, &session, "manage_system_wide_oauth")).then_some(session.as_str());
    let apps = shim
        .app
        .store
        .oauth_apps(creator, paging.offset, paging.per_page)
        .map_err(|e| ApiError::store("app.oauth.get_apps.find.app_error", e))?;
    let list: Vec<_> = apps.iter().map(|a| a.to_json(true)).collect();
    Ok(json_response(StatusCode::OK, list.into()))
}

async fn get_app(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require_enabled(&shim, "api.oauth.allow_oauth.turn_off.app_error")?;
    let app = manageable_app(&shim, &session, &app_id)?;
    Ok(json_response(StatusCode::OK, app.to_json(true)))
}

/// A full replacement: omitted fields are cleared (and then may fail
/// validation); id, creator, creation time and secret stay.
async fn update_app(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    body: Body,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require_enabled(&shim, "api.oauth.allow_oauth.turn_off.app_error")?;
    let request: AppRequest = json_body(&shim, body, "oauth_app").await?;
    if request.id != app_id {
        return Err(ApiError::new(
            400,
            "api.context.invalid_param.app_error",
            "Invalid app_id parameter.",
        ));
    }
    let stored = manageable_app(&shim, &session, &app_id)?;
    let app = OAuthApp {
        update_at: shim.app.clock.now_millis().max(stored.update_at + 1),
        name: request.name,
        description: request.description,
        icon_url: request.icon_url,
        callback_urls: request.callback_urls,
        homepage: request.homepage,
        is_trusted: if may(&shim, &session, "manage_system") {
            request.is_trusted
        } else {
            stored.is_trusted
        },
        mattermost_app_id: request.mattermost_app_id,
        ..stored
    };
    validate(&app)?;
    shim.app
        .store
        .update_oauth_app(&app)
        .map_err(|e| ApiError::store("app.oauth.update_app.updating.app_error", e))?;
    Ok(json_response(StatusCode::OK, app.to_json(true)))
}

/// Deleting an app ends every token it was given, at once.
async fn delete_app(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require_enabled(&shim, "api.oauth.allow_oauth.turn_off.app_error")?;
    let app = manageable_app(&shim, &session, &app_id)?;
    shim.app
        .store
        .delete_oauth_app(&app.id)
        .map_err(|e| ApiError::store("app.oauth.delete_app.app_error", e))?;
    Ok(json_response(StatusCode::OK, json!({"status": "OK"})))
}

/// A new secret; tokens issued before stay valid, as in Mattermost.
async fn regen_secret(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require_enabled(&shim, "api.oauth.allow_oauth.turn_off.app_error")?;
    let mut app = manageable_app(&shim, &session, &app_id)?;
    if app.is_public() {
        return Err(ApiError::new(
            400,
            "api.oauth.regenerate_secret.public_client.app_error",
            "A public client has no secret to regenerate.",
        ));
    }
    app.client_secret = new_id();
    app.update_at = shim.app.clock.now_millis().max(app.update_at + 1);
    shim.app
        .store
        .update_oauth_app(&app)
        .map_err(|e| ApiError::store("app.oauth.update_app.updating.app_error", e))?;
    Ok(json_response(StatusCode::OK, app.to_json(true)))
}

/// What a consent page shows: anyone signed in may read it, without the secret.
async fn app_info(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
) -> Result<Response> {
    shim.require_user(&headers, None)?;
    require_enabled(&shim, "api.oauth.allow_oauth.turn_off.app_error")?;
    let app = shim
        .app
        .store
        .oauth_app(&app_id)
        .map_err(|_| app_missing())?;
    Ok(json_response(StatusCode::OK, app.to_json(false)))
}

async fn authorized_apps(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require_enabled(&shim, "api.oauth.allow_oauth.turn_off.app_error")?;
    let user_id = resolve_me(user_id, &session);
    if user_id != session && !may(&shim, &session, "manage_system") {
        return Err(ApiError::forbidden().detail("permission=edit_other_users"));
    }
    let apps = shim
        .app
        .store
        .authorized_oauth_apps(&user_id)
        .map_err(|e| ApiError::store("app.oauth.get_apps.find.app_error", e))?;
    let list: Vec<_> = apps.iter().map(|a| a.to_json(false)).collect();
    Ok(json_response(StatusCode::OK, list.into()))
}
