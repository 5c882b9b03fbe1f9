//! Bot accounts (`/api/v4/bots`, `convert_to_bot`): users that cannot log in,
//! act through tokens, and are what integrations should post as.

use super::rest::{json_body, json_response, paging, query_flag, resolve_me};
use super::{ApiError, Shim};
use crate::app::Scope;
use crate::store::{Bot, BotQuery, Post, StoreError, User, new_id};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

type Result<T> = std::result::Result<T, ApiError>;

pub fn routes() -> Router<Shim> {
    Router::new()
        .route("/api/v4/bots", get(list_bots).post(create_bot))
        .route("/api/v4/bots/{bot_user_id}", get(get_bot).put(patch_bot))
        .route("/api/v4/bots/{bot_user_id}/disable", post(disable_bot))
        .route("/api/v4/bots/{bot_user_id}/enable", post(enable_bot))
        .route(
            "/api/v4/bots/{bot_user_id}/assign/{user_id}",
            post(assign_bot),
        )
        .route(
            "/api/v4/bots/{bot_user_id}/convert_to_user",
            post(convert_to_user),
        )
        .route(
            "/api/v4/users/{user_id}/convert_to_bot",
            post(convert_to_bot),
        )
}

/// Names no bot may take (Mattermost's reserved usernames).
const RESERVED: &[&str] = &["all", "channel", "matterbot", "system"];

/// What the post in a new bot's DM with its owner says.
const ADD_ME_MESSAGE: &str = "Add me to the teams and channels where you want me to work: I can only post where I am a member.";

/// The create and patch body: absent fields stay as they are.
#[derive(Deserialize, Default)]
#[serde(default)]
struct BotPatch {
    username: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
}

impl BotPatch {
    fn apply(self, bot: &mut Bot) {
        if let Some(username) = self.username {
            bot.username = username;
        }
        if let Some(name) = self.display_name {
            bot.display_name = name;
        }
        if let Some(description) = self.description {
            bot.description = description;
        }
    }
}

/// Mattermost's `Bot.IsValidCreate`, in its order, with its ids (the display
/// name's id really is `user_id`'s), then the check the bot's synthetic
/// e-mail address fails on.
fn validate(bot: &Bot) -> Result<()> {
    let name = &bot.username;
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && !RESERVED.contains(&name.as_str());
    if !name_ok {
        return Err(ApiError::new(
            400,
            "model.bot.is_valid.username.app_error",
            "Invalid username: use 1 to 64 lowercase letters, digits, '.', '-' and '_', and not a reserved name.",
        ));
    }
    if bot.display_name.chars().count() > 64 {
        return Err(ApiError::new(
            400,
            "model.bot.is_valid.user_id.app_error",
            "Invalid display name: at most 64 characters.",
        ));
    }
    if bot.description.chars().count() > 1024 {
        return Err(ApiError::new(
            400,
            "model.bot.is_valid.description.app_error",
            "Invalid description: at most 1024 characters.",
        ));
    }
    if bot.owner_id.is_empty() || bot.owner_id.chars().count() > 190 {
        return Err(ApiError::new(
            400,
            "model.bot.is_valid.creator_id.app_error",
            "Invalid owner.",
        ));
    }
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err(ApiError::new(
            400,
            "model.user.is_valid.email.app_error",
            "Invalid email: the username makes no valid address.",
        ));
    }
    Ok(())
}

/// The server's own bot (`system-bot`) posts the host's notices, so it may
/// not be disabled, deactivated, renamed (which would dodge this check) or
/// turned into a person. Mattermost's newer servers protect it the same way
/// (`Bot.IsSystemOwned`); the refusal is the permission error.
pub(super) fn refuse_system_bot(username: &str, is_bot: bool, what: &str) -> Result<()> {
    if is_bot && is_system_bot(username) {
        return Err(ApiError::forbidden().detail(format!("the system bot cannot be {what}")));
    }
    Ok(())
}

/// Whether a bot with this username is the server's own.
pub(super) fn is_system_bot(username: &str) -> bool {
    username.eq_ignore_ascii_case(crate::app::SYSTEM_BOT_USERNAME)
}

fn missing() -> ApiError {
    ApiError::new(
        404,
        "store.sql_bot.get.missing.app_error",
        "The bot does not exist.",
    )
}

fn forbidden(permission: &str) -> ApiError {
    ApiError::forbidden().detail(format!("permission={permission}"))
}

fn may(shim: &Shim, user_id: &str, permission: &str) -> bool {
    shim.app.has_permission(user_id, permission, &Scope::System)
}

fn save_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(_) => ApiError::new(
            400,
            "app.user.save.username_exists.app_error",
            "An account with that username already exists.",
        ),
        e => ApiError::store("app.bot.patchbot.internal_error", e),
    }
}

/// Loads a bot the session may read: any bot with `read_others_bots`, its
/// own with `read_bots`; everything else looks missing, so the answer never
/// tells whether an account is a bot.
fn readable_bot(shim: &Shim, session: &str, bot_id: &str, include_deleted: bool) -> Result<Bot> {
    let bot = shim.app.store.bot(bot_id).map_err(|_| missing())?;
    if bot.delete_at != 0 && !include_deleted {
        return Err(missing());
    }
    let allowed = may(shim, session, "read_others_bots")
        || (bot.owner_id == session && may(shim, session, "read_bots"));
    if allowed { Ok(bot) } else { Err(missing()) }
}

/// Mattermost's "may manage this bot": owners need `manage_bots`, others
/// `manage_others_bots`; a caller who may not even read it gets 404.
pub(super) fn manageable_bot(shim: &Shim, session: &str, bot_id: &str) -> Result<Bot> {
    let bot = shim.app.store.bot(bot_id).map_err(|_| missing())?;
    let (manage, read) = if bot.owner_id == session {
        ("manage_bots", "read_bots")
    } else {
        ("manage_others_bots", "read_others_bots")
    };
    if may(shim, session, manage) {
        Ok(bot)
    } else if may(shim, session, read) {
        Err(forbidden(manage))
    } else {
        Err(missing())
    }
}

async fn create_bot(State(shim): State<Shim>, headers: HeaderMap, body: Body) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let patch: Option<BotPatch> = json_body(&shim, body, "bot").await?;
    let patch = patch.ok_or_else(|| ApiError::invalid_body("bot"))?;
    if !may(&shim, &session, "create_bot") {
        return Err(forbidden("create_bot"));
    }
    let owner = shim
        .app
        .store
        .user(&session)
        .map_err(|e| ApiError::store("app.user.missing_account.const", e))?;
    if owner.is_bot {
        return Err(forbidden("create_bot"));
    }
    if !shim
        .app
        .config()
        .service_settings
        .enable_bot_account_creation
    {
        return Err(ApiError::new(
            403,
            "api.bot.create_disabled",
            "Bot creation has been disabled.",
        ));
    }
    let now = shim.app.clock.now_millis();
    let mut bot = Bot {
        user_id: new_id(),
        owner_id: session.clone(),
        create_at: now,
        update_at: now,
        ..Bot::default()
    };
    patch.apply(&mut bot);
    validate(&bot)?;
    shim.app.store.create_bot(&bot).map_err(save_error)?;
    greet_owner(&shim, &bot, &owner);
    Ok(json_response(StatusCode::CREATED, bot.to_json()))
}

/// The new bot opens a DM with its owner and asks to be added to teams and
/// channels, as Mattermost's bots do. A failure here does not undo the bot.
fn greet_owner(shim: &Shim, bot: &Bot, owner: &User) {
    let result = shim
        .app
        .store
        .direct_channel(&bot.user_id, &owner.id)
        .and_then(|channel| {
            shim.app.create_post(Post {
                channel_id: channel.id,
                user_id: bot.user_id.clone(),
                message: ADD_ME_MESSAGE.into(),
                post_type: "add_bot_teams_channels".into(),
                ..Post::default()
            })
        });
    if let Err(e) = result {
        tracing::warn!(bot = %bot.user_id, "could not greet the bot's owner: {e}");
    }
}

async fn list_bots(
    State(shim): State<Shim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let query = query.as_deref();
    let owner_id = if may(&shim, &session, "read_others_bots") {
        None
    } else if may(&shim, &session, "read_bots") {
        Some(session.clone())
    } else {
        return Err(forbidden("read_bots"));
    };
    let paging = paging(query)?;
    let bots = shim
        .app
        .store
        .bots(&BotQuery {
            owner_id,
            include_deleted: query_flag(query, "include_deleted"),
            only_orphaned: query_flag(query, "only_orphaned"),
            offset: paging.offset,
            limit: paging.per_page,
        })
        .map_err(|e| ApiError::store("app.bot.getbots.internal_error", e))?;
    let list: Vec<_> = bots.iter().map(Bot::to_json).collect();
    Ok(json_response(StatusCode::OK, list.into()))
}

async fn get_bot(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(bot_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let include_deleted = query_flag(query.as_deref(), "include_deleted");
    let bot = readable_bot(&shim, &session, &bot_id, include_deleted)?;
    Ok(json_response(StatusCode::OK, bot.to_json()))
}

async fn patch_bot(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(bot_id): Path<String>,
    body: Body,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let patch: Option<BotPatch> = json_body(&shim, body, "bot").await?;
    let patch = patch.ok_or_else(|| ApiError::invalid_body("bot"))?;
    let mut bot = manageable_bot(&shim, &session, &bot_id)?;
    let before = bot.clone();
    patch.apply(&mut bot);
    if bot.username != before.username {
        refuse_system_bot(&before.username, true, "renamed")?;
    }
    if bot == before {
        return Ok(json_response(StatusCode::OK, bot.to_json()));
    }
    validate(&bot)?;
    bot.update_at = shim.app.clock.now_millis().max(before.update_at + 1);
    shim.app.store.update_bot(&bot).map_err(save_error)?;
    Ok(json_response(StatusCode::OK, bot.to_json()))
}

async fn disable_bot(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(bot_id): Path<String>,
) -> Result<Response> {
    set_active(&shim, &headers, &bot_id, false)
}

async fn enable_bot(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(bot_id): Path<String>,
) -> Result<Response> {
    set_active(&shim, &headers, &bot_id, true)
}

/// Disabling keeps the bot's tokens but they stop working until it is
/// enabled again; both are idempotent.
fn set_active(shim: &Shim, headers: &HeaderMap, bot_id: &str, active: bool) -> Result<Response> {
    let session = shim.require_user(headers, None)?;
    let mut bot = manageable_bot(shim, &session, bot_id)?;
    if !active {
        refuse_system_bot(&bot.username, true, "disabled")?;
    }
    if (bot.delete_at == 0) != active {
        let now = shim.app.clock.now_millis().max(bot.update_at + 1);
        bot.delete_at = if active { 0 } else { now };
        bot.update_at = now;
        shim.app
            .store
            .set_bot_delete_at(&bot.user_id, bot.delete_at, now)
            .map_err(|e| ApiError::store("app.bot.patchbot.internal_error", e))?;
    }
    Ok(json_response(StatusCode::OK, bot.to_json()))
}

async fn assign_bot(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path((bot_id, user_id)): Path<(String, String)>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let mut bot = manageable_bot(&shim, &session, &bot_id)?;
    // Mattermost checks only that the new owner is not a bot; an unknown id
    // is accepted.
    if shim.app.store.user(&user_id).is_ok_and(|u| u.is_bot) {
        return Err(forbidden("assign_bot"));
    }
    if bot.owner_id != user_id {
        bot.owner_id = user_id;
        bot.update_at = shim.app.clock.now_millis().max(bot.update_at + 1);
        shim.app
            .store
            .update_bot(&bot)
            .map_err(|e| ApiError::store("app.bot.patchbot.internal_error", e))?;
    }
    Ok(json_response(StatusCode::OK, bot.to_json()))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UserPatch {
    password: String,
}

async fn convert_to_user(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(bot_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    if !may(&shim, &session, "manage_system") {
        return Err(forbidden("manage_system"));
    }
    let bot = shim.app.store.bot(&bot_id).map_err(|_| missing())?;
    if bot.delete_at != 0 {
        return Err(missing());
    }
    refuse_system_bot(&bot.username, true, "converted to a user")?;
    let patch: Option<UserPatch> = json_body(&shim, body, "userPatch").await?;
    let password = patch
        .map(|p| p.password)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::invalid_body("userPatch"))?;
    let hash =
        shim.app.passwords.hash(&password).await.map_err(|e| {
            ApiError::new(500, "app.user.convert_bot_to_user.app_error", e.to_string())
        })?;
    let mut roles = "system_user".to_string();
    if query_flag(query.as_deref(), "set_system_admin") {
        roles.push_str(" system_admin");
    }
    let store = &shim.app.store;
    store
        .convert_bot_to_user(&bot.user_id, &hash, &roles)
        .map_err(|e| ApiError::store("app.user.convert_bot_to_user.app_error", e))?;
    let user = store
        .user(&bot.user_id)
        .map_err(|e| ApiError::store("app.user.missing_account.const", e))?;
    Ok(json_response(StatusCode::OK, user.to_json()))
}

async fn convert_to_bot(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    if !may(&shim, &session, "manage_system") {
        return Err(forbidden("manage_system"));
    }
    let user_id = resolve_me(user_id, &session);
    let user = shim
        .app
        .store
        .user(&user_id)
        .map_err(|e| ApiError::store("app.user.missing_account.const", e))?;
    if user.is_bot {
        return Err(ApiError::new(
            400,
            "app.bot.createbot.internal_error",
            "The account is a bot already.",
        ));
    }
    let now = shim.app.clock.now_millis();
    shim.app
        .store
        .convert_user_to_bot(&user.id, now)
        .map_err(|e| ApiError::store("app.bot.createbot.internal_error", e))?;
    let bot = shim
        .app
        .store
        .bot(&user.id)
        .map_err(|e| ApiError::store("app.bot.getbot.internal_error", e))?;
    Ok(json_response(StatusCode::OK, bot.to_json()))
}

/// The user object as the API shows it: bots carry `bot_description`.
pub(super) fn user_json(shim: &Shim, user: &User) -> serde_json::Value {
    let mut json = user.to_json();
    if user.is_bot
        && let Ok(Some(description)) = shim.app.store.bot_description(&user.id)
        && !description.is_empty()
    {
        json["bot_description"] = description.into();
    }
    json
}

/// Personal access tokens for people can be turned off; bots' tokens cannot.
pub(super) fn check_tokens_enabled(shim: &Shim, target: &User) -> Result<()> {
    if target.is_bot || shim.app.config().service_settings.enable_user_access_tokens {
        return Ok(());
    }
    Err(ApiError::new(
        501,
        "app.user_access_token.disabled",
        "Personal access tokens are disabled on this server.",
    ))
}

/// Who may mint a token for `target`: for a bot, whoever may manage it; for
/// a person, themselves or an admin.
pub(super) fn check_token_target(shim: &Shim, session: &str, target: &User) -> Result<()> {
    if target.is_bot {
        manageable_bot(shim, session, &target.id)?;
        return Ok(());
    }
    if target.id != session && !may(shim, session, "manage_system") {
        return Err(forbidden("edit_other_users"));
    }
    Ok(())
}
