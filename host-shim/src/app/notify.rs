//! What clients are told about a post: the `posted` event's details
//! (sender name, mentions, channel display name) and the post as clients
//! read it (an `icon_emoji` override rendered as an icon URL).

use super::App;
use super::events::PostedDetails;
use super::mentions::{self, Member};
use crate::store::{Channel, ChannelType, Post, User};
use serde_json::Value;

impl App {
    /// Tells clients a post was stored, as Mattermost's `SendNotifications`
    /// does (it sends nothing for archived channels).
    pub(super) fn publish_posted(&self, post: &Post, channel: &Channel, set_online: bool) {
        if channel.delete_at != 0 {
            return;
        }
        let sender = self.store.user(&post.user_id).unwrap_or_default();
        let members = self.store.channel_members(&channel.id).unwrap_or_default();
        let details = PostedDetails {
            sender_name: self.sender_name(post, channel, &sender),
            channel_display_name: channel_display_name(channel, &sender, &members),
            mentions: self.mentioned(post, channel, &members),
            set_online,
        };
        self.events
            .posted(&self.post_for_client(post), channel, details);
    }

    /// Mattermost's `GetSenderName`: "System" for system messages, the
    /// webhook's `override_username` where overrides are on, else `@username`.
    fn sender_name(&self, post: &Post, channel: &Channel, sender: &User) -> String {
        if post.post_type.starts_with("system_") {
            return "System".into();
        }
        let props = post.props_json();
        if self.config().service_settings.enable_post_username_override
            && channel.channel_type != ChannelType::Direct
            && props["from_webhook"] == "true"
            && let Some(name) = props["override_username"].as_str()
        {
            return name.to_string();
        }
        format!("@{}", sender.username)
    }

    /// The members a post mentions, less its author (unless a webhook made it).
    fn mentioned(&self, post: &Post, channel: &Channel, members: &[User]) -> Vec<String> {
        let props = post.props_json();
        let from_webhook = props["from_webhook"] == "true";
        let mut found: Vec<String> = match channel.channel_type {
            // Everyone in a direct or group channel is mentioned by every post.
            ChannelType::Direct | ChannelType::Group => {
                members.iter().map(|m| m.id.clone()).collect()
            }
            ChannelType::Open | ChannelType::Private => {
                let mut texts = vec![post.message.as_str()];
                for attachment in props["attachments"].as_array().into_iter().flatten() {
                    texts.extend(attachment["pretext"].as_str());
                    texts.extend(attachment["text"].as_str());
                    for field in attachment["fields"].as_array().into_iter().flatten() {
                        texts.extend(field["value"].as_str());
                    }
                }
                let channel_wide = !matches!(
                    post.post_type.as_str(),
                    "system_header_change" | "system_purpose_change"
                ) && self.has_permission(
                    &post.user_id,
                    "use_channel_mentions",
                    &super::Scope::Channel(channel.id.clone()),
                );
                let people: Vec<Member> = members
                    .iter()
                    .map(|m| Member {
                        id: &m.id,
                        username: &m.username,
                        online: self.events.is_online(&m.id),
                    })
                    .collect();
                mentions::find(&texts, &people, channel_wide)
                    .users
                    .into_iter()
                    .collect()
            }
        };
        if !from_webhook {
            found.retain(|id| *id != post.user_id);
        }
        found
    }

    /// The post as clients read it (REST and events): with `icon_emoji`
    /// overrides on, `override_icon_url` becomes the emoji's image
    /// (Mattermost's `OverrideIconURLIfEmoji`).
    pub fn post_for_client(&self, post: &Post) -> Value {
        let mut json = post.to_json();
        self.add_reactions(post, &mut json);
        if !self.config().service_settings.enable_post_icon_override {
            return json;
        }
        let Some(name) = json["props"]["override_icon_emoji"].as_str() else {
            return json;
        };
        if let Some(url) = emoji_image_url(name)
            && let Some(props) = json["props"].as_object_mut()
        {
            props.insert("override_icon_url".into(), Value::String(url));
        }
        json
    }
}

impl App {
    /// `has_reactions` and `metadata.reactions`, as Mattermost's
    /// `PreparePostForClient` shows them (both left out when there are none).
    /// A post never edited nor reacted to (`update_at == create_at`) has
    /// none, so new posts cost no lookup.
    fn add_reactions(&self, post: &Post, json: &mut Value) {
        if post.update_at <= post.create_at {
            return;
        }
        let reactions = match self.store.reactions_for_post(&post.id) {
            Ok(r) if !r.is_empty() => r,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(post = %post.id, "reading a post's reactions: {e}");
                return;
            }
        };
        json["has_reactions"] = Value::Bool(true);
        let list = Value::Array(reactions.iter().map(|r| r.to_json()).collect());
        match json["metadata"].as_object_mut() {
            Some(metadata) => {
                metadata.insert("reactions".into(), list);
            }
            None => json["metadata"] = serde_json::json!({ "reactions": list }),
        }
    }
}

/// Mattermost's `GetChannelName` with usernames shown: the sender for a
/// direct channel, the members for a group channel, else the display name.
fn channel_display_name(channel: &Channel, sender: &User, members: &[User]) -> String {
    match channel.channel_type {
        ChannelType::Direct => format!("@{}", sender.username),
        ChannelType::Group => {
            let mut names: Vec<&str> = members.iter().map(|m| m.username.as_str()).collect();
            names.sort_unstable();
            names.join(", ")
        }
        ChannelType::Open | ChannelType::Private => channel.display_name.clone(),
    }
}

/// `/static/emoji/<code points>.png` for a system emoji name (colons
/// allowed around it). Custom emoji do not exist in the shim.
pub fn emoji_image_url(name: &str) -> Option<String> {
    let name = name.trim().trim_matches(':').trim();
    let emoji = emojis::get_by_shortcode(name)?;
    let id: Vec<String> = emoji
        .as_str()
        .chars()
        .map(|c| format!("{:x}", c as u32))
        .collect();
    Some(format!("/static/emoji/{}.png", id.join("-")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_emoji_names_become_mattermost_image_paths() {
        assert_eq!(
            emoji_image_url(":smile:").as_deref(),
            Some("/static/emoji/1f604.png")
        );
        assert_eq!(
            emoji_image_url("+1").as_deref(),
            Some("/static/emoji/1f44d.png")
        );
        assert_eq!(emoji_image_url("no_such_emoji_name"), None);
    }
}
