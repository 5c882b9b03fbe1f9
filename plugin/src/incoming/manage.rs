//! `/api/v4/hooks/incoming[/{id}]`: create, read, update, delete and list
//! incoming webhooks, with Mattermost's permission and validation rules.

use super::model::{SOURCE_SECRET_PURPOSE, is_valid_username};
use super::{HOOKS, IncomingWebhook};
use crate::api::{ApiError, Request, Response, json_body, require_permission};
use crate::definitions::{self, Definition};
use crate::host::{Channel, ChannelType, Host, PermissionScope};
use crate::ids;

const BYPASS_LOCK: &str = "bypass_incoming_webhook_channel_lock";

fn require_enabled(host: &dyn Host) -> Result<(), ApiError> {
    if host.settings().enable_incoming_webhooks {
        Ok(())
    } else {
        Err(ApiError::new(
            501,
            "api.incoming_webhook.disabled.app_error",
            "Incoming webhooks have been disabled by the system admin.",
        ))
    }
}

fn load_channel(host: &dyn Host, id: &str) -> Result<Channel, ApiError> {
    if !ids::is_valid(id) {
        return Err(ApiError::invalid_param("channel_id"));
    }
    host.channel(id)
        .map_err(|e| ApiError::host("app.channel.get.existing.app_error", &e))
}

/// The checks Mattermost makes on the channel a hook posts to, for the
/// session user: manage rights there, and read rights when it is not public.
fn check_channel_access(host: &dyn Host, user: &str, channel: &Channel) -> Result<(), ApiError> {
    let scope = PermissionScope::Channel(channel.id.clone());
    require_permission(host, user, IncomingWebhook::MANAGE_OWN, &scope)?;
    if channel.channel_type != ChannelType::Open {
        require_permission(host, user, "read_channel_content", &scope)?;
    }
    Ok(())
}

fn can_bypass_lock(host: &dyn Host, user: &str, channel: &Channel) -> bool {
    host.has_permission(
        user,
        BYPASS_LOCK,
        &PermissionScope::Channel(channel.id.clone()),
    )
    .unwrap_or(false)
}

/// Applies the override settings and the username rule, as Mattermost does on
/// both create and update (`previous` is the stored hook on update).
fn apply_overrides(
    host: &dyn Host,
    hook: &mut IncomingWebhook,
    previous: Option<&IncomingWebhook>,
) -> Result<(), ApiError> {
    let settings = host.settings();
    if !settings.enable_post_username_override {
        hook.username = previous.map(|p| p.username.clone()).unwrap_or_default();
    }
    if !settings.enable_post_icon_override {
        hook.icon_url = previous.map(|p| p.icon_url.clone()).unwrap_or_default();
    }
    if !hook.username.is_empty() && !is_valid_username(&hook.username) {
        return Err(ApiError::new(
            400,
            "api.incoming_webhook.invalid_username.app_error",
            "Invalid username.",
        ));
    }
    Ok(())
}

pub fn create(host: &dyn Host, req: &Request) -> Result<Response, ApiError> {
    let session = req.session_user()?;
    let mut hook: IncomingWebhook = json_body(req, "incoming_webhook")?;
    let channel = load_channel(host, &hook.channel_id)?;
    check_channel_access(host, session, &channel)?;

    let owner = if hook.user_id.is_empty() || hook.user_id == session {
        session.to_string()
    } else {
        require_permission(
            host,
            session,
            IncomingWebhook::MANAGE_OTHERS,
            &PermissionScope::Channel(channel.id.clone()),
        )?;
        host.user(&hook.user_id)
            .map_err(|e| ApiError::host("api.user.get.app_error", &e))?
            .id
    };
    if !can_bypass_lock(host, session, &channel) {
        hook.channel_locked = true;
    }
    require_enabled(host)?;
    apply_overrides(host, &mut hook, None)?;

    let now = host.now_millis();
    hook.id = ids::new_id();
    hook.user_id = owner;
    hook.team_id = channel.team_id.clone();
    hook.create_at = now;
    hook.update_at = now;
    hook.delete_at = 0;
    seal_source_secret(host, &mut hook, None);
    hook.validate()?;
    HOOKS.put(host, &hook.id, &hook)?;
    Ok(Response::json(201, &hook.public_json()))
}

fn load_managed(host: &dyn Host, req: &Request, id: &str) -> Result<IncomingWebhook, ApiError> {
    definitions::load_managed(host, req, id, require_enabled)
}

/// The hook, with our `stats`.
pub fn get(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    let hook = load_managed(host, req, id)?;
    Ok(Response::json(200, &with_stats(host, &hook)))
}

/// A hook's JSON with `stats`: what the host has counted for it (kept across
/// restarts; zeros before its first request).
fn with_stats(host: &dyn Host, hook: &IncomingWebhook) -> serde_json::Value {
    let mut json = hook.public_json();
    let ms = |us: u64| us as f64 / 1000.0;
    json["stats"] = match host.metric_get(&super::metric_key(&hook.id)) {
        Some(s) => serde_json::json!({
            "requests": s.requests,
            "posts": s.posts,
            "failures": s.failures,
            "last_used_at": s.last_at,
            "latency_p50_ms": ms(s.p50_us),
            "latency_p99_ms": ms(s.p99_us),
        }),
        None => serde_json::json!({
            "requests": 0, "posts": 0, "failures": 0, "last_used_at": 0,
            "latency_p50_ms": 0.0, "latency_p99_ms": 0.0,
        }),
    };
    json
}

pub fn update(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    let session = req.session_user()?;
    let mut updated: IncomingWebhook = json_body(req, "incoming_webhook")?;
    if updated.id != id {
        return Err(ApiError::invalid_param("hook_id"));
    }
    let old = load_managed(host, req, id)?;
    if updated.team_id.is_empty() {
        updated.team_id = old.team_id.clone();
    }
    if updated.team_id != old.team_id {
        return Err(ApiError::invalid_param("team_id"));
    }
    let channel = load_channel(host, &updated.channel_id)?;
    if channel.team_id != updated.team_id {
        return Err(ApiError::invalid_param("channel_id"));
    }
    check_channel_access(host, session, &channel)?;
    if !can_bypass_lock(host, session, &channel) {
        updated.channel_locked = true;
    }
    apply_overrides(host, &mut updated, Some(&old))?;

    updated.user_id = old.user_id.clone();
    updated.slack_format = old.slack_format;
    // A client that does not know the limit sends none: keep the hook's.
    if updated.rate_limit.is_none() {
        updated.rate_limit = old.rate_limit;
    }
    // Source settings a client leaves out are kept, as the rate limit is.
    if updated.source.is_none() {
        updated.source = old.source.clone();
    }
    if updated.source_events.is_none() {
        updated.source_events = old.source_events.clone();
    }
    if updated.source_threads.is_none() {
        updated.source_threads = old.source_threads;
    }
    // Transform settings a client leaves out are kept; `"transform": null` removes it.
    let sent = serde_json::from_slice::<serde_json::Value>(&req.body).unwrap_or_default();
    if sent.get("transform").is_none() {
        updated.transform = old.transform.clone();
    }
    if sent.get("capture_only").is_none() {
        updated.capture_only = old.capture_only;
    }
    seal_source_secret(host, &mut updated, Some(&old));
    updated.create_at = old.create_at;
    updated.delete_at = 0;
    updated.update_at = host.now_millis().max(old.update_at + 1);
    updated.validate()?;
    HOOKS.put(host, &updated.id, &updated)?;
    Ok(Response::json(200, &updated.public_json()))
}

/// The write-only `source_secret`: a sent one is sealed (`""` clears it), none keeps the
/// stored one. A sealed value in the body is never trusted.
fn seal_source_secret(host: &dyn Host, hook: &mut IncomingWebhook, old: Option<&IncomingWebhook>) {
    hook.source_secret_sealed = match hook.source_secret.take() {
        Some(secret) if secret.is_empty() => String::new(),
        Some(secret) => host.seal(SOURCE_SECRET_PURPOSE, secret.as_bytes()),
        None => old
            .map(|o| o.source_secret_sealed.clone())
            .unwrap_or_default(),
    };
}

/// `GET /api/v4/hooks/incoming/sources`: the built-in sources, for the console and people.
pub fn sources(req: &Request) -> Result<Response, ApiError> {
    req.session_user()?;
    Ok(Response::json(200, &crate::sources::listing()))
}

/// `GET /api/v4/hooks/incoming/{id}/samples`: the hook's last requests, newest first, for
/// whoever may read the hook.
pub fn samples(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    let hook = load_managed(host, req, id)?;
    Ok(Response::json(200, &super::samples::list(host, &hook.id)))
}

/// `POST /api/v4/hooks/incoming/{id}/preview`: what the hook would post (`preview`).
pub fn preview(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    let hook = load_managed(host, req, id)?;
    super::preview::run(host, req, hook)
}

pub fn delete(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    let hook = load_managed(host, req, id)?;
    HOOKS.delete(host, &hook.id)?;
    host.metric_remove(&super::metric_key(&hook.id));
    super::from_source::forget_threads(host, &hook.id);
    super::samples::forget(host, &hook.id);
    Ok(Response::status_ok())
}

pub fn list(host: &dyn Host, req: &Request) -> Result<Response, ApiError> {
    let team_id = req.query_param("team_id").unwrap_or_default();
    let scope = if team_id.is_empty() {
        PermissionScope::System
    } else {
        if !ids::is_valid(&team_id) {
            return Err(ApiError::invalid_url_param("team_id"));
        }
        PermissionScope::Team(team_id.clone())
    };
    let within = definitions::Within::team(&team_id, req.user_id.as_deref());
    let page = definitions::counted_page(
        host,
        req,
        &scope,
        &within,
        require_enabled,
        |h: &IncomingWebhook| team_id.is_empty() || h.team_id == team_id,
    )?;
    let (hooks, total) = page;
    let hooks: Vec<_> = hooks.iter().map(|h| with_stats(host, h)).collect();
    Ok(definitions::list_response(
        req,
        "incoming_webhooks",
        (hooks, total),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeHost, channel, user};

    fn request(user: &str, body: serde_json::Value) -> Request {
        Request {
            method: "POST".into(),
            path: "/api/v4/hooks/incoming".into(),
            body: body.to_string().into_bytes(),
            user_id: Some(user.into()),
            ..Request::default()
        }
    }

    fn host() -> FakeHost {
        let host = FakeHost::default();
        host.users.borrow_mut().push(user(&"u".repeat(26), "dave"));
        host.channels.borrow_mut().push(channel(
            &"c".repeat(26),
            &"t".repeat(26),
            "town-square",
            ChannelType::Open,
        ));
        host.members
            .borrow_mut()
            .push(("c".repeat(26), "u".repeat(26)));
        host
    }

    #[test]
    fn create_forces_the_lock_and_stores_the_hook() {
        let host = host();
        let req = request(
            &"u".repeat(26),
            serde_json::json!({"channel_id": "c".repeat(26), "display_name": "CI"}),
        );
        let response = create(&host, &req).unwrap();
        assert_eq!(response.status, 201);
        let hook: IncomingWebhook = serde_json::from_slice(&response.body).unwrap();
        assert!(hook.channel_locked);
        assert_eq!(hook.team_id, "t".repeat(26));
        assert_eq!(
            HOOKS.get::<IncomingWebhook>(&host, &hook.id).unwrap(),
            Some(hook)
        );
    }

    #[test]
    fn a_source_secret_is_sealed_and_never_answered() {
        let host = host();
        let req = request(
            &"u".repeat(26),
            serde_json::json!({"channel_id": "c".repeat(26), "source": "github",
                               "source_secret": "hunter2", "source_secret_sealed": "forged"}),
        );
        let response = create(&host, &req).unwrap();
        let answer = String::from_utf8(response.body).unwrap();
        assert!(
            !answer.contains("hunter2") && !answer.contains("sealed"),
            "{answer}"
        );
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["source_secret_set"], true);
        let stored: IncomingWebhook = HOOKS
            .get(&host, answer["id"].as_str().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(stored.source_secret, None);
        assert_eq!(
            host.open(SOURCE_SECRET_PURPOSE, &stored.source_secret_sealed)
                .unwrap(),
            b"hunter2"
        );

        let unknown = request(
            &"u".repeat(26),
            serde_json::json!({"channel_id": "c".repeat(26), "source": "nosuch"}),
        );
        assert_eq!(
            create(&host, &unknown).unwrap_err().id,
            "model.incoming_hook.source.app_error"
        );
        let plain = request(
            &"u".repeat(26),
            serde_json::json!({"channel_id": "c".repeat(26)}),
        );
        let answer: serde_json::Value =
            serde_json::from_slice(&create(&host, &plain).unwrap().body).unwrap();
        assert!(answer.get("source_secret_set").is_none(), "{answer}");
    }

    /// An update that leaves `transform` and `capture_only` out keeps them (a client that
    /// does not know them cannot drop them); `"transform": null` removes the transform.
    #[test]
    fn an_update_keeps_the_transform_unless_it_is_sent() {
        let host = host();
        let owner = "u".repeat(26);
        let created = request(
            &owner,
            serde_json::json!({"channel_id": "c".repeat(26), "capture_only": true,
                               "transform": {"template": {"text": "{{ body.a }}"}}}),
        );
        let hook: serde_json::Value =
            serde_json::from_slice(&create(&host, &created).unwrap().body).unwrap();
        let id = hook["id"].as_str().unwrap().to_owned();
        let put = |body: serde_json::Value| -> serde_json::Value {
            let req = Request {
                method: "PUT".into(),
                body: body.to_string().into_bytes(),
                user_id: Some(owner.clone()),
                ..Request::default()
            };
            serde_json::from_slice(&update(&host, &req, &id).unwrap().body).unwrap()
        };
        let kept = put(serde_json::json!({"id": id, "channel_id": "c".repeat(26)}));
        assert_eq!(kept["transform"]["template"]["text"], "{{ body.a }}");
        assert_eq!(kept["capture_only"], true);
        let removed = put(serde_json::json!({"id": id, "channel_id": "c".repeat(26),
                                             "transform": null, "capture_only": false}));
        assert!(removed.get("transform").is_none() && removed.get("capture_only").is_none());
    }

    #[test]
    fn create_needs_a_session_and_a_known_channel() {
        let host = host();
        let mut req = request(
            &"u".repeat(26),
            serde_json::json!({"channel_id": "x".repeat(26)}),
        );
        assert_eq!(
            create(&host, &req).unwrap_err().id,
            "app.channel.get.existing.app_error"
        );
        req.user_id = None;
        assert_eq!(create(&host, &req).unwrap_err().status, 401);
    }

    #[test]
    fn listings_page_through_the_index_across_teams_and_in_one() {
        let host = host();
        let admin = "a".repeat(26);
        host.admins.borrow_mut().push(admin.clone());
        let (red, blue) = ("r".repeat(26), "b".repeat(26));
        // Stored out of creation order, in two teams.
        for (n, created, team) in [(1, 40, &red), (2, 10, &blue), (3, 30, &red), (4, 20, &blue)] {
            let hook = IncomingWebhook {
                id: format!("{n}").repeat(26),
                team_id: team.clone(),
                user_id: admin.clone(),
                create_at: created,
                ..Default::default()
            };
            HOOKS.put(&host, &hook.id, &hook).unwrap();
        }
        let ids = |query: &str| -> Vec<i64> {
            let req = Request {
                method: "GET".into(),
                query: query.into(),
                user_id: Some(admin.clone()),
                ..Request::default()
            };
            let body = list(&host, &req).unwrap().body;
            let hooks: Vec<IncomingWebhook> = serde_json::from_slice(&body).unwrap();
            hooks.iter().map(|h| h.create_at).collect()
        };
        assert_eq!(ids("per_page=3"), [10, 20, 30]);
        assert_eq!(ids("per_page=3&page=1"), [40]);
        assert_eq!(ids(&format!("team_id={red}")), [30, 40]);
        // A page reads its own records, not the others.
        host.kv_reads.set(0);
        ids("per_page=1");
        assert!(host.kv_reads.get() <= 3, "{}", host.kv_reads.get());
    }
}
