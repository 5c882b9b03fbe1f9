// The body of `POST /hooks/{id}`: picks the decoder from the Content-Type as Mattermost does
// (JSON, form `payload=`, multipart fields) and decodes it into one request (spec §3.2, §3.3).

mod media_type;
mod multipart;

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::json::{first_value, fold_keys};
use crate::slack::attachment::{Attachment, decode_attachments_noting};
use crate::slack::blocks;

/// What an incoming webhook asks for, before any hook, channel or Slack processing.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct IncomingRequest {
    pub text: String,
    pub username: String,
    pub icon_url: String,
    pub icon_emoji: String,
    pub channel: String,
    /// Mattermost's request has no such field and ignores the key; decoded for threading.
    pub root_id: String,
    /// Free-form: its keys are kept exactly as sent.
    pub props: Option<Map<String, Value>>,
    /// Null attachments and fields dropped, field values stringified (spec §3.2 step 4).
    #[serde(skip)]
    pub attachments: Vec<Attachment>,
    #[serde(rename = "type")]
    pub post_type: String,
    pub priority: Option<Priority>,
    /// Paths of the members sent that nothing used (unknown keys, Block Kit parts with no
    /// rendering), for the `X-Switchboard-Ignored` answer header.
    #[serde(skip)]
    pub ignored: Vec<String>,
}

pub use crate::webhook_post::Priority;

/// Why a body was refused; each maps to its own Mattermost error id (spec §3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// `web.incoming_webhook.parse_form.app_error`
    ParseForm(String),
    /// `web.incoming_webhook.parse_multipart.app_error`
    ParseMultipart(String),
    /// `web.incoming_webhook.decode.app_error`
    Decode(String),
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::ParseForm(e) => write!(f, "parse form: {e}"),
            PayloadError::ParseMultipart(e) => write!(f, "parse multipart: {e}"),
            PayloadError::Decode(e) => write!(f, "decode: {e}"),
        }
    }
}

impl std::error::Error for PayloadError {}

const REQUEST_KEYS: &[&str] = &[
    "text",
    "username",
    "icon_url",
    "icon_emoji",
    "channel",
    "root_id",
    "props",
    "attachments",
    "type",
    "priority",
    "blocks",
    "thread_ts",
];
const PRIORITY_KEYS: &[&str] = &["priority", "requested_ack", "persistent_notifications"];
/// Keys whose string values senders fill from multi-line templates without escaping.
const REPAIRED_KEYS: &[&str] = &[
    "text",
    "fallback",
    "pretext",
    "author_name",
    "title",
    "value",
];

/// Decodes an incoming webhook body sent with the given `Content-Type` header.
pub fn parse_incoming(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<IncomingRequest, PayloadError> {
    // Go reads an empty header as no header.
    let Some(content_type) = content_type.filter(|ct| !ct.is_empty()) else {
        return decode_json(body);
    };
    let media = media_type::parse(content_type).map_err(PayloadError::ParseForm)?;
    match media.essence.as_str() {
        "application/x-www-form-urlencoded" => {
            // Slack accepts a JSON body under a form content type, and some senders rely on
            // it; no form encoder leaves a leading `{` unescaped, so this is unambiguous.
            if body.iter().find(|b| !is_json_space(**b)) == Some(&b'{') {
                return decode_json(body);
            }
            let payload = form_payload(body).map_err(PayloadError::ParseForm)?;
            decode_json(payload.unwrap_or_default().as_bytes())
        }
        "multipart/form-data" => {
            let boundary = media
                .param("boundary")
                .ok_or_else(|| PayloadError::ParseMultipart("no multipart boundary".to_owned()))?;
            let fields =
                multipart::form_values(body, boundary).map_err(PayloadError::ParseMultipart)?;
            from_form_fields(fields)
        }
        _ => decode_json(body),
    }
}

/// The first `payload` field of a form body. Go's `ParseQuery` refuses a body with an
/// unencoded `;` or a bad `%` escape anywhere, so those refuse the whole request.
fn form_payload(body: &[u8]) -> Result<Option<String>, String> {
    for pair in body.split(|b| *b == b'&') {
        if pair.contains(&b';') {
            return Err("invalid semicolon separator in query".to_owned());
        }
        let bad_escape = pair.iter().enumerate().any(|(i, b)| {
            *b == b'%'
                && !pair
                    .get(i + 1..i + 3)
                    .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
        });
        if bad_escape {
            return Err("invalid URL escape in a form field".to_owned());
        }
    }
    Ok(url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "payload")
        .map(|(_, value)| value.into_owned()))
}

/// Multipart fields map by Go field name, in any case (gorilla/schema); the last value wins.
fn from_form_fields(fields: Vec<(String, String)>) -> Result<IncomingRequest, PayloadError> {
    let mut request = IncomingRequest::default();
    for (name, value) in fields {
        let slot = match name.to_ascii_lowercase().as_str() {
            "text" => &mut request.text,
            "username" => &mut request.username,
            "iconurl" => &mut request.icon_url,
            "channelname" => &mut request.channel,
            "type" => &mut request.post_type,
            "iconemoji" => &mut request.icon_emoji,
            _ => {
                return Err(PayloadError::Decode(format!(
                    "schema: invalid path {name:?}"
                )));
            }
        };
        *slot = value;
    }
    Ok(request)
}

/// Go's streaming decode (first value wins, trailing bytes ignored), retried once with raw
/// line breaks and tabs escaped when the body is not valid JSON.
fn decode_json(body: &[u8]) -> Result<IncomingRequest, PayloadError> {
    let value = match first_value(body) {
        Ok(value) => value,
        Err(first) => match escape_raw_line_breaks(body) {
            Some(repaired) => first_value(&repaired).map_err(PayloadError::Decode)?,
            None => return Err(PayloadError::Decode(first)),
        },
    };
    from_value(value).map_err(PayloadError::Decode)
}

fn from_value(value: Value) -> Result<IncomingRequest, String> {
    let mut obj = match value {
        // Go leaves the struct untouched when decoding `null` into it.
        Value::Null => return Ok(IncomingRequest::default()),
        Value::Object(obj) => obj,
        Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Array(_) => {
            return Err("a webhook request must be a JSON object".to_owned());
        }
    };
    fold_keys(&mut obj, REQUEST_KEYS);
    obj.retain(|_, v| !v.is_null());
    let mut ignored: Vec<String> = obj
        .keys()
        .filter(|k| !REQUEST_KEYS.contains(&k.as_str()))
        .cloned()
        .collect();
    if let Some(Value::Object(priority)) = obj.get_mut("priority") {
        fold_keys(priority, PRIORITY_KEYS);
        priority.retain(|_, v| !v.is_null());
    }
    let attachments = obj.remove("attachments");
    let blocks = obj.remove("blocks");
    // Slack's name for the thread to reply in; here it is a root post's id.
    let thread_ts = obj.remove("thread_ts");
    let mut request: IncomingRequest =
        serde_json::from_value(Value::Object(obj)).map_err(|e| e.to_string())?;
    if let Some(attachments) = attachments {
        request.attachments = decode_attachments_noting(&attachments, &mut ignored)?;
    }
    if let Some(Value::String(thread)) = thread_ts
        && request.root_id.is_empty()
    {
        request.root_id = thread;
    }
    if let Some(blocks) = blocks {
        ignored.extend(blocks::apply_to_message(
            &mut request.text,
            &mut request.props,
            &blocks,
        ));
    }
    request.ignored = ignored;
    Ok(request)
}

/// Escapes raw LF and TAB inside the string values of [`REPAIRED_KEYS`] (any case, like the
/// decoder), or `None` if there was nothing to escape. Unlike Mattermost's regex this follows
/// JSON string syntax, so an escaped backslash before a quote cannot run a match on.
fn escape_raw_line_breaks(body: &[u8]) -> Option<Vec<u8>> {
    #[derive(Clone, Copy)]
    enum After {
        Other,
        Key { repaired: bool },
        Colon { repaired: bool },
    }
    let mut out = Vec::with_capacity(body.len() + 16);
    let mut state = After::Other;
    let mut changed = false;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b != b'"' {
            out.push(b);
            i += 1;
            state = match (b, state) {
                (b':', After::Key { repaired }) => After::Colon { repaired },
                (b, state) if is_json_space(b) => state,
                _ => After::Other,
            };
            continue;
        }
        let end = string_end(body, i + 1);
        let content = &body[i + 1..end];
        out.push(b'"');
        if let After::Colon { repaired: true } = state {
            for &c in content {
                match c {
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    c => out.push(c),
                }
                changed |= c == b'\n' || c == b'\t';
            }
        } else {
            out.extend_from_slice(content);
        }
        out.extend_from_slice(body.get(end..=end).unwrap_or_default());
        let repaired = REPAIRED_KEYS
            .iter()
            .any(|k| k.as_bytes().eq_ignore_ascii_case(content));
        state = After::Key { repaired };
        i = end + 1;
    }
    changed.then_some(out)
}

/// Index of the quote closing a string whose content starts at `from` (or the body's end).
fn string_end(body: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < body.len() {
        match body[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    body.len()
}

fn is_json_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn text_of(content_type: Option<&str>, body: &str) -> Result<String, PayloadError> {
        parse_incoming(content_type, body.as_bytes()).map(|r| r.text)
    }

    fn kind(e: &PayloadError) -> &'static str {
        match e {
            PayloadError::ParseForm(_) => "form",
            PayloadError::ParseMultipart(_) => "multipart",
            PayloadError::Decode(_) => "decode",
        }
    }

    #[test]
    fn content_types_select_the_decoder() {
        let json = r#"{"text":"hi"}"#;
        let cases: &[(Option<&str>, &str, Result<&str, &str>)] = &[
            (None, json, Ok("hi")),
            (Some(""), json, Ok("hi")),
            (Some("application/json"), json, Ok("hi")),
            (Some("application/json; charset=utf-8"), json, Ok("hi")),
            (Some("application/json;charset=utf-8"), json, Ok("hi")),
            (Some("APPLICATION/JSON"), json, Ok("hi")),
            (Some("text/plain"), json, Ok("hi")),
            (Some("mimetype/wrong"), json, Ok("hi")),
            (Some("application/json; charset"), json, Err("form")),
            (
                Some("application/x-www-form-urlencoded wrongtext"),
                json,
                Err("form"),
            ),
            (Some("application/json charset=utf-8"), json, Err("form")),
            (Some("multipart/form-data"), json, Err("multipart")),
        ];
        for (content_type, body, want) in cases {
            let got = text_of(*content_type, body);
            let got = got.as_deref().map_err(kind);
            assert_eq!(got, *want, "{content_type:?}");
        }
    }

    #[test]
    fn form_payload_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("payload=%7B%22text%22%3A%22a+b%20c%22%7D", Ok("a b c")),
            ("payload={\"text\":\"a+b\"}", Ok("a b")),
            ("other=1&payload=%7B%22text%22%3A%22x%22%7D", Ok("x")),
            (
                "payload=%7B%22text%22%3A%221%22%7D&payload=%7B%22text%22%3A%222%22%7D",
                Ok("1"),
            ),
            ("payload=%7B%22text%22%3A%22a%3Bb%22%7D", Ok("a;b")),
            ("payload=%7B%22text%22%3A%22a;b%22%7D", Err("form")),
            ("x=1;y=2", Err("form")),
            ("payload=%7B%22text%22%3A%22100%%22%7D", Err("form")),
            ("payload=%zz", Err("form")),
            ("payload=%4", Err("form")),
            ("other=1", Err("decode")),
            ("", Err("decode")),
            ("payload=", Err("decode")),
            ("payload=not+json", Err("decode")),
            // JSON sent as a form, as Slack allows, even with `;` and `%` inside.
            ("{\"text\":\"100%; done\"}", Ok("100%; done")),
            (" \r\n{\"text\":\"lead\"} trailing", Ok("lead")),
            ("[1]", Err("decode")),
        ];
        for (body, want) in cases {
            let got = text_of(FORM, body);
            assert_eq!(got.as_deref().map_err(kind), *want, "{body:?}");
        }
        let charset = Some("application/x-www-form-urlencoded; charset=utf-8");
        assert_eq!(
            text_of(charset, "payload=%7B%22text%22%3A%22x%22%7D").unwrap(),
            "x"
        );
    }

    #[test]
    fn json_body_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            (r#"{"text":"a"}"#, Ok("a")),
            (r#"{"TEXT":"a"}"#, Ok("a")),
            (r#"{"text":"a","Text":"b"}"#, Ok("b")),
            (r#"{"text":null}"#, Ok("")),
            (r#"{"text":"a"} trailing bytes"#, Ok("a")),
            (r#"{"text":"a"}{"text":"b"}"#, Ok("a")),
            ("null", Ok("")),
            (r#"{"unknown":1,"text":"a"}"#, Ok("a")),
            ("\"text\"", Err("decode")),
            ("[]", Err("decode")),
            (r#"{"text":5}"#, Err("decode")),
            (r#"{"props":[]}"#, Err("decode")),
            (r#"{"priority":"high"}"#, Err("decode")),
            (r#"{"attachments":{}}"#, Err("decode")),
            (
                r#"{"attachments":[{"fields":[{"short":"yes"}]}]}"#,
                Err("decode"),
            ),
            ("", Err("decode")),
            ("{", Err("decode")),
        ];
        for (body, want) in cases {
            let got = text_of(None, body);
            assert_eq!(got.as_deref().map_err(kind), *want, "{body:?}");
        }
    }

    #[test]
    fn raw_line_breaks_are_repaired_only_in_text_like_keys() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("{\"text\": \"line\none\ttab\"}", Ok("line\none\ttab")),
            ("{\"Text\" :\n \"a\nb\"}", Ok("a\nb")),
            ("{\"text\":\"a\\\\\",\"username\":\"x\ny\"}", Err("decode")),
            ("{\"username\":\"x\ny\",\"text\":\"a\"}", Err("decode")),
            ("{\"text\":\"carriage\rreturn\"}", Err("decode")),
            ("{\"text\":\"bell\u{7}\"}", Err("decode")),
        ];
        for (body, want) in cases {
            let got = text_of(Some("application/json"), body);
            assert_eq!(got.as_deref().map_err(kind), *want, "{body:?}");
        }
        let body = "{\"text\":\"t\",\"attachments\":[{\"fallback\":\"f\n\",\"pretext\":\"p\t\",\"author_name\":\"a\n\",\"title\":\"ti\n\",\"text\":\"x\n\",\"fields\":[{\"title\":\"ft\",\"value\":\"v\n\"}]}]}";
        let request = parse_incoming(None, body.as_bytes()).unwrap();
        let a = &request.attachments[0];
        assert_eq!(
            (
                a.fallback.as_str(),
                a.pretext.as_str(),
                a.author_name.as_str()
            ),
            ("f\n", "p\t", "a\n")
        );
        assert_eq!((a.title.as_str(), a.text.as_str()), ("ti\n", "x\n"));
        assert_eq!(a.fields[0].value, json!("v\n"));
        let footer = "{\"text\":\"t\",\"attachments\":[{\"footer\":\"f\n\"}]}";
        assert!(parse_incoming(None, footer.as_bytes()).is_err());
    }

    #[test]
    fn decodes_every_member() {
        let body = json!({
            "Text": "t", "USERNAME": "u", "icon_url": "i", "Icon_Emoji": ":e:",
            "channel": "town-square", "root_id": "r", "type": "custom_x",
            "props": {"Card": "c", "nested": {"A": 1}},
            "attachments": [null, {"text": "a", "fields": [null, {"value": 1000000}]}],
            "PRIORITY": {"Priority": "urgent", "requested_ack": true}
        });
        let request = parse_incoming(None, body.to_string().as_bytes()).unwrap();
        assert_eq!(
            request,
            IncomingRequest {
                text: "t".into(),
                username: "u".into(),
                icon_url: "i".into(),
                icon_emoji: ":e:".into(),
                channel: "town-square".into(),
                root_id: "r".into(),
                props: json!({"Card": "c", "nested": {"A": 1}})
                    .as_object()
                    .cloned(),
                attachments: vec![Attachment {
                    text: "a".into(),
                    fields: vec![crate::slack::attachment::AttachmentField {
                        value: json!("1000000"),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                post_type: "custom_x".into(),
                priority: Some(Priority {
                    priority: Some("urgent".into()),
                    requested_ack: Some(true),
                    persistent_notifications: None,
                }),
                ignored: Vec::new(),
            }
        );
        let empty_priority = parse_incoming(None, br#"{"priority":{}}"#).unwrap();
        assert_eq!(empty_priority.priority, Some(Priority::default()));
        let nulls = parse_incoming(
            None,
            br#"{"priority":null,"props":null,"attachments":[null]}"#,
        );
        let nulls = nulls.unwrap();
        assert_eq!(
            (nulls.priority, nulls.props, nulls.attachments),
            (None, None, vec![])
        );
    }

    #[test]
    fn multipart_fields_map_by_go_field_name() {
        let ct = Some("multipart/form-data; boundary=b0undary");
        let part = |name: &str, value: &str| {
            format!(
                "--b0undary\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
        };
        let body = [
            part("Text", "hello"),
            part("username", "bot"),
            part("IconURL", "http://i"),
            part("channelname", "dev"),
            part("type", "custom_t"),
            part("iconemoji", ":smile:"),
            part("text", "hello again"),
            "--b0undary--\r\n".to_owned(),
        ]
        .concat();
        let request = parse_incoming(ct, body.as_bytes()).unwrap();
        assert_eq!(request.text, "hello again");
        assert_eq!(
            (
                request.username.as_str(),
                request.icon_url.as_str(),
                request.channel.as_str()
            ),
            ("bot", "http://i", "dev")
        );
        assert_eq!(
            (request.post_type.as_str(), request.icon_emoji.as_str()),
            ("custom_t", ":smile:")
        );
        for name in ["channel", "icon_url", "icon_emoji", "attachments.0.text"] {
            let body = [part(name, "x"), "--b0undary--\r\n".to_owned()].concat();
            let got = parse_incoming(ct, body.as_bytes());
            assert_eq!(got.as_ref().map_err(kind).err(), Some("decode"), "{name}");
        }
        let got = parse_incoming(ct, b"garbage");
        assert_eq!(got.as_ref().map_err(kind).err(), Some("multipart"));
    }
}
