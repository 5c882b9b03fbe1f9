//! `/api/v4/hooks/outgoing[/{id}]`: create, read, update, delete, list and
//! regenerate tokens, with Mattermost's permission, channel and uniqueness rules.

use super::fire::signing_of;
use super::{HOOKS, OutgoingWebhook, deliveries};
use crate::api::{ApiError, Request, Response, json_body, require_permission};
use crate::definitions::{self, Definition};
use crate::host::{ChannelType, Host, PermissionScope};
use crate::ids;

fn require_enabled(host: &dyn Host) -> Result<(), ApiError> {
    if host.settings().enable_outgoing_webhooks {
        Ok(())
    } else {
        Err(ApiError::new(
            501,
            "api.outgoing_webhook.disabled.app_error",
            "Outgoing webhooks have been disabled by the system admin.",
        ))
    }
}

/// The channel rules shared by create and update; only the ids differ.
fn check_channel(
    host: &dyn Host,
    hook: &OutgoingWebhook,
    not_open_id: &str,
) -> Result<(), ApiError> {
    if hook.channel_id.is_empty() {
        return Ok(());
    }
    let channel = host
        .channel(&hook.channel_id)
        .map_err(|e| ApiError::host("app.channel.get.existing.app_error", &e))?;
    if channel.channel_type != ChannelType::Open {
        return Err(ApiError::new(
            403,
            not_open_id,
            "Outgoing webhooks can only be created for public channels.",
        ));
    }
    if channel.team_id != hook.team_id {
        return Err(ApiError::new(
            403,
            "api.webhook.create_outgoing.permissions.app_error",
            "Invalid permissions to create outgoing webhook.",
        ));
    }
    Ok(())
}

fn check_unique(
    host: &dyn Host,
    hook: &OutgoingWebhook,
    status: u16,
    id: &str,
) -> Result<(), ApiError> {
    let clash = HOOKS
        .find::<OutgoingWebhook>(host, &[crate::store::team_term(&hook.team_id)])?
        .iter()
        .any(|other| hook.intersects(other));
    if clash {
        return Err(ApiError::new(
            status,
            id,
            "Outgoing webhooks from the same channel cannot have the same trigger words/callback URLs.",
        ));
    }
    Ok(())
}

fn triggers_missing(status: u16) -> ApiError {
    ApiError::new(
        status,
        "api.webhook.create_outgoing.triggers.app_error",
        "Either trigger_words or channel_id must be set.",
    )
}

pub fn create(host: &dyn Host, req: &Request) -> Result<Response, ApiError> {
    let session = req.session_user()?;
    let mut hook: OutgoingWebhook = json_body(req, "outgoing_webhook")?;
    let team = PermissionScope::Team(hook.team_id.clone());
    require_permission(host, session, OutgoingWebhook::MANAGE_OWN, &team)?;
    if hook.creator_id.is_empty() {
        hook.creator_id = session.to_string();
    } else if hook.creator_id != session {
        require_permission(host, session, OutgoingWebhook::MANAGE_OTHERS, &team)?;
        host.user(&hook.creator_id)
            .map_err(|e| ApiError::host("api.user.get.app_error", &e))?;
    }
    require_enabled(host)?;
    check_channel(host, &hook, "api.outgoing_webhook.disabled.app_error")?;
    if hook.channel_id.is_empty() && hook.trigger_words.is_empty() {
        return Err(triggers_missing(400));
    }
    check_unique(
        host,
        &hook,
        500,
        "api.webhook.create_outgoing.intersect.app_error",
    )?;

    let now = host.now_millis();
    hook.id = ids::new_id();
    if hook.token.is_empty() {
        hook.token = ids::new_id();
    }
    hook.signing_secret = ids::new_secret();
    hook.webhook_secrets = vec![ids::new_webhook_secret()];
    hook.failing = false;
    hook.create_at = now;
    hook.update_at = now;
    hook.delete_at = 0;
    hook.validate()?;
    HOOKS.put(host, &hook.id, &hook)?;
    Ok(Response::json(201, &hook))
}

fn load_managed(host: &dyn Host, req: &Request, id: &str) -> Result<OutgoingWebhook, ApiError> {
    definitions::load_managed(host, req, id, require_enabled)
}

pub fn get(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    Ok(Response::json(200, &load_managed(host, req, id)?))
}

pub fn update(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    let mut updated: OutgoingWebhook = json_body(req, "outgoing_webhook")?;
    if updated.id != id {
        return Err(ApiError::invalid_param("hook_id"));
    }
    let old = load_managed(host, req, id)?;
    updated.team_id = old.team_id.clone();
    check_channel(
        host,
        &updated,
        "api.webhook.create_outgoing.not_open.app_error",
    )?;
    if updated.channel_id.is_empty() && updated.trigger_words.is_empty() {
        return Err(triggers_missing(500));
    }
    check_unique(
        host,
        &updated,
        400,
        "api.webhook.update_outgoing.intersect.app_error",
    )?;
    updated.creator_id = old.creator_id;
    updated.token = old.token;
    updated.signing_secret = old.signing_secret;
    updated.webhook_secrets = old.webhook_secrets;
    updated.failing = old.failing;
    updated.create_at = old.create_at;
    updated.delete_at = 0;
    updated.update_at = host.now_millis().max(old.update_at + 1);
    updated.validate()?;
    HOOKS.put(host, &updated.id, &updated)?;
    Ok(Response::json(200, &updated))
}

pub fn delete(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    let hook = load_managed(host, req, id)?;
    HOOKS.delete(host, &hook.id)?;
    // Its pending deliveries would otherwise keep retrying for a day.
    host.cancel_deliveries(&hook.id)
        .map_err(|e| ApiError::host("app.webhooks.delivery.cancel.app_error", &e))?;
    deliveries::forget(host, &hook.id)?;
    Ok(Response::status_ok())
}

pub fn regen_token(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    let mut hook = load_managed(host, req, id)?;
    hook.token = ids::new_id();
    hook.update_at = host.now_millis().max(hook.update_at + 1);
    HOOKS.put(host, &hook.id, &hook)?;
    Ok(Response::json(200, &hook))
}

pub fn list_deliveries(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    let hook = load_managed(host, req, id)?;
    Ok(Response::json(200, &deliveries::recent(host, &hook.id)?))
}

/// `POST /api/v4/hooks/outgoing/{id}/deliveries/{delivery_id}/redeliver`:
/// sends a settled delivery again, as a new delivery (new id) with the same
/// request, so the receiver sees a new delivery and its answer posts anew.
/// It is signed with the hook's secrets now: after a rotation, the new one.
pub fn redeliver(
    host: &dyn Host,
    req: &Request,
    id: &str,
    delivery_id: &str,
) -> Result<Response, ApiError> {
    let hook = load_managed(host, req, id)?;
    let known = deliveries::recent(host, &hook.id)?
        .into_iter()
        .find(|d| d.id == delivery_id);
    let Some(delivery) = known else {
        return Err(ApiError::new(
            404,
            "app.webhooks.delivery.not_found.app_error",
            "No such delivery for this webhook.",
        ));
    };
    if delivery.state == deliveries::RETRYING {
        return Err(ApiError::new(
            400,
            "app.webhooks.delivery.pending.app_error",
            "The delivery is still being retried.",
        ));
    }
    let new_id = ids::new_id();
    host.redeliver(&hook.id, delivery_id, &new_id, signing_of(&hook))
        .map_err(|e| ApiError::host("app.webhooks.delivery.redeliver.app_error", &e))?;
    Ok(Response::json(
        200,
        &serde_json::json!({"delivery_id": new_id, "redelivery_of": delivery_id}),
    ))
}

/// `POST /api/v4/hooks/outgoing/{id}/rotate_secret`: a new Standard Webhooks
/// secret; the previous one keeps signing beside it until the next rotation.
pub fn rotate_secret(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    let mut hook = load_managed(host, req, id)?;
    hook.webhook_secrets.insert(0, ids::new_webhook_secret());
    hook.webhook_secrets.truncate(2);
    hook.update_at = host.now_millis().max(hook.update_at + 1);
    HOOKS.put(host, &hook.id, &hook)?;
    Ok(Response::json(200, &hook))
}

pub fn list(host: &dyn Host, req: &Request) -> Result<Response, ApiError> {
    let channel_id = req.query_param("channel_id").unwrap_or_default();
    let mut team_id = req.query_param("team_id").unwrap_or_default();
    if !channel_id.is_empty() {
        let channel = host
            .channel(&channel_id)
            .map_err(|e| ApiError::host("app.channel.get.existing.app_error", &e))?;
        team_id = channel.team_id;
    }
    let scope = if team_id.is_empty() {
        PermissionScope::System
    } else {
        PermissionScope::Team(team_id.clone())
    };
    let within = if channel_id.is_empty() {
        definitions::Within::team(&team_id, req.user_id.as_deref())
    } else {
        definitions::Within::Narrowed(vec![super::model::channel_term(&channel_id)])
    };
    let page = definitions::counted_page(
        host,
        req,
        &scope,
        &within,
        require_enabled,
        |h: &OutgoingWebhook| {
            (team_id.is_empty() || h.team_id == team_id)
                && (channel_id.is_empty() || h.channel_id == channel_id)
        },
    )?;
    Ok(definitions::list_response(req, "outgoing_webhooks", page))
}
