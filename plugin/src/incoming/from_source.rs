//! A built-in source's native payload (`crate::sources`) at `POST /hooks/{id}/{source}`, or
//! at `/hooks/{id}` for a hook with a `source`: found, checked (required header, signature,
//! event filter), rendered, then delivered by `execute::deliver` like any payload, so
//! channel lock, rate limit, idempotency and `?wait=true` apply. Threads live here.

use super::IncomingWebhook;
use super::execute::{Origin, Sink, Trace, deliver};
use super::model::SOURCE_SECRET_PURPOSE;
use super::payload::IncomingRequest;
use crate::api::{ApiError, Request};
use crate::host::{Host, Post};
use crate::sources::{self, Inbound, Source};

/// Whether `/hooks/{id}` should read this request as the hook's source's own payload: the
/// hook has a source and the request looks like that sender's (a Slack-format payload sent
/// to the same URL still works).
pub(super) fn hook_takes_native(req: &Request, stored: Option<&IncomingWebhook>) -> bool {
    let Some(hook) = stored else {
        return false;
    };
    let Some(source) = hook.source.as_deref().and_then(sources::find) else {
        return false;
    };
    if req.body_too_large {
        return true;
    }
    let json = sources::decode_body(req.header("content-type"), &req.body).unwrap_or_default();
    (source.recognizes)(&Inbound {
        headers: &req.headers,
        body: &req.body,
        json: &json,
    })
}

fn error(status: u16, id: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, id, message)
}

/// The posts made, and what was ignored (`event:<name>` for an event that posts nothing).
pub(super) fn run(
    host: &dyn Host,
    req: &Request,
    hook_id: &str,
    stored: Option<&IncomingWebhook>,
    named: Option<&str>,
    trace: &mut Trace,
) -> Result<(Vec<Post>, Vec<String>), ApiError> {
    if req.body_too_large {
        return Err(ApiError::body_too_large());
    }
    if !host.settings().enable_incoming_webhooks {
        return Err(error(
            501,
            "web.incoming_webhook.disabled.app_error",
            "Incoming webhooks have been disabled by the system admin.",
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
    let name = named.or(hook.source.as_deref()).unwrap_or_default();
    let source = sources::find(name).ok_or_else(|| {
        let known: Vec<&str> = sources::SOURCES.iter().map(|s| s.name).collect();
        error(
            404,
            "web.incoming_webhook.source.app_error",
            format!(
                "Unknown source {name:?}. Known sources: {}.",
                known.join(", ")
            ),
        )
    })?;
    if let Some(header) = source.required_header
        && req.header(header).is_none()
    {
        return Err(error(
            400,
            "web.incoming_webhook.source_header.app_error",
            format!(
                "The request has no {header} header, which every {} webhook sends. This URL \
                 takes {}'s own webhooks; for a Slack-format payload use /hooks/{hook_id} \
                 instead, or check the URL pasted into the sender.",
                source.display_name, source.display_name
            ),
        ));
    }
    // A preview's request is a sample, whose signature is redacted.
    if trace.sink == Sink::Create {
        check_signature(host, req, hook, source)?;
    }
    let json = sources::decode_body(req.header("content-type"), &req.body).map_err(|e| {
        error(
            400,
            "web.incoming_webhook.source_body.app_error",
            format!(
                "The body is not the JSON document a {} webhook sends.",
                source.display_name
            ),
        )
        .with_detail(e)
    })?;
    let inbound = Inbound {
        headers: &req.headers,
        body: &req.body,
        json: &json,
    };
    let event = (source.event)(&inbound);
    let filters = hook.source_events.as_deref().unwrap_or_default();
    let message = if sources::selected(filters, &event) {
        (source.render)(&event, &inbound)
    } else {
        None
    };
    let Some(message) = message else {
        return Ok((Vec::new(), vec![format!("event:{event}")]));
    };

    let thread = message
        .thread
        .filter(|_| hook.source_threads != Some(false))
        .map(|key| thread_key(&hook.id, source.name, &key));
    let (recorded, root_id) = thread
        .as_deref()
        .map(|key| thread_root(host, key, &hook.channel_id))
        .unwrap_or_default();
    let threaded = !root_id.is_empty();
    let payload = IncomingRequest {
        text: message.text,
        attachments: message.attachments,
        username: or(&hook.username, source.username),
        icon_url: or(&hook.icon_url, source.icon_url),
        root_id,
        ..IncomingRequest::default()
    };
    let posts = deliver(host, req, stored, payload, Origin::Source, trace).map_err(|e| {
        e.wrap(
            "web.incoming_webhook.general.app_error",
            format!(
                "Failed to handle the {} payload for incoming webhook {hook_id}.",
                source.display_name
            ),
        )
    })?;
    if let (Some(key), false, Sink::Create) = (thread, threaded, trace.sink) {
        remember_root(host, &key, recorded.as_deref(), &posts);
    }
    Ok((posts, Vec::new()))
}

/// A thread's record and its root post: the recorded value (for [`remember_root`]) and the
/// root's id if it is still a live root in the hook's channel, else empty.
pub(super) fn thread_root(
    host: &dyn Host,
    key: &str,
    channel_id: &str,
) -> (Option<Vec<u8>>, String) {
    let recorded = host.kv_get(key).ok().flatten();
    let root_id = recorded
        .as_deref()
        .and_then(|id| live_root(host, id, channel_id))
        .unwrap_or_default();
    (recorded, root_id)
}

/// After an unthreaded post about a thing: its first post becomes the thread's root.
pub(super) fn remember_root(host: &dyn Host, key: &str, recorded: Option<&[u8]>, posts: &[Post]) {
    if let Some(first) = posts.first() {
        // The first post about a thing (or the first since its root was deleted) becomes
        // its root; of two concurrent first posts, the later one stays unthreaded.
        let _ = host.kv_compare_and_set_with_expiry(
            key,
            recorded,
            Some(first.id.as_bytes()),
            THREAD_TTL_SECONDS,
        );
    }
}

/// What the hook's built-in source would post for this request, for a template's `post`:
/// `{text, attachments, thread, event}`, or null (no source, not its request, or an event
/// that posts nothing or is filtered out).
pub(super) fn source_post(req: &Request, hook: &IncomingWebhook) -> serde_json::Value {
    let Some(source) = hook.source.as_deref().and_then(sources::find) else {
        return serde_json::Value::Null;
    };
    let Ok(json) = sources::decode_body(req.header("content-type"), &req.body) else {
        return serde_json::Value::Null;
    };
    let inbound = Inbound {
        headers: &req.headers,
        body: &req.body,
        json: &json,
    };
    if !(source.recognizes)(&inbound) {
        return serde_json::Value::Null;
    }
    let event = (source.event)(&inbound);
    let filters = hook.source_events.as_deref().unwrap_or_default();
    let message = sources::selected(filters, &event)
        .then(|| (source.render)(&event, &inbound))
        .flatten();
    match message {
        Some(m) => serde_json::json!({
            "text": m.text,
            "attachments": m.attachments,
            "thread": m.thread,
            "event": event,
        }),
        None => serde_json::Value::Null,
    }
}

/// A hook with a source and a source secret checks the sender's signature on every path,
/// its transform's too.
pub(super) fn check_hook_signature(
    host: &dyn Host,
    req: &Request,
    hook: &IncomingWebhook,
) -> Result<(), ApiError> {
    match hook.source.as_deref().and_then(sources::find) {
        Some(source) => check_signature(host, req, hook, source),
        None => Ok(()),
    }
}

/// With a `source_secret`, the request must carry the sender's signature over the raw body.
fn check_signature(
    host: &dyn Host,
    req: &Request,
    hook: &IncomingWebhook,
    source: &Source,
) -> Result<(), ApiError> {
    if hook.source_secret_sealed.is_empty() {
        return Ok(());
    }
    let secret = host
        .open(SOURCE_SECRET_PURPOSE, &hook.source_secret_sealed)
        .map_err(|e| ApiError::host("web.incoming_webhook.source_secret.app_error", &e))?;
    let empty = serde_json::Value::Null;
    let inbound = Inbound {
        headers: &req.headers,
        body: &req.body,
        json: &empty,
    };
    if (source.verify)(&inbound, &secret) {
        return Ok(());
    }
    let header = source.signature_header;
    let message = if req.header(header).is_none() {
        format!("The request has no {header} header, and this hook has a source secret.")
    } else {
        format!("The request's {header} does not match this hook's source secret.")
    };
    Err(error(
        401,
        "web.incoming_webhook.source_signature.app_error",
        message,
    ))
}

/// How long a thing's thread is kept: later events about it reply in the thread for this
/// long after its first post, then start a new one. Records expire so that a hook's threads
/// do not grow with every pull request it ever saw.
const THREAD_TTL_SECONDS: u64 = 90 * 24 * 3600;

/// Where a hook keeps the root post of one thing's thread (per hook, per source).
pub(super) fn thread_key(hook_id: &str, source: &str, thing: &str) -> String {
    format!("source_thread/{hook_id}/{source}/{thing}")
}

/// Drops a deleted hook's thread records.
pub(super) fn forget_threads(host: &dyn Host, hook_id: &str) {
    let prefix = format!("source_thread/{hook_id}/");
    // Each pass deletes what it listed, so the next starts at 0 again.
    while let Ok(keys) = host.kv_list(&prefix, 0, 100) {
        if keys.is_empty() || keys.iter().any(|k| host.kv_delete(k).is_err()) {
            break;
        }
    }
}

/// The recorded root, if it is still a live root post in the hook's channel.
fn live_root(host: &dyn Host, recorded: &[u8], channel_id: &str) -> Option<String> {
    let id = std::str::from_utf8(recorded).ok()?;
    let root = host.post(id).ok()?;
    (root.delete_at == 0 && root.root_id.is_empty() && root.channel_id == channel_id)
        .then_some(root.id)
}

fn or(first: &str, second: &str) -> String {
    if first.is_empty() { second } else { first }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn a_thread_record_expires() {
        let fixture: serde_json::Value = serde_json::from_str(include_str!(
            "../sources/fixtures/github/issues_opened.json"
        ))
        .unwrap();
        let hook = IncomingWebhook {
            source: Some("github".into()),
            ..crate::incoming::fixture::hook()
        };
        let host = crate::incoming::fixture::host_with_hook(&hook);
        let headers = fixture["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_owned()))
            .collect();
        let req = Request {
            method: "POST".into(),
            path: format!("/hooks/{}/github", hook.id),
            headers,
            body: fixture["body"].to_string().into_bytes(),
            ..Request::default()
        };
        let mut trace = Trace::default();
        let (posts, _) = run(&host, &req, &hook.id, Some(&hook), None, &mut trace).unwrap();
        assert_eq!(posts.len(), 1);
        let ttl = host.kv_ttl.borrow();
        let (key, seconds) = ttl
            .iter()
            .find(|(k, _)| k.starts_with("source_thread/"))
            .expect("a thread record");
        assert!(
            key.starts_with(&thread_key(&hook.id, "github", "")),
            "{key}"
        );
        assert_eq!(*seconds, THREAD_TTL_SECONDS);
    }

    #[test]
    fn a_deleted_hooks_threads_are_forgotten_and_no_others() {
        let host = FakeHost::default();
        for n in 0..150 {
            host.kv_set(&thread_key("h1", "github", &format!("pr/a/b#{n}")), b"p")
                .unwrap();
        }
        host.kv_set(&thread_key("h2", "github", "pr/a/b#1"), b"p")
            .unwrap();
        forget_threads(&host, "h1");
        assert_eq!(host.kv_list("source_thread/", 0, 1000).unwrap().len(), 1);
    }
}
