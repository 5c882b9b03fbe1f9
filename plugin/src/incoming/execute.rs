//! `POST /hooks/{id}`: decode what the sender posted, find the hook, resolve
//! the channel, and create the post(s). Errors carry Mattermost's wrapper ids.

use super::{HOOKS, IncomingWebhook};
use crate::api::{ApiError, Request, Response};
use crate::host::{ChannelType, Host, PermissionScope, new_post};
use serde::Deserialize;

/// The sender's payload. Only plain text for now; the full Slack-compatible
/// payload is decoded by its own module.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Payload {
    text: String,
}

pub fn handle(host: &dyn Host, req: &Request, hook_id: &str) -> Response {
    let developer = host.settings().enable_developer;
    match run(host, req, hook_id) {
        Ok(()) => Response::text(200, "ok"),
        Err(err) => err.into_response(&req.request_id, developer),
    }
}

fn media_type(req: &Request) -> String {
    req.header("content-type")
        .and_then(|ct| ct.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn run(host: &dyn Host, req: &Request, hook_id: &str) -> Result<(), ApiError> {
    if req.body_too_large {
        return Err(ApiError::body_too_large().wrap(
            "web.incoming_webhook.parse_form.app_error",
            format!("Failed to parse form for webhook {hook_id}."),
        ));
    }
    let media = media_type(req);
    let payload = decode(&req.body).map_err(|e| {
        e.wrap(
            "web.incoming_webhook.decode.app_error",
            format!(
                "Failed to decode the payload of media type {media} for incoming webhook {hook_id}."
            ),
        )
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

fn decode(body: &[u8]) -> Result<Payload, ApiError> {
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Payload>();
    match stream.next() {
        Some(Ok(payload)) => Ok(payload),
        Some(Err(e)) => Err(parse_error(e.to_string())),
        None => Err(parse_error("empty body".into())),
    }
}

fn parse_error(detail: String) -> ApiError {
    ApiError::new(
        400,
        "model.incoming_hook.parse_data.app_error",
        "Unable to parse incoming data.",
    )
    .with_detail(detail)
}

fn deliver(host: &dyn Host, hook_id: &str, payload: Payload) -> Result<(), ApiError> {
    if !host.settings().enable_incoming_webhooks {
        return Err(ApiError::new(
            501,
            "web.incoming_webhook.disabled.app_error",
            "Incoming webhooks have been disabled by the system admin.",
        ));
    }
    if payload.text.is_empty() {
        return Err(ApiError::new(
            400,
            "web.incoming_webhook.text.app_error",
            "No text specified.",
        ));
    }
    let hook: IncomingWebhook = HOOKS.get(host, hook_id).ok().flatten().ok_or_else(|| {
        ApiError::new(
            400,
            "web.incoming_webhook.invalid.app_error",
            "Invalid webhook.",
        )
    })?;
    let channel = host
        .channel(&hook.channel_id)
        .map_err(|e| ApiError::host("app.channel.get.existing.app_error", &e))?;
    host.user(&hook.user_id).map_err(|_| {
        ApiError::new(
            403,
            "web.incoming_webhook.user.app_error",
            "The webhook's owner could not be found.",
        )
    })?;
    if channel.channel_type != ChannelType::Open {
        let allowed = host
            .has_permission(
                &hook.user_id,
                "read_channel_content",
                &PermissionScope::Channel(channel.id.clone()),
            )
            .unwrap_or(false);
        if !allowed {
            return Err(ApiError::new(
                403,
                "web.incoming_webhook.permissions.app_error",
                "Inappropriate channel permissions.",
            ));
        }
    }
    let mut post = new_post(&hook.user_id, &channel.id, payload.text);
    post.props = serde_json::json!({
        "from_webhook": "true",
        "webhook_display_name": hook.display_name,
    })
    .to_string();
    host.create_post(post).map_err(|e| {
        ApiError::host("api.post.create_webhook_post.creating.app_error", &e).with_status(500)
    })?;
    Ok(())
}
