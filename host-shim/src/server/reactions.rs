//! Emoji reactions (`/api/v4/reactions`, a post's reactions, removing one):
//! how bots and people acknowledge a post. Only those who may react in the
//! post's channel (its members) may; every change is told to the channel's
//! readers as `reaction_added` / `reaction_removed`.

use super::rest::{Result, json_body, json_response, require, resolve_me};
use super::{ApiError, Shim};
use crate::app::Scope;
use crate::store::{Post, Reaction, valid_id};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<Shim> {
    Router::new()
        .route("/api/v4/reactions", post(save))
        .route("/api/v4/posts/{post_id}/reactions", get(for_post))
        .route(
            "/api/v4/users/{user_id}/posts/{post_id}/reactions/{emoji_name}",
            delete(remove),
        )
}

/// Mattermost's `EmojiNameMaxLength`.
const EMOJI_NAME_MAX: usize = 64;

/// How many different emoji one post may carry (Mattermost's default
/// `UniqueEmojiReactionLimitPerPost`).
const UNIQUE_EMOJI_PER_POST: u32 = 50;

/// Mattermost's emoji name pattern: letters, digits, `-`, `+` and `_`.
fn valid_emoji_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= EMOJI_NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-+_".contains(&b))
}

/// The post, once the session holds `permission` in its channel; a missing
/// post is the same permission error, as in Mattermost.
fn post_with(shim: &Shim, session: &str, post_id: &str, permission: &str) -> Result<Post> {
    let denied = || ApiError::forbidden().detail(format!("missing permission {permission}"));
    let post = shim.app.store.post(post_id).map_err(|_| denied())?;
    require(
        shim,
        session,
        permission,
        Scope::Channel(post.channel_id.clone()),
    )?;
    Ok(post)
}

/// Reactions change nothing in an archived channel.
fn check_not_archived(shim: &Shim, post: &Post, id: &str) -> Result<()> {
    let channel = shim
        .app
        .store
        .channel(&post.channel_id)
        .map_err(|e| ApiError::store("app.channel.get.existing.app_error", e))?;
    if channel.delete_at != 0 {
        return Err(ApiError::new(
            403,
            id,
            "Unable to react in an archived channel.",
        ));
    }
    Ok(())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewReaction {
    user_id: String,
    post_id: String,
    emoji_name: String,
}

/// `POST /reactions`: the session's reaction to a post; answers it.
async fn save(State(shim): State<Shim>, headers: HeaderMap, body: Body) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let new: NewReaction = json_body(&shim, body, "reaction").await?;
    if !valid_id(&new.user_id)
        || !valid_id(&new.post_id)
        || new.emoji_name.is_empty()
        || new.emoji_name.len() > EMOJI_NAME_MAX
    {
        return Err(ApiError::new(
            400,
            "api.reaction.save_reaction.invalid.app_error",
            "Reaction is not valid.",
        ));
    }
    if new.user_id != session {
        return Err(ApiError::new(
            403,
            "api.reaction.save_reaction.user_id.app_error",
            "You cannot save reaction for the other user.",
        ));
    }
    let post = post_with(&shim, &session, &new.post_id, "add_reaction")?;
    // Only system emoji exist here (the shim has no custom emoji); their
    // names all pass Mattermost's emoji name pattern.
    if emojis::get_by_shortcode(&new.emoji_name).is_none() {
        return Err(ApiError::new(
            404,
            "app.emoji.get_by_name.no_result",
            "Unable to find the emoji.",
        ));
    }
    let store = &shim.app.store;
    let (count, existing) = store
        .reaction_emoji_count(&post.id, &new.emoji_name)
        .map_err(|e| ApiError::store("app.reaction.save.save.app_error", e))?;
    if !existing && count >= UNIQUE_EMOJI_PER_POST {
        return Err(ApiError::new(
            400,
            "app.reaction.save.save.too_many_reactions",
            "Reaction limit has been reached for this post.",
        ));
    }
    check_not_archived(&shim, &post, "api.reaction.save.archived_channel.app_error")?;
    let reaction = store
        .save_reaction(&Reaction {
            user_id: session,
            post_id: post.id.clone(),
            emoji_name: new.emoji_name,
            channel_id: post.channel_id.clone(),
            create_at: shim.app.clock.now_millis(),
        })
        .map_err(|e| ApiError::store("app.reaction.save.save.app_error", e))?;
    let json = reaction.to_json();
    shim.app.events.reaction(true, &json, &post.channel_id);
    Ok(json_response(StatusCode::OK, json))
}

/// `GET /posts/{post_id}/reactions`: everyone's reactions, oldest first.
async fn for_post(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(post_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    if !valid_id(&post_id) {
        return Err(ApiError::invalid_url_param("post_id"));
    }
    let post = post_with(&shim, &session, &post_id, "read_channel_content")?;
    let reactions = shim
        .app
        .store
        .reactions_for_post(&post.id)
        .map_err(|e| ApiError::store("app.reaction.get_for_post.app_error", e))?;
    Ok(json_response(
        StatusCode::OK,
        Value::Array(reactions.iter().map(Reaction::to_json).collect()),
    ))
}

/// `DELETE /users/{user_id}/posts/{post_id}/reactions/{emoji_name}`: one's
/// own reaction, or anyone's with `remove_others_reactions` (admins).
async fn remove(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path((user_id, post_id, emoji_name)): Path<(String, String, String)>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let user_id = resolve_me(user_id, &session);
    for (name, value) in [("user_id", &user_id), ("post_id", &post_id)] {
        if !valid_id(value) {
            return Err(ApiError::invalid_url_param(name));
        }
    }
    if !valid_emoji_name(&emoji_name) {
        return Err(ApiError::invalid_url_param("emoji_name"));
    }
    let post = post_with(&shim, &session, &post_id, "remove_reaction")?;
    if user_id != session {
        require(&shim, &session, "remove_others_reactions", Scope::System)?;
    }
    check_not_archived(
        &shim,
        &post,
        "api.reaction.delete.archived_channel.app_error",
    )?;
    let now = shim.app.clock.now_millis();
    let reaction = Reaction {
        user_id,
        post_id: post.id.clone(),
        emoji_name,
        channel_id: post.channel_id.clone(),
        create_at: now,
    };
    shim.app
        .store
        .delete_reaction(
            &reaction.post_id,
            &reaction.user_id,
            &reaction.emoji_name,
            now,
        )
        .map_err(|e| {
            ApiError::store(
                "app.reaction.delete_all_with_emoji_name.get_reactions.app_error",
                e,
            )
        })?;
    shim.app
        .events
        .reaction(false, &reaction.to_json(), &post.channel_id);
    Ok(json_response(StatusCode::OK, json!({"status": "OK"})))
}
