//! A webhook as a handle (our extension): `PATCH` and `DELETE /hooks/{id}/posts/{post_id}`
//! edit and delete a post the hook made, authenticated by the hook URL itself. The post's
//! id carries the hook's tag (`ids::tagged`), so no list of a hook's posts is kept.

use super::execute::{post_json, processed_content};
use super::payload::parse_incoming;
use super::{HOOKS, IncomingWebhook};
use crate::api::{ApiError, Request, Response};
use crate::host::{Host, Post};
use crate::ids;
use crate::slack::blocks::FALLBACK_PROP;
use crate::slack::text::links_strict;
use crate::webhook_post::finish_attachments;
use serde_json::{Map, Value};

/// `PATCH`: the body is a webhook payload; its text and attachments replace the post's.
pub fn edit(
    host: &dyn Host,
    req: &Request,
    hook_id: &str,
    post_id: &str,
) -> Result<Response, ApiError> {
    let (hook, mut post) = own_post(host, hook_id, post_id)?;
    let payload = parse_incoming(req.header("content-type"), &req.body).map_err(|e| {
        ApiError::new(
            400,
            "model.incoming_hook.parse_data.app_error",
            "Unable to parse incoming data.",
        )
        .with_detail(e.to_string())
    })?;
    if payload.text.is_empty() && payload.attachments.is_empty() {
        return Err(ApiError::new(
            400,
            "web.incoming_webhook.text.app_error",
            "No text specified.",
        ));
    }
    let fallback = payload
        .props
        .as_ref()
        .and_then(|p| p.get(FALLBACK_PROP))
        .cloned();
    let (text, mut attachments) = processed_content(host, &hook, payload.text, payload.attachments);
    let message = links_strict(&text);
    finish_attachments(&mut attachments);
    let max = host.settings().max_post_size.max(1) as usize;
    if message.chars().count() > max {
        return Err(ApiError::new(
            400,
            "web.incoming_webhook.edit_too_long.app_error",
            format!("An edited webhook post must fit in one post of {max} characters."),
        ));
    }
    let mut props: Map<String, Value> = serde_json::from_str(&post.props).unwrap_or_default();
    props.remove("attachments");
    props.remove(FALLBACK_PROP);
    if let Some(fallback) = fallback {
        props.insert(FALLBACK_PROP.to_owned(), fallback);
    }
    if attachments.is_empty() {
        if post.post_type == "slack_attachment" {
            post.post_type = String::new();
        }
    } else {
        props.insert(
            "attachments".to_owned(),
            serde_json::to_value(&attachments).unwrap_or(Value::Null),
        );
        post.post_type = "slack_attachment".to_owned();
    }
    post.message = message;
    post.props = Value::Object(props).to_string();
    let updated = host
        .update_post(post)
        .map_err(|e| ApiError::host("web.incoming_webhook.edit.app_error", &e))?;
    Ok(Response::json(200, &post_json(&updated)))
}

/// `DELETE`: the post (and, for a root, its thread) goes, as if its author deleted it.
pub fn delete(host: &dyn Host, hook_id: &str, post_id: &str) -> Result<Response, ApiError> {
    let (_, post) = own_post(host, hook_id, post_id)?;
    host.delete_post(&post.id)
        .map_err(|e| ApiError::host("web.incoming_webhook.delete.app_error", &e))?;
    Ok(Response::status_ok())
}

/// The hook and one of its live posts. Any other post answers as a missing one, so the
/// route tells nothing about posts that are not the hook's.
fn own_post(
    host: &dyn Host,
    hook_id: &str,
    post_id: &str,
) -> Result<(IncomingWebhook, Post), ApiError> {
    if !host.settings().enable_incoming_webhooks {
        return Err(ApiError::new(
            501,
            "web.incoming_webhook.disabled.app_error",
            "Incoming webhooks have been disabled by the system admin.",
        ));
    }
    let hook: IncomingWebhook = HOOKS.get(host, hook_id).ok().flatten().ok_or_else(|| {
        ApiError::new(
            400,
            "web.incoming_webhook.invalid.app_error",
            "Invalid webhook.",
        )
    })?;
    let missing = || {
        ApiError::new(
            404,
            "web.incoming_webhook.post_not_found.app_error",
            "This webhook made no such post.",
        )
    };
    if !ids::has_tag(post_id, &hook.id) {
        return Err(missing());
    }
    let post = host.post(post_id).map_err(|_| missing())?;
    if post.delete_at != 0 {
        return Err(missing());
    }
    Ok((hook, post))
}
