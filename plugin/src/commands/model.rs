//! The custom slash command as Mattermost stores and serves it, its field
//! validation (`Command.IsValid`), and the trigger rules (spec §5.1).

use crate::api::ApiError;
use crate::ids;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Mattermost's `Command`, plus `signing_secret`: the key of the Slack-style
/// `X-Slack-Signature` on every request to `url`, shown to those who manage it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Command {
    pub id: String,
    pub token: String,
    pub create_at: i64,
    pub update_at: i64,
    pub delete_at: i64,
    pub creator_id: String,
    pub team_id: String,
    pub trigger: String,
    /// `P` (POST a form) or `G` (GET with a query).
    pub method: String,
    pub username: String,
    pub icon_url: String,
    pub auto_complete: bool,
    pub auto_complete_desc: String,
    pub auto_complete_hint: String,
    pub display_name: String,
    pub description: String,
    pub url: String,
    pub plugin_id: String,
    /// Mattermost's `AutocompleteData` tree, kept as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autocomplete_data: Option<Value>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub autocomplete_icon_data: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub signing_secret: String,
}

const FIELDS: &[&str] = &[
    "id",
    "token",
    "create_at",
    "update_at",
    "delete_at",
    "creator_id",
    "team_id",
    "trigger",
    "method",
    "username",
    "icon_url",
    "auto_complete",
    "auto_complete_desc",
    "auto_complete_hint",
    "display_name",
    "description",
    "url",
    "plugin_id",
    "autocomplete_data",
    "autocomplete_icon_data",
    "signing_secret",
];

/// Triggers Mattermost's own commands hold, which no custom command may take
/// (spec §5.1). `status` is there because custom statuses are on by default.
const RESERVED_TRIGGERS: &[&str] = &[
    "away",
    "code",
    "collapse",
    "dnd",
    "echo",
    "expand",
    "groupmsg",
    "header",
    "help",
    "invite",
    "invite_people",
    "join",
    "kick",
    "leave",
    "logout",
    "marketplace",
    "me",
    "msg",
    "mute",
    "offline",
    "online",
    "open",
    "purpose",
    "remove",
    "rename",
    "search",
    "secure-connection",
    "settings",
    "share-channel",
    "shortcuts",
    "shrug",
    "status",
];

/// Whether a (lower-cased) trigger belongs to a built-in command; `test` does
/// while `EnableTesting` is on.
pub fn is_reserved(trigger: &str, enable_testing: bool) -> bool {
    RESERVED_TRIGGERS.contains(&trigger) || (enable_testing && trigger == "test")
}

impl Command {
    /// Decodes a request body as Go does into this struct: keys in any case,
    /// `null` for a field leaves it empty, a wrong type is an error.
    pub fn from_json(body: &[u8]) -> Result<Command, String> {
        let mut value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        match &mut value {
            Value::Object(obj) => {
                crate::json::fold_keys(obj, FIELDS);
                obj.retain(|key, v| !v.is_null() || key == "autocomplete_data");
            }
            Value::Null => return Ok(Command::default()),
            _ => return Err("a command must be a JSON object".into()),
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    /// Mattermost's `Command.IsValid`, in its order; lengths in bytes.
    pub fn validate(&self) -> Result<(), ApiError> {
        if !ids::is_valid(&self.id) {
            return Err(invalid("id"));
        }
        if self.token.len() != 26 {
            return Err(invalid("token"));
        }
        if self.create_at == 0 {
            return Err(invalid("create_at"));
        }
        if self.update_at == 0 {
            return Err(invalid("update_at"));
        }
        if !self.plugin_id.is_empty() {
            return Err(invalid("plugin_id"));
        }
        if !ids::is_valid(&self.creator_id) {
            return Err(invalid("user_id"));
        }
        if !ids::is_valid(&self.team_id) {
            return Err(invalid("team_id"));
        }
        if !is_valid_trigger(&self.trigger) {
            return Err(invalid("trigger"));
        }
        if self.url.is_empty() || self.url.len() > 1024 {
            return Err(invalid("url"));
        }
        if !is_valid_http_url(&self.url) {
            return Err(invalid("url_http"));
        }
        if self.method != "P" && self.method != "G" {
            return Err(invalid("method"));
        }
        if self.display_name.len() > 64 {
            return Err(invalid("display_name"));
        }
        if self.description.len() > 128 {
            return Err(invalid("description"));
        }
        if self
            .autocomplete_data
            .as_ref()
            .is_some_and(|d| !d.is_object() && !d.is_null())
        {
            return Err(invalid("autocomplete_data"));
        }
        Ok(())
    }

    /// What callers without manage rights may see (Mattermost's `Sanitize`).
    pub fn sanitized(mut self) -> Command {
        self.token.clear();
        self.creator_id.clear();
        self.method.clear();
        self.url.clear();
        self.username.clear();
        self.icon_url.clear();
        self.signing_secret.clear();
        self
    }
}

fn invalid(field: &str) -> ApiError {
    let message = match field {
        "trigger" => {
            "Invalid trigger: 1 to 128 characters of letters, digits, '_', '.', '/' and '-', not starting with '/'."
        }
        "url" => "Invalid URL: it must be 1 to 1024 characters.",
        "url_http" => "Invalid URL: it must start with http:// or https://.",
        "method" => "Invalid method: it must be P (POST) or G (GET).",
        "display_name" => "Invalid display name: at most 64 characters.",
        "description" => "Invalid description: at most 128 characters.",
        _ => "Invalid command.",
    };
    ApiError::new(
        400,
        &format!("model.command.is_valid.{field}.app_error"),
        message,
    )
}

/// 1–128 bytes of `[A-Za-z0-9_./-]`, not starting with `/`.
pub fn is_valid_trigger(trigger: &str) -> bool {
    (1..=128).contains(&trigger.len())
        && !trigger.starts_with('/')
        && trigger
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./-".contains(&b))
}

/// Mattermost's `IsValidHTTPURL`: a literal `http://` or `https://` prefix
/// and a URL with a non-empty host.
pub fn is_valid_http_url(raw: &str) -> bool {
    if !raw.starts_with("http://") && !raw.starts_with("https://") {
        return false;
    }
    let after_scheme = raw.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    !host.is_empty() && !host.starts_with(':') && url::Url::parse(raw).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Command {
        Command {
            id: ids::new_id(),
            token: ids::new_id(),
            create_at: 1,
            update_at: 1,
            creator_id: ids::new_id(),
            team_id: ids::new_id(),
            trigger: "deploy".into(),
            method: "P".into(),
            url: "http://example.com/cmd".into(),
            ..Default::default()
        }
    }

    #[test]
    fn triggers() {
        for ok in ["a", "a_b-c.d/e", "deploy", "UPPER", &"x".repeat(128)] {
            assert!(is_valid_trigger(ok), "{ok}");
        }
        for bad in [
            "",
            "/deploy",
            "has space",
            "tab\t",
            "line\n",
            "nul\0",
            "what?",
            "star*",
            "café",
            "🚀",
            &"x".repeat(129),
        ] {
            assert!(!is_valid_trigger(bad), "{bad:?}");
        }
    }

    #[test]
    fn urls() {
        for ok in [
            "http://x",
            "https://example.com:8443/a?b#c",
            "http://u:p@h/",
        ] {
            assert!(is_valid_http_url(ok), "{ok}");
        }
        for bad in ["", "HTTP://x", "ftp://x", "https:////x", "http://", "x"] {
            assert!(!is_valid_http_url(bad), "{bad}");
        }
    }

    #[test]
    fn validation_order_and_ids() {
        assert!(valid().validate().is_ok());
        type Breaker = fn(&mut Command);
        let cases: [(&str, Breaker); 11] = [
            ("id", |c| c.id = "x".into()),
            ("token", |c| c.token = "short".into()),
            ("user_id", |c| c.creator_id.clear()),
            ("team_id", |c| c.team_id = "nope".into()),
            ("trigger", |c| c.trigger = "/x".into()),
            ("url", |c| c.url = format!("http://x/{}", "a".repeat(1020))),
            ("url", |c| c.url.clear()),
            ("url_http", |c| c.url = "HTTP://x".into()),
            ("method", |c| c.method = "p".into()),
            ("display_name", |c| c.display_name = "é".repeat(33)),
            ("description", |c| c.description = "x".repeat(129)),
        ];
        for (field, break_it) in cases {
            let mut command = valid();
            break_it(&mut command);
            let err = command.validate().unwrap_err();
            assert_eq!(err.id, format!("model.command.is_valid.{field}.app_error"));
            assert_eq!(err.status, 400);
        }
        let mut at_limit = valid();
        at_limit.display_name = "x".repeat(64);
        at_limit.description = "x".repeat(128);
        assert!(at_limit.validate().is_ok());
    }

    #[test]
    fn decoding_is_gos() {
        let c = Command::from_json(
            br#"{"TRIGGER":"Deploy","Method":"G","url":null,"auto_complete":true,"x":1}"#,
        )
        .unwrap();
        assert_eq!(
            (c.trigger.as_str(), c.method.as_str(), c.url.as_str()),
            ("Deploy", "G", "")
        );
        assert!(c.auto_complete);
        assert!(Command::from_json(br#"{"trigger":5}"#).is_err());
        assert!(Command::from_json(b"[]").is_err());
        assert!(Command::from_json(b"{").is_err());
        assert_eq!(Command::from_json(b"null").unwrap(), Command::default());
    }

    #[test]
    fn reserved_triggers() {
        assert!(is_reserved("echo", false));
        assert!(is_reserved("status", false));
        assert!(!is_reserved("test", false));
        assert!(is_reserved("test", true));
        assert!(!is_reserved("deploy", true));
    }
}
