//! Mattermost's `CreateWebhookPost`, shared by incoming webhooks and outgoing
//! webhook responses: overrides, props rules, links, splitting, and creation.

use crate::api::ApiError;
use crate::host::{Host, Post, new_post};
use crate::ids;
use crate::slack::attachment::Attachment;
use crate::slack::text::{link_attachments, links_strict};
use crate::split::{SplitError, split_post};
use serde_json::{Map, Value, json};

/// The webhook splitter's budget for one post's props, in runes (Mattermost's
/// `PostPropsMaxUserRunes`).
pub const PROPS_BUDGET_RUNES: usize = 760_000;

/// Props the sender may not set: the server writes them.
const RESERVED_PROPS: &[&str] = &["override_icon_url", "override_username", "from_webhook"];

/// Post priority metadata as senders give it.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Priority {
    pub priority: Option<String>,
    pub requested_ack: Option<bool>,
    pub persistent_notifications: Option<bool>,
}

/// Everything a webhook post is built from, after Slack translation of the
/// text (announcements and mentions) and of the attachments.
#[derive(Debug, Clone, Default)]
pub struct WebhookPost {
    pub user_id: String,
    pub channel_id: String,
    pub root_id: String,
    pub text: String,
    pub post_type: String,
    /// The sender's `props`, filtered here by the reserved-key rules.
    pub props: Map<String, Value>,
    pub attachments: Vec<Attachment>,
    pub username: String,
    pub icon_url: String,
    pub icon_emoji: String,
    /// The hook's display name, written to every part's props.
    pub display_name: String,
    pub priority: Option<Priority>,
    /// Derive the parts' post ids from this (a delivery id), so creating the
    /// same answer again conflicts instead of posting twice; `None`: fresh ids.
    pub id_seed: Option<String>,
    /// Whose secret signs clicks on the posts' actions (an outgoing
    /// webhook's answer: `outgoing:<hook id>`); empty for none.
    pub signer: String,
    /// Tag the parts' ids with this key (an incoming hook's secret id), so the hook can
    /// prove later that a post is its own (`ids::tagged`).
    pub tag_key: Option<String>,
}

/// The last step for a webhook post's attachments, new or edited: links converted, and every
/// action given an id.
pub fn finish_attachments(attachments: &mut [Attachment]) {
    link_attachments(attachments);
    for attachment in attachments {
        for action in &mut attachment.actions {
            if action.id.is_empty() {
                action.id = ids::new_id();
            }
        }
    }
}

/// Builds and creates the post, split into parts when long; returns the
/// parts created. Parts already created stay if a later one fails, as in
/// Mattermost.
pub fn create_webhook_post(host: &dyn Host, input: WebhookPost) -> Result<Vec<Post>, ApiError> {
    let dedupe = input.id_seed.is_some();
    let mut created = Vec::new();
    for post in build_webhook_posts(host, input)? {
        let post = match host.create_post(post.clone()) {
            // Created by an earlier run of the same answer: already done.
            Err(crate::host::HostError::Conflict(_)) if dedupe => {
                host.post(&post.id).map_err(|e| {
                    ApiError::new(
                        500,
                        "api.post.create_webhook_post.creating.app_error",
                        "Error creating post.",
                    )
                    .with_detail(e.detail().to_string())
                })
            }
            other => other.map_err(|e| {
                ApiError::new(
                    500,
                    "api.post.create_webhook_post.creating.app_error",
                    "Error creating post.",
                )
                .with_detail(e.detail().to_string())
            }),
        }?;
        created.push(post);
    }
    Ok(created)
}

/// The posts [`create_webhook_post`] would create, built and checked but not created
/// (previews show these).
pub fn build_webhook_posts(host: &dyn Host, input: WebhookPost) -> Result<Vec<Post>, ApiError> {
    let settings = host.settings();
    if input.post_type.starts_with("system_") {
        return Err(ApiError::invalid_param("post.type"));
    }
    let metadata = match &input.priority {
        None => json!({}),
        Some(Priority { priority: None, .. }) => {
            return Err(ApiError::invalid_param("webhook.priority.priority"));
        }
        Some(p) => json!({"priority": {
            "priority": p.priority,
            "requested_ack": p.requested_ack.unwrap_or(false),
            "persistent_notifications": p.persistent_notifications.unwrap_or(false),
        }}),
    };

    let mut props = Map::new();
    props.insert("from_webhook".into(), json!("true"));
    if settings.enable_post_username_override {
        let name = if input.username.is_empty() {
            "webhook"
        } else {
            &input.username
        };
        props.insert("override_username".into(), json!(name));
    }
    if settings.enable_post_icon_override {
        if !input.icon_url.is_empty() {
            props.insert("override_icon_url".into(), json!(input.icon_url));
        }
        if !input.icon_emoji.is_empty() {
            props.insert("override_icon_emoji".into(), json!(input.icon_emoji));
        }
    }
    for (key, value) in input.props {
        // A raw `props.attachments` is dropped: only the typed top-level
        // attachments become the prop.
        if key == "attachments" || RESERVED_PROPS.contains(&key.as_str()) {
            continue;
        }
        props.insert(key, value);
    }
    props.insert("webhook_display_name".into(), json!(input.display_name));

    let mut attachments = input.attachments;
    finish_attachments(&mut attachments);
    let post_type = if !attachments.is_empty() && input.post_type.is_empty() {
        "slack_attachment".to_string()
    } else {
        input.post_type
    };

    let message = links_strict(&input.text);
    let max = settings.max_post_size.max(1) as usize;
    let parts = split_post(&message, &props, attachments, max, PROPS_BUDGET_RUNES).map_err(
        |SplitError::PropsTooLong| {
            ApiError::new(
                400,
                "web.incoming_webhook.split_props_length.app_error",
                format!("Unable to split webhook props into {PROPS_BUDGET_RUNES} character parts."),
            )
        },
    )?;

    let mut built = Vec::with_capacity(parts.len());
    for (index, part) in parts.into_iter().enumerate() {
        let mut part_props = props.clone();
        if !part.attachments.is_empty() {
            part_props.insert(
                "attachments".into(),
                serde_json::to_value(&part.attachments).unwrap_or(Value::Null),
            );
        }
        let mut post = new_post(&input.user_id, &input.channel_id, part.message);
        post.root_id = input.root_id.clone();
        post.post_type = post_type.clone();
        post.props = Value::Object(part_props).to_string();
        post.metadata = metadata.to_string();
        if let Some(key) = &input.tag_key {
            post.id = ids::tagged(key, input.id_seed.as_deref().map(|seed| (seed, index)));
        } else if let Some(seed) = &input.id_seed {
            post.id = ids::derived(seed, index);
        }
        if !input.signer.is_empty() {
            crate::action_cookie::seal_cookies(host, &mut post, &input.signer);
        }
        built.push(post);
    }
    Ok(built)
}
