//! `POST /hooks/{id}`: decode what the sender posted, find the hook, resolve
//! the channel, and create the post(s). Errors carry Mattermost's wrapper ids.

use super::payload::{IncomingRequest, PayloadError, parse_incoming};
use super::{HOOKS, IncomingWebhook};
use crate::api::{ApiError, Request, Response};
use crate::host::{Channel, ChannelType, Host, PermissionScope};
use crate::slack::text::{announcements_and_mentions, translate_attachments};
use crate::webhook_post::{WebhookPost, create_webhook_post};

pub fn handle(host: &dyn Host, req: &Request, hook_id: &str) -> Response {
    let developer = host.settings().enable_developer;
    match run(host, req, hook_id) {
        Ok(()) => Response::text(200, "ok"),
        Err(err) => err.into_response(&req.request_id, developer),
    }
}

/// The media type as Mattermost names it in messages: lower-cased, no parameters.
fn media_type(req: &Request) -> String {
    req.header("content-type")
        .and_then(|ct| ct.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Each stage wraps its cause under its own id, in Mattermost's order: the
/// body is decoded before the hook is even looked up.
fn run(host: &dyn Host, req: &Request, hook_id: &str) -> Result<(), ApiError> {
    // Mattermost's request context rewrites the handler's wrapped size
    // error to its own id, whatever the content type.
    if req.body_too_large {
        return Err(ApiError::body_too_large());
    }
    let media = media_type(req);
    let payload = parse_incoming(req.header("content-type"), &req.body).map_err(|e| {
        let (id, message) = match &e {
            PayloadError::ParseForm(_) => (
                "web.incoming_webhook.parse_form.app_error",
                format!("Failed to parse form for webhook {hook_id}."),
            ),
            PayloadError::ParseMultipart(_) => (
                "web.incoming_webhook.parse_multipart.app_error",
                format!("Failed to parse multipart form for webhook {hook_id}."),
            ),
            PayloadError::Decode(_) => (
                "web.incoming_webhook.decode.app_error",
                format!(
                    "Failed to decode the payload of media type {media} for incoming webhook {hook_id}."
                ),
            ),
        };
        ApiError::new(
            400,
            "model.incoming_hook.parse_data.app_error",
            "Unable to parse incoming data.",
        )
        .with_detail(e.to_string())
        .wrap(id, message)
    })?;
    deliver(host, hook_id, payload).map_err(|e| {
        e.wrap(
            "web.incoming_webhook.general.app_error",
            format!(
                "Failed to handle the payload of media type {media} for incoming webhook {hook_id}."
            ),
        )
    })
}

fn error(status: u16, id: &str, message: &str) -> ApiError {
    ApiError::new(status, id, message)
}

/// Mattermost's `HandleIncomingWebhook`, step by step.
fn deliver(host: &dyn Host, hook_id: &str, payload: IncomingRequest) -> Result<(), ApiError> {
    if !host.settings().enable_incoming_webhooks {
        return Err(error(
            501,
            "web.incoming_webhook.disabled.app_error",
            "Incoming webhooks have been disabled by the system admin.",
        ));
    }
    if payload.text.is_empty() && payload.attachments.is_empty() {
        return Err(error(
            400,
            "web.incoming_webhook.text.app_error",
            "No text specified.",
        ));
    }
    let hook: IncomingWebhook = HOOKS.get(host, hook_id).ok().flatten().ok_or_else(|| {
        error(
            400,
            "web.incoming_webhook.invalid.app_error",
            "Invalid webhook.",
        )
    })?;

    let username_of = |id: &str| host.user(id).ok().map(|u| u.username);
    let text = announcements_and_mentions(&payload.text, &username_of);
    let mut attachments = payload.attachments;
    translate_attachments(&mut attachments, &username_of);
    // Attachments force the type, whatever the sender asked for.
    let post_type = if attachments.is_empty() {
        payload.post_type
    } else {
        "slack_attachment".to_string()
    };

    let channel = resolve_channel(host, &hook, &payload.channel)?;
    if hook.channel_locked && channel.id != hook.channel_id {
        return Err(error(
            403,
            "web.incoming_webhook.channel_locked.app_error",
            "This webhook is not permitted to post to the requested channel.",
        ));
    }
    host.user(&hook.user_id).map_err(|_| {
        error(
            403,
            "web.incoming_webhook.user.app_error",
            "The webhook's owner could not be found.",
        )
    })?;
    if channel.channel_type != ChannelType::Open {
        let scope = PermissionScope::Channel(channel.id.clone());
        if !host
            .has_permission(&hook.user_id, "read_channel_content", &scope)
            .unwrap_or(false)
        {
            return Err(error(
                403,
                "web.incoming_webhook.permissions.app_error",
                "Inappropriate channel permissions.",
            ));
        }
    }
    let root_id = check_root(host, &payload.root_id, &channel)?;

    create_webhook_post(
        host,
        WebhookPost {
            user_id: hook.user_id.clone(),
            channel_id: channel.id,
            root_id,
            text,
            post_type,
            props: payload.props.unwrap_or_default(),
            attachments,
            username: or_else(payload.username, &hook.username),
            icon_url: or_else(payload.icon_url, &hook.icon_url),
            icon_emoji: payload.icon_emoji,
            display_name: hook.display_name,
            priority: payload.priority,
            id_seed: None,
            // Incoming webhooks have no secret to sign clicks with.
            signer: String::new(),
        },
    )?;
    Ok(())
}

fn or_else(value: String, fallback: &str) -> String {
    if value.is_empty() {
        fallback.to_string()
    } else {
        value
    }
}

/// The `channel` override: empty for the hook's channel, `@user` for a direct
/// channel with the hook's owner, else a channel name with or without `#`.
fn resolve_channel(
    host: &dyn Host,
    hook: &IncomingWebhook,
    wanted: &str,
) -> Result<Channel, ApiError> {
    if wanted.is_empty() {
        return host
            .channel(&hook.channel_id)
            .map_err(|e| ApiError::host("app.channel.get.existing.app_error", &e));
    }
    if let Some(username) = wanted.strip_prefix('@') {
        let user = host
            .user_by_username(&username.to_lowercase())
            .map_err(|_| {
                error(
                    400,
                    "web.incoming_webhook.user.app_error",
                    "Couldn't find the user.",
                )
            })?;
        return host
            .direct_channel(&hook.user_id, &user.id)
            .map_err(|e| ApiError::host("web.incoming_webhook.channel.app_error", &e));
    }
    let name = wanted.strip_prefix('#').unwrap_or(wanted);
    host.channel_by_name(&hook.team_id, name)
        .or_else(|_| host.channel_by_name("", name))
        .map_err(|_| {
            error(
                404,
                "web.incoming_webhook.channel.app_error",
                "Couldn't find the channel.",
            )
        })
}

/// `root_id` (our addition): the post goes into that thread, whose root must
/// be a root post in the target channel.
fn check_root(host: &dyn Host, root_id: &str, channel: &Channel) -> Result<String, ApiError> {
    if root_id.is_empty() {
        return Ok(String::new());
    }
    let invalid = || {
        error(
            400,
            "web.incoming_webhook.root_id.app_error",
            "The root_id must be a root post in the webhook's channel.",
        )
    };
    let root = host.post(root_id).map_err(|_| invalid())?;
    if root.channel_id != channel.id || !root.root_id.is_empty() || root.delete_at != 0 {
        return Err(invalid());
    }
    Ok(root.id)
}
