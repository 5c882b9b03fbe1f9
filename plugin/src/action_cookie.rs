//! Action cookies (spec §7.1): what a click on a post that is not stored (an
//! ephemeral post) needs, sealed by the host so clients can neither read nor forge it.
//!
//! This module sits below every feature: whoever makes a post with actions (an
//! incoming or outgoing webhook, a command, a click's update) seals its cookies
//! here. Opening one for a click, and how that click is signed, is `actions::cookie`.
//!
//! Posts a custom command or an outgoing webhook's answer makes carry cookies
//! too, stored: a cookie names the integration whose secret signs clicks on
//! that action, and since it is
//! sealed and bound to its post and URL, no client can copy it onto a post or
//! URL of its own to have requests signed (a signing oracle).
//!
//! Mattermost seals with AES-GCM under a server secret; here the host's
//! `sealing` import does it (ChaCha20-Poly1305 under a key derived from the
//! at-rest key), so the key never enters the plugin or its kv.

use crate::host::{Host, Post};
use crate::ids;
use crate::slack::attachment::{PostActionIntegration, decode_attachments};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a cookie is sealed for; a value sealed for anything else does not open.
const PURPOSE: &str = "switchboard/action-cookie/v1";

/// How long a cookie stands in for a post that is not stored. Ephemeral posts
/// live only in a client's memory; a day covers any open tab's use.
pub const LIFETIME_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// The props an update may not change: taken from the original post.
pub const RETAINED_PROPS: &[&str] = &["from_webhook", "override_username", "override_icon_url"];

/// Mattermost's `PostActionCookie`, plus when it was sealed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cookie {
    #[serde(rename = "type")]
    pub action_type: String,
    pub post_id: String,
    pub root_post_id: String,
    pub channel_id: String,
    pub data_source: String,
    pub integration: Option<PostActionIntegration>,
    pub retain_props: Map<String, Value>,
    pub remove_props: Vec<String>,
    pub issued_at: i64,
    /// Whose secret signs the click (`command:<id>`, `outgoing:<id>`), or empty.
    pub signer: String,
}

/// The signer of a command's posts; empty for none (built-ins).
pub fn command_signer(command_id: &str) -> String {
    if command_id.is_empty() {
        String::new()
    } else {
        format!("command:{command_id}")
    }
}

pub fn seal(host: &dyn Host, cookie: &Cookie) -> String {
    host.seal(PURPOSE, &serde_json::to_vec(cookie).unwrap_or_default())
}

/// The cookie `text` seals, or why it does not open (forged, or not a cookie).
pub fn unseal(host: &dyn Host, text: &str) -> Result<Cookie, &'static str> {
    let plain = host
        .open(PURPOSE, text)
        .map_err(|_| "the action cookie does not decrypt")?;
    serde_json::from_slice(&plain).map_err(|_| "the action cookie does not parse")
}

/// The three retained props of `props`: those present, and those absent (to remove).
pub fn retained(props: &Map<String, Value>) -> (Map<String, Value>, Vec<String>) {
    let mut keep = Map::new();
    let mut remove = Vec::new();
    for key in RETAINED_PROPS {
        match props.get(*key) {
            Some(v) => {
                keep.insert((*key).to_string(), v.clone());
            }
            None => remove.push((*key).to_string()),
        }
    }
    (keep, remove)
}

/// Gives a post an id, each action an id, and each action with an
/// integration a cookie naming `signer`: an ephemeral post's click works
/// though the post is never stored, and a command's clicks are signed.
pub fn seal_cookies(host: &dyn Host, post: &mut Post, signer: &str) {
    let Ok(Value::Object(mut props)) = serde_json::from_str::<Value>(&post.props) else {
        return;
    };
    let Some(raw) = props.get("attachments") else {
        return;
    };
    let Ok(mut attachments) = decode_attachments(raw) else {
        return;
    };
    if !attachments.iter().any(|a| !a.actions.is_empty()) {
        return;
    }
    if !ids::is_valid(&post.id) {
        post.id = ids::new_id();
    }
    let (retain_props, remove_props) = retained(&props);
    let now = host.now_millis();
    for action in attachments.iter_mut().flat_map(|a| a.actions.iter_mut()) {
        if action.id.is_empty() {
            action.id = ids::new_id();
        }
        if action.integration.is_none() {
            continue;
        }
        let cookie = Cookie {
            action_type: action.action_type.clone(),
            post_id: post.id.clone(),
            root_post_id: post.root_id.clone(),
            channel_id: post.channel_id.clone(),
            data_source: action.data_source.clone(),
            integration: action.integration.clone(),
            retain_props: retain_props.clone(),
            remove_props: remove_props.clone(),
            issued_at: now,
            signer: signer.to_string(),
        };
        action.cookie = seal(host, &cookie);
    }
    props.insert(
        "attachments".into(),
        serde_json::to_value(&attachments).unwrap_or(Value::Null),
    );
    post.props = Value::Object(props).to_string();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::new_post;
    use crate::testing::FakeHost;
    use serde_json::json;

    #[test]
    fn ephemeral_posts_get_ids_and_cookies_that_open() {
        let host = FakeHost::default();
        let mut post = new_post("u", "c", "hi".into());
        post.props = json!({"from_webhook": "true", "attachments": [{"actions": [
            {"name": "Go", "integration": {"url": "http://x/go", "context": {"k": 1}}},
            {"name": "Plain"}
        ]}]})
        .to_string();
        seal_cookies(&host, &mut post, "command:c1");
        assert!(ids::is_valid(&post.id));
        let props: Value = serde_json::from_str(&post.props).unwrap();
        let actions = props["attachments"][0]["actions"].as_array().unwrap();
        assert!(ids::is_valid(actions[0]["id"].as_str().unwrap()));
        assert!(actions[1].get("cookie").is_none());
        let cookie = unseal(&host, actions[0]["cookie"].as_str().unwrap()).unwrap();
        assert_eq!(cookie.post_id, post.id);
        assert_eq!(cookie.channel_id, "c");
        assert_eq!(cookie.integration.unwrap().url, "http://x/go");
        assert_eq!(cookie.retain_props["from_webhook"], "true");
        assert_eq!(
            cookie.remove_props,
            ["override_username", "override_icon_url"]
        );
    }
}
