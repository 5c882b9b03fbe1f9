//! What a command answers (spec §5.4) and what becomes of it (§5.5, §5.7):
//! decoding by content type, then, for the response and each extra response,
//! a post in the channel or an ephemeral message for the invoking user.

use crate::api::ApiError;
use crate::host::{Host, new_post};
use crate::ids;
use crate::slack::attachment::{Attachment, decode_attachments};
use crate::slack::text::{
    announcements_and_mentions, link_attachments, links_lenient, translate_attachments,
};
use serde_json::{Map, Value, json};

/// Mattermost's `CommandResponse`. `attachments` and `extra_responses` keep
/// the difference between absent (`None`) and an empty list, as Go's nil
/// slices do: an empty attachment list still makes an ephemeral reply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandResponse {
    pub response_type: String,
    pub text: String,
    pub username: String,
    pub channel_id: String,
    pub icon_url: String,
    pub post_type: String,
    pub props: Option<Map<String, Value>>,
    pub goto_location: String,
    pub trigger_id: String,
    pub skip_slack_parsing: bool,
    pub attachments: Option<Vec<Attachment>>,
    pub extra_responses: Option<Vec<CommandResponse>>,
}

const KEYS: &[&str] = &[
    "response_type",
    "text",
    "username",
    "channel_id",
    "icon_url",
    "type",
    "props",
    "goto_location",
    "trigger_id",
    "skip_slack_parsing",
    "attachments",
    "extra_responses",
    "blocks",
];

impl CommandResponse {
    /// A plain-text reply.
    pub fn text(text: impl Into<String>) -> CommandResponse {
        CommandResponse {
            text: text.into(),
            ..Default::default()
        }
    }

    /// An ephemeral reply, the form built-in commands use for their errors.
    pub fn ephemeral(text: impl Into<String>) -> CommandResponse {
        CommandResponse {
            response_type: "ephemeral".into(),
            text: text.into(),
            ..Default::default()
        }
    }

    pub fn in_channel(text: impl Into<String>) -> CommandResponse {
        CommandResponse {
            response_type: "in_channel".into(),
            text: text.into(),
            ..Default::default()
        }
    }

    /// JSON when the media type is exactly `application/json` (parameters
    /// ignored, case-sensitive, as Mattermost compares it); any other body is
    /// the reply's text. JSON must be one whole value.
    pub fn from_http(content_type: Option<&str>, body: &[u8]) -> Result<CommandResponse, String> {
        let media = content_type
            .and_then(|ct| ct.split(';').next())
            .map(str::trim)
            .unwrap_or("");
        if media == "application/json" {
            CommandResponse::from_value(crate::json::whole_value(body)?)
        } else {
            Ok(CommandResponse::text(String::from_utf8_lossy(body)))
        }
    }

    /// Go's decoding into the struct: keys in any case, `null` leaves a
    /// field empty, a wrong type is an error. Null attachments, fields and
    /// extra responses are dropped (a null extra response crashes Mattermost).
    pub fn from_value(value: Value) -> Result<CommandResponse, String> {
        let mut obj = match value {
            Value::Null => return Ok(CommandResponse::default()),
            Value::Object(obj) => obj,
            other => {
                return Err(format!(
                    "cannot decode {} into a command response",
                    kind(&other)
                ));
            }
        };
        crate::json::fold_keys(&mut obj, KEYS);
        let mut r = CommandResponse::default();
        let mut blocks = None;
        for (key, value) in obj {
            if value.is_null() {
                continue;
            }
            match key.as_str() {
                "response_type" => r.response_type = string(&key, value)?,
                "text" => r.text = string(&key, value)?,
                "username" => r.username = string(&key, value)?,
                "channel_id" => r.channel_id = string(&key, value)?,
                "icon_url" => r.icon_url = string(&key, value)?,
                "type" => r.post_type = string(&key, value)?,
                "goto_location" => r.goto_location = string(&key, value)?,
                "trigger_id" => r.trigger_id = string(&key, value)?,
                "skip_slack_parsing" => {
                    r.skip_slack_parsing = value
                        .as_bool()
                        .ok_or_else(|| mistyped(&key, &value, "bool"))?
                }
                "props" => match value {
                    Value::Object(props) => r.props = Some(props),
                    other => return Err(mistyped(&key, &other, "object")),
                },
                "attachments" => r.attachments = Some(decode_attachments(&value)?),
                "extra_responses" => match value {
                    Value::Array(items) => {
                        r.extra_responses = Some(
                            items
                                .into_iter()
                                .filter(|item| !item.is_null())
                                .map(CommandResponse::from_value)
                                .collect::<Result<_, _>>()?,
                        )
                    }
                    other => return Err(mistyped(&key, &other, "array")),
                },
                "blocks" => blocks = Some(value),
                _ => {}
            }
        }
        // Slack apps answer with Block Kit; Mattermost would show nothing of it.
        if let Some(blocks) = blocks {
            crate::slack::blocks::apply_to_message(&mut r.text, &mut r.props, &blocks);
        }
        Ok(r)
    }

    /// The JSON Mattermost returns to the invoking client: every member,
    /// `null` for absent lists and props.
    pub fn to_json(&self) -> Value {
        json!({
            "response_type": self.response_type,
            "text": self.text,
            "username": self.username,
            "channel_id": self.channel_id,
            "icon_url": self.icon_url,
            "type": self.post_type,
            "props": self.props,
            "goto_location": self.goto_location,
            "trigger_id": self.trigger_id,
            "skip_slack_parsing": self.skip_slack_parsing,
            "attachments": self.attachments,
            "extra_responses": self
                .extra_responses
                .as_ref()
                .map(|list| list.iter().map(CommandResponse::to_json).collect::<Vec<_>>()),
        })
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn mistyped(key: &str, value: &Value, want: &str) -> String {
    format!(
        "cannot decode {} into field {key} of type {want}",
        kind(value)
    )
}

fn string(key: &str, value: Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(mistyped(key, &other, "string")),
    }
}

/// Who a response speaks for: the command's stored name and icon (empty for
/// built-ins), and whether it is built in (its posts are the user's own).
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub username: &'a str,
    pub icon_url: &'a str,
    pub built_in: bool,
    /// The custom command answering (empty for built-ins): clicks on the
    /// buttons of its posts are signed with its signing secret.
    pub command_id: &'a str,
}

/// Where the command was run: its posts go there, by that user.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    pub user_id: &'a str,
    pub channel_id: &'a str,
    pub root_id: &'a str,
    /// Without a leading `/`, for error messages.
    pub trigger: &'a str,
}

/// Mattermost's `HandleCommandResponse`: the response, then each extra
/// response. A failure does not stop the others; any failure makes the whole
/// call fail with `create_post_failed` (posts already made stay). The main
/// response's text and attachments are left Slack-translated, as the client sees them.
pub fn handle(
    host: &dyn Host,
    origin: Origin<'_>,
    at: Invocation<'_>,
    response: &mut CommandResponse,
) -> Result<(), ApiError> {
    let mut failures = Vec::new();
    if let Err(e) = post_one(host, origin, at, response) {
        failures.push(e);
    }
    if let Some(extra) = &mut response.extra_responses {
        for r in extra {
            if let Err(e) = post_one(host, origin, at, r) {
                failures.push(e);
            }
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    let detail: Vec<String> = failures
        .iter()
        .map(|e| format!("{} ({}): {}", e.id, e.status, e.detailed_error))
        .collect();
    host.log(
        crate::host::Level::Warn,
        &format!(
            "/{} response posts failed: {}",
            at.trigger,
            detail.join("; ")
        ),
    );
    Err(ApiError::new(
        500,
        "api.command.execute_command.create_post_failed.app_error",
        format!(
            "Command '{}' failed to post response. Please contact your System Administrator.",
            at.trigger
        ),
    )
    .with_detail(detail.join("; ")))
}

/// Mattermost's `HandleCommandResponsePost` and `CreateCommandPost` for one response.
fn post_one(
    host: &dyn Host,
    origin: Origin<'_>,
    at: Invocation<'_>,
    r: &mut CommandResponse,
) -> Result<(), ApiError> {
    let settings = host.settings();
    let mut post = new_post(at.user_id, at.channel_id, String::new());
    post.root_id = at.root_id.to_string();
    post.post_type = r.post_type.clone();
    let mut props = r.props.clone().unwrap_or_default();
    // Overrides a response writes into `props` itself obey the same settings
    // as its `username` and `icon_url`, as recent Mattermost versions do.
    if !settings.enable_post_username_override {
        props.remove("override_username");
    }
    if !settings.enable_post_icon_override {
        props.remove("override_icon_url");
        props.remove("override_icon_emoji");
    }

    if !r.channel_id.is_empty() {
        if !host
            .is_channel_member(&r.channel_id, at.user_id)
            .unwrap_or(false)
        {
            return Err(ApiError::new(
                403,
                "api.command.command_post.forbidden.app_error",
                "Specified user is not a member of specified channel.",
            ));
        }
        post.channel_id = r.channel_id.clone();
    }

    let mut from_webhook = !origin.built_in;
    if settings.enable_post_username_override {
        let name = first_non_empty(origin.username, &r.username);
        if !name.is_empty() {
            props.insert("override_username".into(), json!(name));
            from_webhook = true;
        }
    }
    if settings.enable_post_icon_override {
        let icon = first_non_empty(origin.icon_url, &r.icon_url);
        props.insert("override_icon_url".into(), json!(icon));
        from_webhook |= !icon.is_empty();
    }
    if from_webhook {
        props.insert("from_webhook".into(), json!("true"));
    }

    if !r.skip_slack_parsing {
        let username_of = |id: &str| host.user(id).ok().map(|u| u.username);
        r.text = announcements_and_mentions(&r.text, &username_of);
        if let Some(attachments) = &mut r.attachments {
            translate_attachments(attachments, &username_of);
        }
    }

    post.message = if r.skip_slack_parsing {
        r.text.clone()
    } else {
        links_lenient(&r.text)
    };
    if post.post_type.starts_with("system_") {
        return Err(ApiError::invalid_param("post.type"));
    }
    if let Some(attachments) = &mut r.attachments {
        // Links in attachments are converted even with skip_slack_parsing.
        link_attachments(attachments);
        for action in attachments.iter_mut().flat_map(|a| a.actions.iter_mut()) {
            if action.id.is_empty() {
                action.id = ids::new_id();
            }
        }
        props.insert(
            "attachments".into(),
            serde_json::to_value(&*attachments).unwrap_or(Value::Null),
        );
        if post.post_type.is_empty() {
            post.post_type = "slack_attachment".into();
        }
    }
    post.props = Value::Object(props).to_string();

    let signer = crate::action_cookie::command_signer(origin.command_id);
    match r.response_type.as_str() {
        "in_channel" => {
            if !signer.is_empty() {
                crate::action_cookie::seal_cookies(host, &mut post, &signer);
            }
            super::create_in_channel(host, post).map_err(|e| {
                ApiError::host(
                    "api.command.execute_command.create_post_failed.app_error",
                    &e,
                )
            })?;
        }
        "" | "ephemeral" if !r.text.is_empty() || r.attachments.is_some() => {
            post.post_type = "system_ephemeral".into();
            // Never stored: its actions carry what a click needs in cookies.
            crate::action_cookie::seal_cookies(host, &mut post, &signer);
            host.create_ephemeral(at.user_id, post).map_err(|e| {
                ApiError::host(
                    "api.command.execute_command.create_post_failed.app_error",
                    &e,
                )
            })?;
        }
        // Any other response type posts nothing, without error.
        _ => {}
    }
    Ok(())
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::ChannelType;
    use crate::testing::{FakeHost, channel, user};

    fn kind_of(r: Result<CommandResponse, String>) -> Result<CommandResponse, ()> {
        r.map_err(|_| ())
    }

    #[test]
    fn decoding_by_content_type() {
        let json = Some("application/json");
        let r = CommandResponse::from_http(json, br#"{"TEXT":"hi","Response_Type":"in_channel"}"#)
            .unwrap();
        assert_eq!(
            (r.text.as_str(), r.response_type.as_str()),
            ("hi", "in_channel")
        );
        let r = CommandResponse::from_http(
            Some("application/json; charset=utf-8"),
            b"{\"text\":\"x\"}\n",
        )
        .unwrap();
        assert_eq!(r.text, "x");
        // Case-sensitive media type: anything else is plain text, JSON or not.
        for ct in [
            None,
            Some("text/plain"),
            Some("Application/JSON"),
            Some("application/jsonx"),
        ] {
            let r = CommandResponse::from_http(ct, br#"{"text":"raw"}"#).unwrap();
            assert_eq!(r.text, r#"{"text":"raw"}"#, "{ct:?}");
            assert_eq!(r.response_type, "");
        }
        let errors: &[&[u8]] = &[
            b"",
            b"{",
            br#"{"text":"a"} trailing"#,
            br#"{"text":5}"#,
            br#"{"skip_slack_parsing":"yes"}"#,
            br#"{"props":[]}"#,
            br#"{"attachments":{}}"#,
            br#"{"attachments":[{"fields":[{"short":"maybe"}]}]}"#,
            br#"{"extra_responses":{}}"#,
            br#"{"extra_responses":[{"text":1}]}"#,
            b"[]",
            b"\"text\"",
        ];
        for body in errors {
            assert_eq!(
                kind_of(CommandResponse::from_http(json, body)),
                Err(()),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            CommandResponse::from_http(json, b"null").unwrap(),
            CommandResponse::default()
        );
    }

    #[test]
    fn nulls_and_lists() {
        let r = CommandResponse::from_value(json!({
            "text": null, "attachments": [null, {"text": "a"}], "extra_responses": [null, {"text": "e"}],
            "props": {"k": 1}, "skip_slack_parsing": true
        }))
        .unwrap();
        assert_eq!(r.text, "");
        assert_eq!(r.attachments.as_ref().unwrap().len(), 1);
        assert_eq!(r.extra_responses.as_ref().unwrap()[0].text, "e");
        assert_eq!(r.props.unwrap()["k"], 1);
        assert!(r.skip_slack_parsing);
        let empty = CommandResponse::from_value(json!({"attachments": []})).unwrap();
        assert_eq!(empty.attachments, Some(vec![]));
        let out = CommandResponse::text("t").to_json();
        assert_eq!(out["attachments"], Value::Null);
        assert_eq!(out["props"], Value::Null);
        assert_eq!(out["extra_responses"], Value::Null);
        assert_eq!(out.as_object().unwrap().len(), 12);
    }

    struct Setup {
        host: FakeHost,
    }

    impl Setup {
        fn new() -> Setup {
            let host = FakeHost::default();
            host.users.borrow_mut().push(user("u1", "alice"));
            host.users.borrow_mut().push(user("U123", "bob"));
            host.channels
                .borrow_mut()
                .push(channel("c1", "t1", "town-square", ChannelType::Open));
            host.channels
                .borrow_mut()
                .push(channel("c2", "t1", "other", ChannelType::Open));
            host.add_channel_member("c1", "u1").unwrap();
            Setup { host }
        }

        fn run(&self, origin: Origin<'_>, r: &mut CommandResponse) -> Result<(), ApiError> {
            handle(
                &self.host,
                origin,
                Invocation {
                    user_id: "u1",
                    channel_id: "c1",
                    root_id: "",
                    trigger: "deploy",
                },
                r,
            )
        }

        fn props(&self, i: usize) -> Value {
            serde_json::from_str(&self.host.posts.borrow()[i].props).unwrap()
        }
    }

    const CUSTOM: Origin<'static> = Origin {
        username: "",
        icon_url: "",
        built_in: false,
        command_id: "",
    };

    #[test]
    fn response_types() {
        let s = Setup::new();
        let mut r = CommandResponse::from_value(json!({
            "response_type": "in_channel", "text": "<!here> see <http://x|docs> <@U123>",
            "extra_responses": [
                {"text": "private"},
                {"response_type": "ephemeral", "attachments": []},
                {"response_type": "ephemeral", "text": ""},
                {"response_type": "comment", "text": "nothing"}
            ]
        }))
        .unwrap();
        s.run(CUSTOM, &mut r).unwrap();
        let posts = s.host.posts.borrow();
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].message, "@here see [docs](http://x) @bob");
        assert_eq!(posts[0].user_id, "u1");
        drop(posts);
        assert_eq!(s.props(0)["from_webhook"], "true");
        // The client sees the translated text, links still in Slack form.
        assert_eq!(r.text, "@here see <http://x|docs> @bob");
        let eph = s.host.ephemerals.borrow();
        assert_eq!(eph.len(), 2);
        assert_eq!(eph[0].0, "u1");
        assert_eq!(eph[0].1.message, "private");
        assert_eq!(eph[0].1.post_type, "system_ephemeral");
        assert_eq!(eph[1].1.message, "");
    }

    #[test]
    fn skip_slack_parsing_still_links_attachments() {
        let s = Setup::new();
        let mut r = CommandResponse::from_value(json!({
            "response_type": "in_channel", "skip_slack_parsing": true,
            "text": "<!here> <http://x|docs>",
            "attachments": [{"text": "<http://y|why> <!channel>", "actions": [{"name": "go"}]}]
        }))
        .unwrap();
        s.run(CUSTOM, &mut r).unwrap();
        let post = s.host.posts.borrow()[0].clone();
        assert_eq!(post.message, "<!here> <http://x|docs>");
        assert_eq!(post.post_type, "slack_attachment");
        let props = s.props(0);
        assert_eq!(
            props["attachments"][0]["text"],
            "[why](http://y) <!channel>"
        );
        assert_eq!(
            props["attachments"][0]["actions"][0]["id"]
                .as_str()
                .unwrap()
                .len(),
            26
        );
    }

    #[test]
    fn channel_override_needs_membership() {
        let s = Setup::new();
        let mut r = CommandResponse {
            channel_id: "c2".into(),
            ..CommandResponse::in_channel("x")
        };
        let err = s.run(CUSTOM, &mut r).unwrap_err();
        assert_eq!(
            err.id,
            "api.command.execute_command.create_post_failed.app_error"
        );
        assert_eq!(err.status, 500);
        assert!(
            err.detailed_error
                .contains("api.command.command_post.forbidden.app_error")
        );
        s.host.add_channel_member("c2", "u1").unwrap();
        s.run(CUSTOM, &mut r).unwrap();
        assert_eq!(s.host.posts.borrow()[0].channel_id, "c2");
    }

    #[test]
    fn a_failing_extra_response_does_not_stop_the_others() {
        let s = Setup::new();
        let mut r = CommandResponse::from_value(json!({
            "response_type": "in_channel", "text": "one", "type": "system_join_channel",
            "extra_responses": [{"response_type": "in_channel", "text": "two"}]
        }))
        .unwrap();
        let err = s.run(CUSTOM, &mut r).unwrap_err();
        assert!(
            err.detailed_error
                .contains("api.context.invalid_param.app_error")
        );
        let posts = s.host.posts.borrow();
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].message, "two");
    }

    #[test]
    fn overrides() {
        let s = Setup::new();
        let with_props = || {
            CommandResponse::from_value(json!({
                "response_type": "in_channel", "text": "x", "username": "resp", "icon_url": "http://r",
                "props": {"override_username": "sneaky", "override_icon_emoji": ":x:", "card": "c"}
            }))
            .unwrap()
        };
        let built_in = Origin {
            username: "",
            icon_url: "",
            built_in: true,
            command_id: "",
        };
        // Overrides off: none applied, the sender's own override props dropped.
        s.run(built_in, &mut with_props()).unwrap();
        let p = s.props(0);
        assert_eq!(p, json!({"card": "c"}));

        s.host.settings.borrow_mut().enable_post_username_override = true;
        s.host.settings.borrow_mut().enable_post_icon_override = true;
        let stored = Origin {
            username: "stored",
            icon_url: "",
            built_in: true,
            command_id: "",
        };
        s.run(stored, &mut with_props()).unwrap();
        let p = s.props(1);
        assert_eq!(p["override_username"], "stored");
        assert_eq!(p["override_icon_url"], "http://r");
        assert_eq!(p["override_icon_emoji"], ":x:");
        assert_eq!(p["from_webhook"], "true");

        // Built in, nothing to override with: an empty icon prop, no from_webhook.
        s.run(built_in, &mut CommandResponse::in_channel("plain"))
            .unwrap();
        let p = s.props(2);
        assert_eq!(p, json!({"override_icon_url": ""}));
    }
}
