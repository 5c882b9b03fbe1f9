//! The incoming webhook definition as Mattermost stores and serves it, with
//! its field validation (`IsValid`) and the username rule.

use crate::api::ApiError;
use crate::ids;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IncomingWebhook {
    pub id: String,
    pub create_at: i64,
    pub update_at: i64,
    pub delete_at: i64,
    pub user_id: String,
    pub channel_id: String,
    pub team_id: String,
    pub display_name: String,
    pub description: String,
    pub username: String,
    pub icon_url: String,
    pub channel_locked: bool,
    /// Our extension: the hook's senders write Slack mrkdwn, converted to Markdown. Chosen at
    /// creation; written only when set, so the hook reads as Mattermost's otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub slack_format: bool,
    /// Our extension: requests per minute for this hook, over the plugin setting
    /// `IncomingWebhookRateLimit`; 0 turns limiting off for it. Written only when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    /// Our extension (`sources`): the built-in source whose native payloads `/hooks/{id}`
    /// takes too (any hook takes them at `/hooks/{id}/{source}`). Written only when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Our extension: which of a source's events post (globs, `!` excludes); all if none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_events: Option<Vec<String>>,
    /// Our extension: `false` stops later events about a thing replying in its thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_threads: Option<bool>,
    /// Our extension (issue 25): a template or an uploaded component that shapes any
    /// sender's request into this hook's payload. Written only when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transform: Option<super::transform::Transform>,
    /// Our extension: record requests (samples) and answer 200, posting nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub capture_only: bool,
    /// Write-only: the secret a create or update sends (`""` clears it). Never written
    /// anywhere; sealed into `source_secret_sealed` on save.
    #[serde(skip_serializing)]
    pub source_secret: Option<String>,
    /// The secret sealed by the host; stored, never answered (`public_json` shows only
    /// whether it is set).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source_secret_sealed: String,
}

/// The host's sealing purpose for source secrets.
pub const SOURCE_SECRET_PURPOSE: &str = "incoming_source_secret";

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::new(
        400,
        &format!("model.incoming_hook.{field}.app_error"),
        message,
    )
}

impl IncomingWebhook {
    /// Mattermost's `IncomingWebhook.IsValid`; byte lengths, as Go's `len`.
    pub fn validate(&self) -> Result<(), ApiError> {
        if !ids::is_valid(&self.id) {
            return Err(invalid("id", "Invalid Id."));
        }
        if self.create_at == 0 {
            return Err(invalid("create_at", "Create at must be a valid time."));
        }
        if self.update_at == 0 {
            return Err(invalid("update_at", "Update at must be a valid time."));
        }
        if !ids::is_valid(&self.user_id) {
            return Err(invalid("user_id", "Invalid user id."));
        }
        if !ids::is_valid(&self.channel_id) {
            return Err(invalid("channel_id", "Invalid channel id."));
        }
        if !ids::is_valid(&self.team_id) {
            return Err(invalid("team_id", "Invalid team id."));
        }
        if self.display_name.len() > 64 {
            return Err(invalid("display_name", "Invalid title."));
        }
        if self.description.len() > 500 {
            return Err(invalid("description", "Invalid description."));
        }
        if self.username.len() > 64 {
            return Err(invalid("username", "Invalid username."));
        }
        if self.icon_url.len() > 1024 {
            return Err(invalid("icon_url", "Invalid icon."));
        }
        if let Some(source) = self.source.as_deref().filter(|s| !s.is_empty())
            && crate::sources::find(source).is_none()
        {
            return Err(invalid("source", "Unknown source."));
        }
        if let Some(events) = &self.source_events
            && (events.len() > 32 || !events.iter().all(|p| crate::sources::valid_pattern(p)))
        {
            return Err(invalid("source_events", "Invalid event filter."));
        }
        if let Some(transform) = &self.transform {
            transform.check()?;
        }
        Ok(())
    }
}

/// `IsValidUsername`: 1–64 of `[a-z0-9.\-_]`, not a reserved name.
pub fn is_valid_username(name: &str) -> bool {
    const RESERVED: [&str; 4] = ["all", "channel", "matterbot", "system"];
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && !RESERVED.contains(&name)
}

impl IncomingWebhook {
    /// The hook as answers show it: the sealed secret left out, and for a hook that has a
    /// source or a secret, `source_secret_set`.
    pub fn public_json(&self) -> serde_json::Value {
        let mut json = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = json.as_object_mut() {
            object.remove("source_secret_sealed");
            if self.source.is_some() || !self.source_secret_sealed.is_empty() {
                object.insert(
                    "source_secret_set".to_owned(),
                    (!self.source_secret_sealed.is_empty()).into(),
                );
            }
        }
        json
    }

    /// The index terms a stored hook is found under: its team and its owner,
    /// in its team and across teams (listings).
    pub fn terms(stored: &[u8]) -> Vec<String> {
        match serde_json::from_slice::<IncomingWebhook>(stored) {
            Ok(hook) => crate::store::listing_terms(&hook.team_id, &hook.user_id),
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> IncomingWebhook {
        IncomingWebhook {
            id: ids::new_id(),
            create_at: 1,
            update_at: 1,
            user_id: ids::new_id(),
            channel_id: ids::new_id(),
            team_id: ids::new_id(),
            ..Default::default()
        }
    }

    #[test]
    fn field_limits_are_bytes() {
        assert!(valid().validate().is_ok());
        type Breaker = fn(&mut IncomingWebhook);
        let cases: [(&str, Breaker); 5] = [
            ("display_name", |h| h.display_name = "é".repeat(33)),
            ("description", |h| h.description = "x".repeat(501)),
            ("username", |h| h.username = "x".repeat(65)),
            ("icon_url", |h| h.icon_url = "x".repeat(1025)),
            ("channel_id", |h| h.channel_id = "short".into()),
        ];
        for (field, break_it) in cases {
            let mut hook = valid();
            break_it(&mut hook);
            let err = hook.validate().unwrap_err();
            assert_eq!(err.id, format!("model.incoming_hook.{field}.app_error"));
            assert_eq!(err.status, 400);
        }
        let mut at_limit = valid();
        at_limit.display_name = "x".repeat(64);
        at_limit.description = "x".repeat(500);
        assert!(at_limit.validate().is_ok());
    }

    #[test]
    fn usernames() {
        for ok in ["bot", "ci-bot.v2_x", "a"] {
            assert!(is_valid_username(ok), "{ok}");
        }
        for bad in ["", "Bot", "all", "channel", "has space", &"x".repeat(65)] {
            assert!(!is_valid_username(bad), "{bad}");
        }
    }
}
