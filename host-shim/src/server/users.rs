//! Users beyond the basics in `rest.rs`: the lookups bots make in bulk (many
//! users by id or username at once), and deactivation with what follows for
//! the bots a user owns (`DisableBotsWhenOwnerIsDeactivated`).

use super::rest::{Result, json_body, json_response, resolve_me};
use super::{ApiError, Shim};
use crate::app::Scope;
use crate::store::{BotQuery, User};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

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

/// Admins may deactivate anyone; a person may deactivate themselves.
pub(super) async fn deactivate_user(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let user_id = resolve_me(user_id, &session);
    if user_id != session
        && !shim
            .app
            .has_permission(&session, "manage_system", &Scope::System)
    {
        return Err(ApiError::forbidden().detail("permission=manage_system"));
    }
    let store = &shim.app.store;
    let user = store
        .user(&user_id)
        .map_err(|e| ApiError::store("app.user.missing_account.const", e))?;
    super::bots::refuse_system_bot(&user.username, user.is_bot, "deactivated")?;
    let now = shim.app.clock.now_millis();
    store
        .set_user_delete_at(&user.id, now, now)
        .map_err(|e| ApiError::store("app.user.update_active.app_error", e))?;
    if !user.is_bot
        && shim
            .app
            .config()
            .service_settings
            .disable_bots_when_owner_is_deactivated
    {
        disable_owned_bots(&shim, &user, now);
    }
    Ok(json_response(StatusCode::OK, json!({"status": "OK"})))
}

/// Disables the owner's bots and tells every admin which, from the system
/// bot. Failures are only logged, as in Mattermost: the owner is deactivated
/// either way.
fn disable_owned_bots(shim: &Shim, owner: &User, now: i64) {
    let store = &shim.app.store;
    let bots = match store.bots(&BotQuery {
        owner_id: Some(owner.id.clone()),
        limit: u64::MAX,
        ..BotQuery::default()
    }) {
        // The system bot stays: it is only nominally the first admin's.
        Ok(bots) => bots
            .into_iter()
            .filter(|b| !super::bots::is_system_bot(&b.username))
            .collect::<Vec<_>>(),
        Err(e) => {
            tracing::warn!(owner = %owner.id, "listing a deactivated owner's bots: {e}");
            return;
        }
    };
    if bots.is_empty() {
        return;
    }
    for bot in &bots {
        if let Err(e) = store.set_bot_delete_at(&bot.user_id, now, now) {
            tracing::warn!(bot = %bot.user_id, "disabling a deactivated owner's bot: {e}");
        }
    }
    let names: Vec<String> = bots
        .iter()
        .take(10)
        .map(|b| format!("@{}", b.username))
        .collect();
    let more = bots.len().saturating_sub(names.len());
    let mut message = format!(
        "@{} was deactivated, so their bots were disabled: {}",
        owner.username,
        names.join(", ")
    );
    if more > 0 {
        message.push_str(&format!(" and {more} more"));
    }
    message.push_str(". Assign them to another owner and enable them to keep them working.");
    for admin in store.system_admins().unwrap_or_default() {
        let notice = crate::store::Post {
            message: message.clone(),
            ..crate::store::Post::default()
        };
        if let Err(e) = shim.app.notify_user(&admin.id, notice) {
            tracing::warn!(admin = %admin.id, "telling an admin about disabled bots: {e}");
        }
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct PasswordUpdate {
    current_password: String,
    new_password: String,
}

/// `PUT /api/v4/users/{user_id}/password`, as Mattermost's: people change
/// their own with the current password (a wrong one counts towards the
/// lockout), a system admin sets anyone's without it. Either way the
/// account's failed sign-ins go back to 0, which is how an admin unlocks it.
pub(super) async fn update_password(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Body,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let user_id = resolve_me(user_id, &session);
    let own = user_id == session;
    if !own {
        super::rest::require_admin(&shim, &session)?;
    }
    let update: PasswordUpdate = json_body(&shim, body, "password").await?;
    if update.new_password.is_empty() {
        return Err(ApiError::invalid_body("new_password"));
    }
    let user = shim
        .app
        .store
        .user(&user_id)
        .map_err(|e| ApiError::store("api.user.update_password.get_user.app_error", e))?;
    if user.is_bot {
        return Err(ApiError::new(
            400,
            "api.user.update_password.bot.app_error",
            "A bot has no password; it uses tokens.",
        ));
    }
    if own {
        if update.current_password.is_empty() {
            return Err(ApiError::invalid_body("current_password"));
        }
        let hash = shim
            .app
            .store
            .password_hash(&user.id)
            .map_err(|e| ApiError::store("api.user.update_password.failed.app_error", e))?;
        shim.app
            .check_password(&user, &hash, &update.current_password)
            .await
            .map_err(|e| match e {
                crate::app::SignInError::Invalid => ApiError::new(
                    400,
                    "api.user.update_password.incorrect.app_error",
                    "The \"Current Password\" you entered is incorrect. Please check that Caps Lock is off and try again.",
                ),
                e => super::rest::sign_in_error(e, "api.user.update_password.failed.app_error"),
            })?;
    }
    super::rest::valid_password(&update.new_password)?;
    let hash = shim
        .app
        .passwords
        .hash(&update.new_password)
        .await
        .map_err(|e| {
            ApiError::new(
                500,
                "api.user.update_password.failed.app_error",
                e.to_string(),
            )
        })?;
    shim.app
        .store
        .set_password(&user.id, &hash)
        .await
        .map_err(|e| ApiError::store("api.user.update_password.failed.app_error", e))?;
    Ok(json_response(StatusCode::OK, json!({"status": "OK"})))
}
