//! `POST /hooks/{id}`: decode what the sender posted, find the hook, resolve
//! the channel, and create the post(s). Errors carry Mattermost's wrapper ids.

use super::payload::{IncomingRequest, PayloadError, parse_incoming};
use super::{HOOKS, IncomingWebhook, rate_limit};
use crate::api::{ApiError, Request, Response};
use crate::host::{Channel, ChannelType, Host, MetricSample, PermissionScope, Post};
use crate::slack::attachment::Attachment;
use crate::slack::mrkdwn;
use crate::slack::text::{announcements_and_mentions, translate_attachments};
use crate::webhook_post::{WebhookPost, build_webhook_posts, create_webhook_post};
use serde_json::Value;

/// `POST /hooks/{id}`, and with `source`, `POST /hooks/{id}/{source}`: a built-in source's
/// native payload (`from_source`), answered and counted as any payload is.
pub fn handle(host: &dyn Host, req: &Request, hook_id: &str, source: Option<&str>) -> Response {
    let developer = host.settings().enable_developer;
    let started = std::time::Instant::now();
    let mut trace = Trace::default();
    let mut posts_made = 0;
    // Read once: whether the hook has a source decides the path, and both paths use it.
    let stored: Option<IncomingWebhook> = HOOKS.get(host, hook_id).ok().flatten();
    let stored = stored.as_ref();
    let outcome = match source {
        _ if stored.is_some_and(|h| h.transform.is_some() || h.capture_only) => {
            super::transform::run(host, req, stored, &mut trace)
        }
        Some(name) => super::from_source::run(host, req, hook_id, stored, Some(name), &mut trace),
        None if super::from_source::hook_takes_native(req, stored) => {
            super::from_source::run(host, req, hook_id, stored, None, &mut trace)
        }
        None => run(host, req, hook_id, stored, &mut trace),
    };
    // What the request's sample records of the outcome.
    let mut post_ids = Vec::new();
    let mut failure = None;
    let mut response = match outcome {
        Ok((posts, ignored)) => {
            posts_made = u32::try_from(posts.len()).unwrap_or(u32::MAX);
            post_ids = posts.iter().map(|p| p.id.clone()).collect();
            // Our extension: `?wait=true` answers with the posts made, so the sender has
            // their ids.
            let mut response = if req.query_param("wait").as_deref() == Some("true") {
                let posts: Vec<Value> = posts.iter().map(post_json).collect();
                Response::json(200, &posts)
            } else {
                Response::text(200, "ok")
            };
            if !ignored.is_empty() {
                response
                    .headers
                    .push((IGNORED_HEADER.to_owned(), ignored_header(&ignored)));
            }
            response
        }
        Err(err) => {
            let detail = if err.detailed_error.is_empty() {
                &err.message
            } else {
                &err.detailed_error
            };
            failure = Some(format!("{}: {detail}", err.id));
            err.into_response(&req.request_id, developer)
        }
    };
    response.headers.extend(trace.headers);
    // Every request to a real hook is captured, refused ones too (a sender's malformed
    // body is what its samples are for).
    if let Some(hook) = stored {
        let captured = super::samples::Sample {
            status: response.status,
            post_ids,
            error: failure,
            ..super::samples::Sample::of(req, host.now_millis())
        };
        super::samples::record(host, &hook.id, captured);
    }
    if let Some(hook) = &trace.hook {
        let sample = MetricSample {
            failed: response.status >= 400,
            posts: posts_made,
            latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        };
        host.metric_add(&super::metric_key(hook), sample);
    }
    response
}

/// What handling learned that the answer and the hook's counters need, whatever the outcome.
#[derive(Default)]
pub(super) struct Trace {
    /// Headers every answer carries, the rate limit's among them.
    headers: Vec<(String, String)>,
    /// The hook, once found: only real hooks get counters.
    pub(super) hook: Option<String>,
    /// Whether this request's rate limit was taken already (a transform's is, before it runs).
    rate_taken: bool,
    /// Where the posts go: created, or only built for a preview.
    pub(super) sink: Sink,
}

/// What the pipeline does with the posts it builds. A preview runs every check a request
/// meets but writes nothing: no posts, no rate-limit budget, no idempotency or thread record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Sink {
    #[default]
    Create,
    Preview,
}

impl Trace {
    pub(super) fn preview() -> Trace {
        Trace {
            sink: Sink::Preview,
            ..Trace::default()
        }
    }
}

/// The request's hook, or Mattermost's refusal of a missing one.
pub(super) fn found_hook<'a>(
    host: &dyn Host,
    stored: Option<&'a IncomingWebhook>,
) -> Result<&'a IncomingWebhook, ApiError> {
    if !host.settings().enable_incoming_webhooks {
        return Err(error(
            501,
            "web.incoming_webhook.disabled.app_error",
            "Incoming webhooks have been disabled by the system admin.",
        ));
    }
    stored.ok_or_else(|| {
        error(
            400,
            "web.incoming_webhook.invalid.app_error",
            "Invalid webhook.",
        )
    })
}

/// Takes one request from the hook's rate limit, once per request.
pub(super) fn take_rate_limit(
    host: &dyn Host,
    hook: &IncomingWebhook,
    trace: &mut Trace,
) -> Result<(), ApiError> {
    if trace.rate_taken || trace.sink == Sink::Preview {
        return Ok(());
    }
    trace.rate_taken = true;
    if let Some(budget) = rate_limit::budget(host, hook.rate_limit) {
        let verdict = rate_limit::take(host, &hook.id, budget, host.now_millis())?;
        trace.headers.extend(verdict.headers());
        if !verdict.allowed {
            return Err(rate_limit::refused());
        }
    }
    Ok(())
}

/// Our extension: names every member of the request that nothing used.
pub const IGNORED_HEADER: &str = "X-Switchboard-Ignored";
const IGNORED_LISTED: usize = 32;

/// The header's value: the first paths, comma-separated, with anything but visible ASCII
/// percent-encoded (keys are the sender's and may hold anything).
fn ignored_header(ignored: &[String]) -> String {
    let mut parts: Vec<String> = ignored
        .iter()
        .take(IGNORED_LISTED)
        .map(|path| {
            path.bytes()
                .map(|b| match b {
                    b'%' | b',' => format!("%{b:02X}"),
                    0x21..=0x7e => char::from(b).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect()
        })
        .collect();
    if ignored.len() > IGNORED_LISTED {
        parts.push(format!("and {} more", ignored.len() - IGNORED_LISTED));
    }
    parts.join(", ")
}

/// A post as Mattermost's API writes one.
pub(super) fn post_json(post: &Post) -> Value {
    let object = |text: &str| {
        serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::Object(Default::default()))
    };
    serde_json::json!({
        "id": post.id,
        "create_at": post.create_at,
        "update_at": post.update_at,
        "delete_at": post.delete_at,
        "is_pinned": post.is_pinned,
        "user_id": post.user_id,
        "channel_id": post.channel_id,
        "root_id": post.root_id,
        "message": post.message,
        "type": post.post_type,
        "props": object(&post.props),
        "metadata": object(&post.metadata),
    })
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
pub(super) fn run(
    host: &dyn Host,
    req: &Request,
    hook_id: &str,
    stored: Option<&IncomingWebhook>,
    trace: &mut Trace,
) -> Result<(Vec<Post>, Vec<String>), ApiError> {
    // Mattermost's request context rewrites the handler's wrapped size
    // error to its own id, whatever the content type.
    if req.body_too_large {
        return Err(ApiError::body_too_large());
    }
    let media = media_type(req);
    let mut payload = parse_incoming(req.header("content-type"), &req.body).map_err(|e| {
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
    let ignored = std::mem::take(&mut payload.ignored);
    let posts = deliver(host, req, stored, payload, Origin::Payload, trace).map_err(|e| {
        e.wrap(
            "web.incoming_webhook.general.app_error",
            format!(
                "Failed to handle the payload of media type {media} for incoming webhook {hook_id}."
            ),
        )
    })?;
    Ok((posts, ignored))
}

fn error(status: u16, id: &str, message: &str) -> ApiError {
    ApiError::new(status, id, message)
}

/// Who wrote the request's text: a sender of webhook payloads, or a built-in source (whose
/// Markdown is final: no Slack formatting applies).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Payload,
    Source,
}

/// Mattermost's `HandleIncomingWebhook`, step by step. `stored` is the hook as read at the
/// start of the request; a missing one is refused here, in Mattermost's order.
pub(super) fn deliver(
    host: &dyn Host,
    req: &Request,
    stored: Option<&IncomingWebhook>,
    payload: IncomingRequest,
    origin: Origin,
    trace: &mut Trace,
) -> Result<Vec<Post>, ApiError> {
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
    let hook = stored.ok_or_else(|| {
        error(
            400,
            "web.incoming_webhook.invalid.app_error",
            "Invalid webhook.",
        )
    })?;
    trace.hook = Some(hook.id.clone());
    take_rate_limit(host, hook, trace)?;
    // Only a real hook's requests leave an idempotency record.
    let id_seed = match trace.sink {
        Sink::Create => super::idempotency::seed(host, req, &hook.id, host.now_millis())?,
        Sink::Preview => None,
    };

    let (text, attachments) = if origin == Origin::Source {
        (payload.text, payload.attachments)
    } else {
        processed_content(host, hook, payload.text, payload.attachments)
    };
    // Attachments force the type, whatever the sender asked for.
    let post_type = if attachments.is_empty() {
        payload.post_type
    } else {
        "slack_attachment".to_string()
    };

    let channel = resolve_channel(host, hook, &payload.channel)?;
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

    let post = WebhookPost {
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
        display_name: hook.display_name.clone(),
        priority: payload.priority,
        id_seed,
        // Incoming webhooks have no secret to sign clicks with.
        signer: String::new(),
        tag_key: Some(hook.id.clone()),
    };
    match trace.sink {
        Sink::Create => create_webhook_post(host, post),
        Sink::Preview => build_webhook_posts(host, post),
    }
}

/// The sender's text and attachments as the hook posts them: the hook's Slack formatting,
/// then Slack references translated (links are the post builder's last step).
pub(super) fn processed_content(
    host: &dyn Host,
    hook: &IncomingWebhook,
    mut text: String,
    mut attachments: Vec<Attachment>,
) -> (String, Vec<Attachment>) {
    if hook.slack_format {
        slack_format(&mut text, &mut attachments);
    }
    let username_of = |id: &str| host.user(id).ok().map(|u| u.username);
    let text = announcements_and_mentions(&text, &username_of);
    translate_attachments(&mut attachments, &username_of);
    (text, attachments)
}

/// A Slack-formatted hook's mrkdwn as Markdown: dates, emphasis and strike in the text, and
/// in each attachment's pretext, text and field values. References are translated after
/// this for every hook.
fn slack_format(text: &mut String, attachments: &mut [Attachment]) {
    let convert = |s: &mut String| *s = mrkdwn::to_markdown(&mrkdwn::dates(s));
    convert(text);
    for a in attachments {
        convert(&mut a.pretext);
        convert(&mut a.text);
        for field in &mut a.fields {
            if let Value::String(value) = &mut field.value {
                convert(value);
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incoming::fixture::{hook, host_with_hook};

    /// The hook decides between the Slack-format path and its source's, and is read once
    /// for both: a plain webhook costs one read of it, as before sources existed.
    #[test]
    fn a_webhook_reads_its_hook_once() {
        let hook = hook();
        let host = host_with_hook(&hook);
        let hook_key = format!("incoming_hook/{}", hook.id);
        let req = Request {
            method: "POST".into(),
            path: format!("/hooks/{}", hook.id),
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"text": "hello"}"#.to_vec(),
            ..Request::default()
        };
        host.kv_get_log.borrow_mut().clear();
        let response = handle(&host, &req, &hook.id, None);
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        let reads = host
            .kv_get_log
            .borrow()
            .iter()
            .filter(|k| **k == hook_key)
            .count();
        assert_eq!(reads, 1);
    }
}
