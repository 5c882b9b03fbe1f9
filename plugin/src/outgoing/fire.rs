//! A post was created: find the outgoing webhooks it triggers and hand the
//! host one durable delivery per callback URL (it sends them concurrently,
//! retries, and calls back `answer`); then post what they answer.

use super::deliveries::{self, Delivery};
use super::{HOOKS, OutgoingWebhook};
use crate::api::ApiError;
use crate::host::{
    ChannelType, EgressError, Host, Job, Level, OutboundRequest, OutboundResponse, Post, Signing,
};
use crate::json::{first_value, go_escape, go_struct};
use crate::outbound::form_body;
use crate::slack::attachment::decode_attachments;
use crate::slack::text::{announcements_and_mentions, translate_attachments};
use crate::webhook_post::{Priority, WebhookPost, create_webhook_post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// What the plugin needs back with a delivery's result: which hook, which
/// post, which word and URL. The host stores it opaquely.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Continuation {
    pub hook_id: String,
    pub post_id: String,
    pub trigger_word: String,
    pub url: String,
}

/// How requests on a hook's behalf are signed: Slack's way always, and the
/// Standard Webhooks way when it has secrets. Its deliveries, and clicks on
/// the buttons of the posts its answers made.
pub fn signing_of(hook: &OutgoingWebhook) -> Vec<Signing> {
    let mut signing = vec![Signing::Slack(hook.signing_secret.clone())];
    if !hook.webhook_secrets.is_empty() {
        signing.push(Signing::StandardWebhooks(hook.webhook_secrets.clone()));
    }
    signing
}

/// Runs the outgoing webhooks for `post`. Failures are logged and recorded in
/// the hooks' delivery logs; they never reach the poster.
pub fn fire(host: &dyn Host, post: &Post) {
    if let Err(e) = run(host, post) {
        host.log(
            Level::Error,
            &format!(
                "outgoing webhooks for post {}: {} {}",
                post.id, e.id, e.detailed_error
            ),
        );
    }
}

/// Posts that never fire hooks even when the host passes them on: system and
/// burn-on-read posts. (Webhook posts never reach here: they are created
/// without notifying; in-channel command replies do fire, as in Mattermost,
/// although they carry `from_webhook`.)
fn fires_hooks(post: &Post) -> bool {
    !post.post_type.starts_with("system_") && post.post_type != "burn_on_read"
}

fn run(host: &dyn Host, post: &Post) -> Result<(), ApiError> {
    if !host.settings().enable_outgoing_webhooks || !fires_hooks(post) {
        return Ok(());
    }
    let channel = host
        .channel(&post.channel_id)
        .map_err(|e| ApiError::host("app.channel.get.existing.app_error", &e))?;
    if channel.channel_type != ChannelType::Open {
        return Ok(());
    }
    let first_word = post.message.split_whitespace().next().unwrap_or("");
    let candidates = OutgoingWebhook::candidate_terms(&channel.team_id, &channel.id, first_word);
    let hooks: Vec<OutgoingWebhook> = HOOKS
        .find::<OutgoingWebhook>(host, &candidates)?
        .into_iter()
        .filter(|h| h.team_id == channel.team_id)
        .collect();
    // Each hook carries its own trigger word (Mattermost shares one variable
    // across hooks, so all payloads get the last hook's word).
    let matched: Vec<(&OutgoingWebhook, String)> = hooks
        .iter()
        .filter_map(|h| h.trigger_for(&channel.id, first_word).map(|w| (h, w)))
        .collect();
    if matched.is_empty() {
        return Ok(());
    }
    let team = host
        .team(&channel.team_id)
        .map_err(|e| ApiError::host("app.team.get.app_error", &e))?;
    let author = host
        .user(&post.user_id)
        .map_err(|e| ApiError::host("app.user.get.app_error", &e))?;
    let now = host.now_millis();

    let mut jobs = Vec::new();
    for (hook, trigger_word) in &matched {
        let fields = Payload {
            token: &hook.token,
            team_id: &hook.team_id,
            team_domain: &team.name,
            channel_id: &channel.id,
            channel_name: &channel.name,
            create_at: post.create_at,
            user_id: &author.id,
            user_name: &author.username,
            post_id: &post.id,
            text: &post.message,
            trigger_word,
        };
        let (content_type, body) = fields.encode(hook.content_type == "application/json");
        let headers = [
            ("Content-Type", content_type),
            ("Accept", "application/json"),
        ];
        let signing = signing_of(hook);
        for (index, url) in hook.callback_urls.iter().enumerate() {
            let continuation = Continuation {
                hook_id: hook.id.clone(),
                post_id: post.id.clone(),
                trigger_word: trigger_word.clone(),
                url: url.clone(),
            };
            let job = Job {
                // Derived from what triggered it: running this post's hooks
                // again (a replayed notification) enqueues nothing twice.
                id: crate::ids::derived(&format!("{}/{}", post.id, hook.id), index),
                group: hook.id.clone(),
                request: OutboundRequest {
                    method: "POST".into(),
                    url: url.clone(),
                    headers: headers
                        .iter()
                        .map(|(name, value)| crate::host::Header {
                            name: name.to_string(),
                            value: value.to_string(),
                        })
                        .collect(),
                    body: body.clone().into_bytes(),
                    timeout_ms: None,
                },
                signing: signing.clone(),
                continuation: serde_json::to_vec(&continuation).unwrap_or_default(),
                // 0: the host's schedule and age cap apply.
                max_attempts: hook.max_attempts,
                max_age_seconds: hook.max_age_seconds,
            };
            jobs.push((job, continuation));
        }
    }
    let (jobs, continuations): (Vec<Job>, Vec<Continuation>) = jobs.into_iter().unzip();
    let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    if let Err(e) = host.enqueue(jobs) {
        // A full queue refuses: say so in the log and in each hook's
        // delivery log, where its owner looks.
        let error = format!("not queued: {}", e.detail());
        for (id, cont) in ids.into_iter().zip(continuations) {
            host.log(
                Level::Error,
                &format!("outgoing webhook {} → {}: {error}", cont.hook_id, cont.url),
            );
            let delivery = Delivery {
                id,
                at: now,
                post_id: cont.post_id,
                trigger_word: cont.trigger_word,
                url: cont.url,
                state: deliveries::FAILED.into(),
                error: error.clone(),
                ..Delivery::default()
            };
            deliveries::upsert(host, &cont.hook_id, delivery)?;
        }
    }
    Ok(())
}

pub(crate) fn egress_error(e: &EgressError) -> String {
    match e {
        EgressError::Refused(m) => format!("refused: {m}"),
        EgressError::InvalidUrl(m) => format!("invalid URL: {m}"),
        EgressError::Timeout(m) => format!("timeout: {m}"),
        EgressError::Connect(m) => format!("connection failed: {m}"),
        EgressError::Other(m) => format!("request failed: {m}"),
    }
}

/// The fields Mattermost sends, in its JSON key order.
struct Payload<'a> {
    token: &'a str,
    team_id: &'a str,
    team_domain: &'a str,
    channel_id: &'a str,
    channel_name: &'a str,
    create_at: i64,
    user_id: &'a str,
    user_name: &'a str,
    post_id: &'a str,
    text: &'a str,
    trigger_word: &'a str,
}

impl Payload<'_> {
    /// JSON (timestamp in milliseconds, Go's escaping) or a form (keys sorted,
    /// timestamp in seconds), as Mattermost sends them.
    fn encode(&self, as_json: bool) -> (&'static str, String) {
        if as_json {
            let body = json!({
                "token": self.token,
                "team_id": self.team_id,
                "team_domain": self.team_domain,
                "channel_id": self.channel_id,
                "channel_name": self.channel_name,
                "timestamp": self.create_at,
                "user_id": self.user_id,
                "user_name": self.user_name,
                "post_id": self.post_id,
                "text": self.text,
                "trigger_word": self.trigger_word,
                "file_ids": "",
            });
            ("application/json", go_escape(&body.to_string()))
        } else {
            let pairs = [
                ("token", self.token.to_string()),
                ("team_id", self.team_id.to_string()),
                ("team_domain", self.team_domain.to_string()),
                ("channel_id", self.channel_id.to_string()),
                ("channel_name", self.channel_name.to_string()),
                ("timestamp", (self.create_at / 1000).to_string()),
                ("user_id", self.user_id.to_string()),
                ("user_name", self.user_name.to_string()),
                ("post_id", self.post_id.to_string()),
                ("text", self.text.to_string()),
                ("trigger_word", self.trigger_word.to_string()),
                ("file_ids", String::new()),
            ];
            let pairs = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            ("application/x-www-form-urlencoded", form_body(pairs))
        }
    }
}

/// What a callback may answer (Mattermost's `OutgoingWebhookResponse`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HookResponse {
    text: Option<String>,
    username: String,
    icon_url: String,
    props: Option<Map<String, Value>>,
    #[serde(rename = "type")]
    post_type: String,
    response_type: String,
    priority: Option<Priority>,
}

const RESPONSE_KEYS: &[&str] = &[
    "text",
    "username",
    "icon_url",
    "props",
    "attachments",
    "type",
    "response_type",
    "priority",
    "blocks",
];

/// Posts the callback's answer, with post ids derived from `delivery_id` so
/// a replayed answer creates nothing twice. Returns the post ids, or why
/// nothing was posted.
pub(crate) fn respond(
    host: &dyn Host,
    delivery_id: &str,
    trigger: &Post,
    hook: &OutgoingWebhook,
    response: &OutboundResponse,
) -> Result<Vec<String>, String> {
    if response.truncated {
        return Err("response is larger than 1 MiB; nothing posted".into());
    }
    if response.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let mut obj =
        match first_value(&response.body).map_err(|e| format!("invalid JSON response: {e}"))? {
            Value::Object(obj) => obj,
            Value::Null => return Ok(Vec::new()),
            _ => return Err("invalid JSON response: not an object".into()),
        };
    crate::json::fold_keys(&mut obj, RESPONSE_KEYS);
    let attachments = match obj.remove("attachments") {
        Some(v) if !v.is_null() => {
            decode_attachments(&v).map_err(|e| format!("invalid attachments: {e}"))?
        }
        _ => Vec::new(),
    };
    let blocks = obj.remove("blocks");
    let mut reply: HookResponse =
        go_struct(obj, RESPONSE_KEYS).map_err(|e| format!("invalid JSON response: {e}"))?;

    // An empty text with no attachments posts nothing (Mattermost posts an
    // empty message).
    let mut text = reply.text.take().unwrap_or_default();
    if let Some(blocks) = blocks {
        crate::slack::blocks::apply_to_message(&mut text, &mut reply.props, &blocks);
    }
    if text.is_empty() && attachments.is_empty() {
        return Ok(Vec::new());
    }
    let username_of = |id: &str| host.user(id).ok().map(|u| u.username);
    let mut attachments = attachments;
    translate_attachments(&mut attachments, &username_of);
    // A comment goes into the thread of the triggering post, even when that
    // post is itself a reply.
    let root_id = if reply.response_type == "comment" {
        if trigger.root_id.is_empty() {
            trigger.id.clone()
        } else {
            trigger.root_id.clone()
        }
    } else {
        String::new()
    };
    let posts = create_webhook_post(
        host,
        WebhookPost {
            user_id: hook.creator_id.clone(),
            channel_id: trigger.channel_id.clone(),
            root_id,
            text: announcements_and_mentions(&text, &username_of),
            post_type: reply.post_type,
            props: reply.props.unwrap_or_default(),
            attachments,
            username: if reply.username.is_empty() {
                hook.username.clone()
            } else {
                reply.username
            },
            icon_url: if reply.icon_url.is_empty() {
                hook.icon_url.clone()
            } else {
                reply.icon_url
            },
            icon_emoji: String::new(),
            display_name: hook.display_name.clone(),
            priority: reply.priority,
            id_seed: Some(delivery_id.to_string()),
            signer: format!("outgoing:{}", hook.id),
            tag_key: None,
        },
    )
    .map_err(|e| format!("{}: {} {}", e.id, e.message, e.detailed_error))?;
    Ok(posts.into_iter().map(|p| p.id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Payload<'static> {
        Payload {
            token: "tok",
            team_id: "team",
            team_domain: "eng",
            channel_id: "chan",
            channel_name: "town-square",
            create_at: 1_700_000_123_456,
            user_id: "user",
            user_name: "alice",
            post_id: "post",
            text: "deploy <prod> & more",
            trigger_word: "deploy",
        }
    }

    #[test]
    fn json_body_matches_mattermost_byte_for_byte() {
        let (ct, body) = payload().encode(true);
        assert_eq!(ct, "application/json");
        assert_eq!(
            body,
            r#"{"token":"tok","team_id":"team","team_domain":"eng","channel_id":"chan","channel_name":"town-square","timestamp":1700000123456,"user_id":"user","user_name":"alice","post_id":"post","text":"deploy \u003cprod\u003e \u0026 more","trigger_word":"deploy","file_ids":""}"#
        );
    }

    #[test]
    fn form_body_matches_mattermost_byte_for_byte() {
        let (ct, body) = payload().encode(false);
        assert_eq!(ct, "application/x-www-form-urlencoded");
        assert_eq!(
            body,
            "channel_id=chan&channel_name=town-square&file_ids=&post_id=post&team_domain=eng&team_id=team&text=deploy+%3Cprod%3E+%26+more&timestamp=1700000123&token=tok&trigger_word=deploy&user_id=user&user_name=alice"
        );
    }

    #[test]
    fn system_posts_never_fire() {
        let mut post = crate::host::new_post("u", "c", "deploy".into());
        assert!(fires_hooks(&post));
        post.props = r#"{"from_webhook":"true"}"#.into();
        assert!(
            fires_hooks(&post),
            "command replies carry from_webhook and still fire"
        );
        post.post_type = "system_join_channel".into();
        assert!(!fires_hooks(&post));
    }
}
