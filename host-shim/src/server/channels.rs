//! Channel routes clients and bots rely on beyond the basics: lookup by team
//! and channel name, a user's channels, members, archive and restore,
//! moderation.

use super::rest::{Result, json_body, json_response, query_flag, require, resolve_me};
use super::{ApiError, Shim};
use crate::app::{App, Scope};
use crate::store::{Channel, ChannelType, Post, StoreError};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<Shim> {
    Router::new()
        .route(
            "/api/v4/teams/name/{name}/channels/name/{channel_name}",
            get(by_team_and_channel_name),
        )
        .route(
            "/api/v4/users/{user_id}/teams/{team_id}/channels",
            get(channels_for_user),
        )
        .route(
            "/api/v4/channels/{channel_id}",
            axum::routing::delete(archive),
        )
        .route("/api/v4/channels/{channel_id}/members", get(members))
        .route("/api/v4/channels/{channel_id}/restore", post(restore))
        .route(
            "/api/v4/channels/{channel_id}/moderations",
            get(moderations),
        )
        .route(
            "/api/v4/channels/{channel_id}/moderations/patch",
            put(patch_moderations),
        )
}

fn channel_list(channels: &[Channel]) -> Response {
    json_response(
        StatusCode::OK,
        Value::Array(channels.iter().map(Channel::to_json).collect()),
    )
}

/// `GET /teams/name/{team}/channels/name/{channel}` (mattermostdriver's
/// `get_channel_by_name_and_team_name`). A private channel the user may not
/// read answers 404, as if it did not exist.
async fn by_team_and_channel_name(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path((team_name, channel_name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let session = shim.require_user(&headers, query.as_deref())?;
    let missing_channel = || {
        ApiError::new(
            404,
            "app.channel.get_by_name.missing.app_error",
            "Channel does not exist.",
        )
    };
    let team = shim
        .app
        .store
        .team_by_name(&team_name)
        .map_err(|e| match e {
            StoreError::NotFound(_) => ApiError::new(
                404,
                "app.team.get_by_name.missing.app_error",
                "Unable to find the existing team.",
            ),
            e => ApiError::store("app.team.get_by_name.app_error", e),
        })?;
    let found = if query_flag(query.as_deref(), "include_deleted") {
        shim.app
            .store
            .channel_by_name_including_archived(&team.id, &channel_name)
    } else {
        shim.app.store.channel_by_name(&team.id, &channel_name)
    };
    let channel = found.map_err(|e| match e {
        StoreError::NotFound(_) => missing_channel(),
        e => ApiError::store("app.channel.get_by_name.existing.app_error", e),
    })?;
    let readable = shim.app.has_permission(
        &session,
        "read_channel",
        &Scope::Channel(channel.id.clone()),
    );
    if !readable {
        return Err(if channel.channel_type == ChannelType::Open {
            ApiError::forbidden().detail("missing permission read_public_channel")
        } else {
            missing_channel()
        });
    }
    Ok(json_response(StatusCode::OK, channel.to_json()))
}

/// `GET /users/{me|id}/teams/{team}/channels` (Client4's `getMyChannels`):
/// the team's channels the user is in, with their direct and group channels.
async fn channels_for_user(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path((user_id, team_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let session = shim.require_user(&headers, query.as_deref())?;
    let user_id = resolve_me(user_id, &session);
    if user_id != session
        && !shim
            .app
            .has_permission(&session, "manage_system", &Scope::System)
    {
        return Err(ApiError::forbidden().detail("missing permission edit_other_users"));
    }
    require(&shim, &session, "view_team", Scope::Team(team_id.clone()))?;
    let channels = shim
        .app
        .store
        .channels_for_user(
            &team_id,
            &user_id,
            query_flag(query.as_deref(), "include_deleted"),
        )
        .map_err(|e| ApiError::store("app.channel.get_channels.get.app_error", e))?;
    Ok(channel_list(&channels))
}

/// `GET /channels/{id}/members` (`page`, `per_page`): Mattermost's
/// `ChannelMember` records, by username. Unread counts are not kept: zeros.
async fn members(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let session = shim.require_user(&headers, query.as_deref())?;
    require(
        &shim,
        &session,
        "read_channel",
        Scope::Channel(channel_id.clone()),
    )?;
    let number = |name: &str, default: usize| -> Result<usize> {
        match url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
            .find(|(k, _)| k == name)
        {
            None => Ok(default),
            Some((_, v)) => v.parse().map_err(|_| ApiError::invalid_url_param(name)),
        }
    };
    let (page, per_page) = (number("page", 0)?, number("per_page", 60)?.min(200));
    let users = shim
        .app
        .store
        .channel_members(&channel_id)
        .map_err(|e| ApiError::store("app.channel.get_members.app_error", e))?;
    let list: Vec<Value> = users
        .iter()
        .skip(page.saturating_mul(per_page))
        .take(per_page)
        .map(|u| {
            json!({
                "channel_id": channel_id, "user_id": u.id, "roles": "channel_user",
                "last_viewed_at": 0, "msg_count": 0, "mention_count": 0,
                "mention_count_root": 0, "urgent_mention_count": 0, "msg_count_root": 0,
                "notify_props": {"desktop": "default", "email": "default",
                    "ignore_channel_mentions": "default", "mark_unread": "all", "push": "default"},
                "last_update_at": 0, "scheme_guest": false, "scheme_user": true,
                "scheme_admin": false, "explicit_roles": "",
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, Value::Array(list)))
}

/// The channel a route names, readable or not (permissions come after).
fn load(shim: &Shim, channel_id: &str) -> Result<Channel> {
    shim.app
        .store
        .channel(channel_id)
        .map_err(|e| ApiError::store("app.channel.get.existing.app_error", e))
}

/// Posts the system message of an archive or restore, as its actor.
fn system_post(app: &App, channel: &Channel, actor: &str, post_type: &str, action: &str) {
    let Ok(user) = app.store.user(actor) else {
        return;
    };
    let post = Post {
        user_id: user.id,
        channel_id: channel.id.clone(),
        message: format!("{} {action} the channel.", user.username),
        post_type: post_type.into(),
        props: json!({"username": user.username}).to_string(),
        metadata: "{}".into(),
        ..Post::default()
    };
    if let Err(err) = app.create_post(post) {
        tracing::warn!("failed to post the {post_type} message: {err}");
    }
}

/// `DELETE /channels/{id}`: archives the channel (Mattermost keeps it, with
/// `delete_at` set). Posting into it is refused from then on.
async fn archive(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let channel = load(&shim, &channel_id)?;
    let permission = match channel.channel_type {
        ChannelType::Direct | ChannelType::Group => {
            return Err(ApiError::new(
                400,
                "api.channel.delete_channel.type.invalid",
                "Could not delete the channel: direct and group message channels cannot be archived.",
            ));
        }
        ChannelType::Open => "delete_public_channel",
        ChannelType::Private => "delete_private_channel",
    };
    require(
        &shim,
        &session,
        permission,
        Scope::Channel(channel.id.clone()),
    )?;
    if channel.delete_at != 0 {
        return Err(ApiError::new(
            400,
            "api.channel.delete_channel.deleted.app_error",
            "The channel has been archived or deleted.",
        ));
    }
    if channel.name == "town-square" {
        return Err(ApiError::new(
            400,
            "api.channel.delete_channel.cannot.app_error",
            "Unable to delete the default channel town-square.",
        ));
    }
    let app = shim.app.clone();
    let archived = tokio::task::spawn_blocking(move || {
        // Posted first: an archived channel takes no posts.
        system_post(
            &app,
            &channel,
            &session,
            "system_channel_deleted",
            "archived",
        );
        app.store.set_channel_archived(&channel.id, true)
    })
    .await
    .map_err(|e| ApiError::new(500, "app.channel.delete.app_error", e.to_string()))?
    .map_err(|e| ApiError::store("app.channel.delete.app_error", e))?;
    shim.app.events.channel_archived(&archived, true);
    Ok(json_response(StatusCode::OK, json!({"status": "OK"})))
}

/// `POST /channels/{id}/restore`: unarchives a channel (team admins).
async fn restore(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let channel = load(&shim, &channel_id)?;
    require(
        &shim,
        &session,
        "manage_team",
        Scope::Team(channel.team_id.clone()),
    )?;
    if channel.delete_at == 0 {
        return Err(ApiError::new(
            400,
            "api.channel.restore_channel.restored.app_error",
            "Unable to unarchive channel. The channel is not archived.",
        ));
    }
    let app = shim.app.clone();
    let restored = tokio::task::spawn_blocking(move || {
        let restored = app.store.set_channel_archived(&channel.id, false)?;
        system_post(
            &app,
            &restored,
            &session,
            "system_channel_restored",
            "unarchived",
        );
        Ok::<_, StoreError>(restored)
    })
    .await
    .map_err(|e| ApiError::new(500, "app.channel.restore.app_error", e.to_string()))?
    .map_err(|e| ApiError::store("app.channel.restore.app_error", e))?;
    shim.app.events.channel_archived(&restored, false);
    Ok(json_response(StatusCode::OK, restored.to_json()))
}

/// The permissions channel moderation governs, in Mattermost's order.
const MODERATIONS: &[&str] = &[
    "create_post",
    "create_reactions",
    "manage_members",
    "use_channel_mentions",
    "manage_bookmarks",
];

/// A guest may hold every moderated permission but `manage_members`.
fn guests_apply(name: &str) -> bool {
    name != "manage_members"
}

/// The channel's moderations: for members and guests, whether they hold
/// each permission here (`value`) and whether the channel may change it
/// (`enabled`: the team's scheme grants it, always so in the shim).
fn moderations_of(shim: &Shim, channel: &Channel) -> Result<Value> {
    let mut list = Vec::new();
    for name in MODERATIONS {
        let value = |role: &str| -> Result<bool> {
            Ok(shim
                .app
                .store
                .channel_moderation(&channel.id, role, name)
                .map_err(|e| ApiError::store("app.channel.get_moderations.app_error", e))?
                .unwrap_or(true))
        };
        let guests = if guests_apply(name) {
            json!({"value": value("guests")?, "enabled": true})
        } else {
            Value::Null
        };
        list.push(json!({
            "name": name,
            "roles": {
                "guests": guests,
                "members": {"value": value("members")?, "enabled": true},
            },
        }));
    }
    Ok(Value::Array(list))
}

fn require_channel_admin_console(shim: &Shim, session: &str) -> Result<()> {
    // sysconsole_*_user_management_channels: system admins only here.
    require(shim, session, "manage_system", Scope::System)
}

async fn moderations(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require_channel_admin_console(&shim, &session)?;
    let channel = load(&shim, &channel_id)?;
    Ok(json_response(
        StatusCode::OK,
        moderations_of(&shim, &channel)?,
    ))
}

#[derive(Deserialize)]
struct ModerationPatch {
    name: String,
    #[serde(default)]
    roles: RolesPatch,
}

#[derive(Deserialize, Default)]
struct RolesPatch {
    members: Option<bool>,
    guests: Option<bool>,
}

/// `PUT /channels/{id}/moderations/patch`: `[{name, roles: {members, guests}}]`.
/// Taking `create_post` from members makes the channel read-only: their
/// posts and slash commands there are refused with 403.
async fn patch_moderations(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
    body: Body,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require_channel_admin_console(&shim, &session)?;
    let channel = load(&shim, &channel_id)?;
    let patches: Vec<ModerationPatch> = json_body(&shim, body, "channel_moderations_patch").await?;
    for patch in &patches {
        // Unknown names change nothing, as in Mattermost.
        if !MODERATIONS.contains(&patch.name.as_str()) {
            continue;
        }
        let roles = [
            ("members", patch.roles.members),
            ("guests", patch.roles.guests),
        ];
        for (role, allowed) in roles {
            let Some(allowed) = allowed else { continue };
            if role == "guests" && !guests_apply(&patch.name) {
                continue;
            }
            // Granting back what the scheme grants removes the override.
            let stored = (!allowed).then_some(false);
            let (app, id, name) = (shim.app.clone(), channel.id.clone(), patch.name.clone());
            tokio::task::spawn_blocking(move || {
                app.store.set_channel_moderation(&id, role, &name, stored)
            })
            .await
            .map_err(|e| {
                ApiError::new(
                    500,
                    "app.channel.patch_moderations.app_error",
                    e.to_string(),
                )
            })?
            .map_err(|e| ApiError::store("app.channel.patch_moderations.app_error", e))?;
        }
    }
    Ok(json_response(
        StatusCode::OK,
        moderations_of(&shim, &channel)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::permissions::MODERATED;

    #[test]
    fn every_permission_the_checks_moderate_is_patchable() {
        assert!(MODERATED.iter().all(|(_, m)| MODERATIONS.contains(m)));
    }
}
