//! Post creation and update as the chat server does them, shared by the REST
//! API and the plugin's `posts` import: validation, reserved props, events.

use super::App;
use crate::store::{Post, StoreError, new_id};
use serde_json::Value;

/// Post types a client or integration may save (Mattermost's allowed list,
/// plus anything `custom_`).
const ALLOWED_TYPES: &[&str] = &[
    "",
    "slack_attachment",
    "me",
    "reminder",
    "system_ephemeral",
    "system_join_channel",
    "system_leave_channel",
    "system_header_change",
    "system_purpose_change",
    // A new bot's greeting in its DM with its owner (the server makes it).
    "add_bot_teams_channels",
    "system_channel_deleted",
    "system_channel_restored",
];

/// Props a post never keeps, whoever creates it.
const STRIPPED_PROPS: &[&str] = &["add_channel_member", "force_notification"];

/// Mattermost's ceiling for the JSON of a post's props, in runes.
const MAX_PROPS_RUNES: usize = 800_000;

impl App {
    /// Validates and stores a new post; returns it as stored. Clients are
    /// told to show its author online unless a webhook made it (Mattermost's
    /// webhook posts pass `setOnline=false`).
    pub fn create_post(&self, post: Post) -> Result<Post, StoreError> {
        let set_online = post.props_json()["from_webhook"] != "true";
        self.create_post_with(post, set_online)
    }

    /// [`App::create_post`] with the `posted` event's `set_online` given
    /// (the REST API's `set_online` query parameter).
    pub fn create_post_with(&self, post: Post, set_online: bool) -> Result<Post, StoreError> {
        let (post, channel) = self.new_post(post)?;
        self.store.insert_post(&post)?;
        self.publish_posted(&post, &channel, set_online);
        self.count_webhook_post(from_webhook(&post));
        Ok(post)
    }

    /// A post a user or client makes (`POST /api/v4/posts`): it runs the
    /// plugin's post hook (outgoing webhooks), which it owes from the
    /// transaction that stores it (`store::outbox`), so a crash before the
    /// hook ran leaves it to the next start.
    pub fn create_post_owing_hook(&self, post: Post, set_online: bool) -> Result<Post, StoreError> {
        let (post, channel) = self.new_post(post)?;
        self.store.insert_post_owing_hook(&post)?;
        self.publish_posted(&post, &channel, set_online);
        self.count_webhook_post(from_webhook(&post));
        self.notify_posted(post.clone());
        Ok(post)
    }

    /// [`App::create_post`] for async callers (the plugin's `posts.create`):
    /// the same checks and events, and the insert awaited on the store's
    /// writer without holding a thread.
    pub async fn create_post_async(&self, post: Post) -> Result<Post, StoreError> {
        // One read of the props serves both the event and the counter.
        let webhook = from_webhook(&post);
        let (post, channel) = self.new_post(post)?;
        self.store.insert_post_async(&post).await?;
        self.publish_posted(&post, &channel, !webhook);
        self.count_webhook_post(webhook);
        Ok(post)
    }

    /// Counts a stored post in `switchboard_webhook_posts_total` when a
    /// webhook made it (its `from_webhook` prop is `"true"`).
    fn count_webhook_post(&self, webhook: bool) {
        if webhook {
            self.telemetry.webhook_post();
        }
    }

    /// Checks a new post and gives it its id and times; returns it with its
    /// channel, ready to insert.
    fn new_post(&self, mut post: Post) -> Result<(Post, crate::store::Channel), StoreError> {
        let max = self.config().switchboard_settings.max_post_size as usize;
        self.prepare_post(&mut post, max)?;
        let channel = self.store.channel(&post.channel_id)?;
        if channel.delete_at != 0 {
            return Err(StoreError::Invalid(format!(
                "channel {} is archived",
                channel.id
            )));
        }
        let author = self.store.user(&post.user_id)?;
        if !post.root_id.is_empty() {
            let root = self.store.post(&post.root_id).map_err(|_| {
                StoreError::Invalid(format!("root post {} does not exist", post.root_id))
            })?;
            if root.channel_id != post.channel_id {
                return Err(StoreError::Invalid(
                    "root post is in another channel".into(),
                ));
            }
            if !root.root_id.is_empty() {
                return Err(StoreError::Invalid("root post is itself a reply".into()));
            }
        }
        if author.is_bot {
            let mut props = props_object(&post.props)?;
            props.insert("from_bot".into(), Value::String("true".into()));
            post.props = Value::Object(props).to_string();
        }
        let now = self.clock.now_millis();
        // An id chosen by the plugin (derived from a delivery, so a replay
        // conflicts) is kept; the REST API never passes one.
        if post.id.is_empty() {
            post.id = new_id();
        } else if post.id.len() != 26 || !post.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(StoreError::Invalid(format!(
                "post id {:?} is not a valid id",
                post.id
            )));
        }
        post.create_at = now;
        post.update_at = now;
        Ok((post, channel))
    }

    /// A post shown to one user only: never stored, only sent to them.
    /// A valid id given is kept: an action cookie names it, and clients
    /// replace an ephemeral post they already show under that id.
    pub fn create_ephemeral(&self, user_id: &str, mut post: Post) -> Result<Post, StoreError> {
        let now = self.clock.now_millis();
        if !crate::store::valid_id(&post.id) {
            post.id = new_id();
        }
        let mut props = props_object(&post.props)?;
        assign_action_ids(&mut props);
        post.props = Value::Object(props).to_string();
        post.create_at = now;
        post.update_at = now;
        if post.props.trim().is_empty() {
            post.props = "{}".into();
        }
        if post.metadata.trim().is_empty() {
            post.metadata = "{}".into();
        }
        self.events
            .ephemeral(user_id, &self.post_for_client(&post), &post.channel_id);
        Ok(post)
    }

    /// Replaces the editable parts of a stored post.
    pub fn update_post(&self, update: Post) -> Result<Post, StoreError> {
        let mut post = self.store.post(&update.id)?;
        let max = self.config().switchboard_settings.max_post_size as usize;
        let mut candidate = update.clone();
        self.prepare_post(&mut candidate, max)?;
        post.message = candidate.message;
        post.post_type = candidate.post_type;
        post.props = candidate.props;
        post.metadata = candidate.metadata;
        post.is_pinned = update.is_pinned;
        let now = self.clock.now_millis().max(post.update_at + 1);
        post.update_at = now;
        post.edit_at = now;
        self.store.update_post(&post)?;
        let channel = self.store.channel(&post.channel_id)?;
        self.events.edited(&self.post_for_client(&post), &channel);
        Ok(post)
    }

    /// Deletes a post (and a root's replies) and tells the channel's readers.
    pub fn delete_post(&self, post_id: &str, deleted_by: &str) -> Result<Post, StoreError> {
        let mut post = self.store.post(post_id)?;
        self.store.delete_post(post_id)?;
        post.delete_at = self.clock.now_millis();
        self.events
            .deleted(&self.post_for_client(&post), &post.channel_id, deleted_by);
        Ok(post)
    }

    /// The checks every saved post passes (Mattermost's `Post.IsValid` and
    /// `PreSave`), and removal of props no post may carry.
    fn prepare_post(&self, post: &mut Post, max_runes: usize) -> Result<(), StoreError> {
        if post.message.chars().count() > max_runes {
            return Err(StoreError::Invalid(format!(
                "message is longer than {max_runes} characters"
            )));
        }
        if !ALLOWED_TYPES.contains(&post.post_type.as_str())
            && !post.post_type.starts_with("custom_")
        {
            return Err(StoreError::Invalid(format!(
                "post type {:?} is not allowed",
                post.post_type
            )));
        }
        let mut props = props_object(&post.props)?;
        for key in STRIPPED_PROPS {
            props.remove(*key);
        }
        assign_action_ids(&mut props);
        let text = Value::Object(props).to_string();
        if text.chars().count() > MAX_PROPS_RUNES {
            return Err(StoreError::Invalid("props are too long".into()));
        }
        post.props = text;
        if post.metadata.trim().is_empty() {
            post.metadata = "{}".into();
        } else if !matches!(
            serde_json::from_str::<Value>(&post.metadata),
            Ok(Value::Object(_))
        ) {
            return Err(StoreError::Invalid("metadata is not a JSON object".into()));
        }
        Ok(())
    }
}

/// Mattermost's `PreSave`: every action in every attachment without an id
/// gets one, whoever made the post (webhook, command, REST client, bot), so
/// a click can name it. Given ids are kept.
fn assign_action_ids(props: &mut serde_json::Map<String, Value>) {
    let Some(Value::Array(attachments)) = props.get_mut("attachments") else {
        return;
    };
    let actions = attachments
        .iter_mut()
        .filter_map(|a| a.get_mut("actions").and_then(Value::as_array_mut))
        .flatten()
        .filter_map(Value::as_object_mut);
    for action in actions {
        let missing = match action.get("id") {
            None | Some(Value::Null) => true,
            Some(Value::String(id)) => id.is_empty(),
            Some(_) => false,
        };
        if missing {
            action.insert("id".into(), Value::String(new_id()));
        }
    }
}

fn props_object(text: &str) -> Result<serde_json::Map<String, Value>, StoreError> {
    if text.trim().is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(serde_json::Map::new()),
        _ => Err(StoreError::Invalid("props are not a JSON object".into())),
    }
}

/// Whether a post was made by an incoming webhook (`props.from_webhook`); props without the
/// key are not parsed.
fn from_webhook(post: &Post) -> bool {
    post.props.contains("from_webhook") && post.props_json()["from_webhook"] == "true"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_without_an_id_get_one_and_given_ids_stay() {
        let mut props = json!({"attachments": [
            {"actions": [{"name": "a"}, {"id": "", "name": "b"}, {"id": null}, {"id": "mine"}]},
            {"text": "no actions"},
            null
        ]})
        .as_object()
        .unwrap()
        .clone();
        assign_action_ids(&mut props);
        let actions = props["attachments"][0]["actions"].as_array().unwrap();
        for action in &actions[..3] {
            assert!(
                crate::store::valid_id(action["id"].as_str().unwrap()),
                "{action}"
            );
        }
        assert_eq!(actions[3]["id"], "mine");
        assert_ne!(actions[0]["id"], actions[1]["id"]);
        assert_eq!(props["attachments"][1], json!({"text": "no actions"}));

        let mut odd = json!({"attachments": "not a list"})
            .as_object()
            .unwrap()
            .clone();
        assign_action_ids(&mut odd);
        assert_eq!(odd["attachments"], "not a list");
    }
}
