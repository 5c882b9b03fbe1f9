// Slack-style message attachments as Mattermost stores them in a post's `attachments` prop:
// decoded with Go's tolerance (any key case, nulls) and written in Mattermost's key order.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};

use super::blocks::{self, Target};
use crate::json::fold_keys;

/// One attachment. Every key is written, even when empty, because that is what Mattermost
/// stores and what clients reading `props.attachments` see; only `actions` is left out when
/// there are none. Decode with [`decode_attachments`]: the derived `Deserialize` alone is
/// case-sensitive and refuses nulls, unlike Mattermost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attachment {
    pub id: i64,
    pub fallback: String,
    pub color: String,
    pub pretext: String,
    pub author_name: String,
    pub author_link: String,
    pub author_icon: String,
    pub title: String,
    pub title_link: String,
    pub text: String,
    /// Written as `null` when empty, as Mattermost does after dropping null fields.
    #[serde(serialize_with = "empty_as_null")]
    pub fields: Vec<AttachmentField>,
    pub image_url: String,
    pub thumb_url: String,
    pub footer: String,
    pub footer_icon: String,
    /// Kept as sent: senders use both epoch numbers and strings.
    pub ts: Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<PostAction>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttachmentField {
    pub title: String,
    /// A string or `null` once decoded by [`decode_attachments`].
    pub value: Value,
    #[serde(deserialize_with = "slack_bool")]
    pub short: bool,
}

/// A button or menu. Empty members are left out, as Mattermost's `omitempty` tags do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PostAction {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub action_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tooltip: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub style: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub data_source: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<PostActionOption>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub default_option: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration: Option<PostActionIntegration>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cookie: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PostActionOption {
    pub text: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PostActionIntegration {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// The integration's own data: its keys are never case-folded.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub context: Map<String, Value>,
}

const ATTACHMENT_KEYS: &[&str] = &[
    "id",
    "fallback",
    "color",
    "pretext",
    "author_name",
    "author_link",
    "author_icon",
    "title",
    "title_link",
    "text",
    "fields",
    "image_url",
    "thumb_url",
    "footer",
    "footer_icon",
    "ts",
    "actions",
    "blocks",
];
const FIELD_KEYS: &[&str] = &["title", "value", "short"];
const ACTION_KEYS: &[&str] = &[
    "id",
    "type",
    "name",
    "tooltip",
    "disabled",
    "style",
    "data_source",
    "options",
    "default_option",
    "integration",
    "cookie",
];
const OPTION_KEYS: &[&str] = &["text", "value"];
const INTEGRATION_KEYS: &[&str] = &["url", "context"];

/// Decodes the `attachments` array of a webhook or command response the way Mattermost does:
/// null attachments and null fields are dropped and every field value becomes a string.
/// `null` (or an absent array) gives no attachments; any other non-array is an error.
pub fn decode_attachments(v: &Value) -> Result<Vec<Attachment>, String> {
    decode_attachments_noting(v, &mut Vec::new())
}

/// [`decode_attachments`], adding to `unused` the path of every member it did not use
/// (unknown keys, and Block Kit parts with no rendering), as the sender wrote them.
pub fn decode_attachments_noting(
    v: &Value,
    unused: &mut Vec<String>,
) -> Result<Vec<Attachment>, String> {
    let mut v = v.clone();
    match &mut v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => {
            // Paths name attachments by the sender's index, nulls included.
            let sent_index: Vec<usize> =
                (0..items.len()).filter(|i| !items[*i].is_null()).collect();
            for (i, item) in items.iter().enumerate() {
                note_unknown_keys(item, &format!("attachments[{i}]"), unused);
            }
            normalize_list(items, normalize_attachment);
            for (item, i) in items.iter_mut().zip(sent_index) {
                if let Some(obj) = item.as_object_mut()
                    && let Some(blocks) = obj.remove("blocks")
                {
                    let path = format!("attachments[{i}].blocks");
                    unused.extend(apply_blocks(obj, &blocks, &path));
                }
            }
        }
        // Anything else is left for serde to reject with a type error.
        _ => {}
    }
    let mut attachments: Vec<Attachment> = serde_json::from_value(v).map_err(|e| e.to_string())?;
    for field in attachments.iter_mut().flat_map(|a| a.fields.iter_mut()) {
        if !field.value.is_null() && !field.value.is_string() {
            field.value = Value::String(stringify(&field.value));
        }
    }
    Ok(attachments)
}

/// Block Kit inside an attachment, as Slack shows it: the blocks replace the attachment's
/// text (which becomes its notification `fallback` when that is empty), the first header is
/// the title and section fields are fields, unless the sender set those members itself.
fn apply_blocks(obj: &mut Map<String, Value>, blocks: &Value, path: &str) -> Vec<String> {
    let is_empty = |obj: &Map<String, Value>, key: &str| {
        obj.get(key)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    };
    let has_title = !is_empty(obj, "title");
    let rendered = blocks::render(blocks, Target::Attachment { has_title }, path);
    let ignored = rendered.ignored;
    if !rendered.text.is_empty() {
        let old = obj.insert("text".to_owned(), Value::String(rendered.text));
        if let Some(Value::String(old)) = old
            && !old.is_empty()
            && is_empty(obj, "fallback")
        {
            obj.insert("fallback".to_owned(), Value::String(old));
        }
    }
    for (key, value) in [
        ("title", rendered.title),
        ("image_url", rendered.image_url),
        ("thumb_url", rendered.thumb_url),
    ] {
        if !value.is_empty() && is_empty(obj, key) {
            obj.insert(key.to_owned(), Value::String(value));
        }
    }
    if !rendered.fields.is_empty() {
        let fields = obj
            .entry("fields")
            .or_insert_with(|| Value::Array(Vec::new()));
        // A non-array `fields` is the sender's error, which serde reports.
        if let Value::Array(fields) = fields {
            fields.extend(rendered.fields.into_iter().map(
                |f| serde_json::json!({"title": f.title, "value": f.value, "short": f.short}),
            ));
        }
    }
    ignored
}

/// Adds the path of each key Mattermost's structs would not read, in an attachment and its
/// fields, actions, options and integration.
fn note_unknown_keys(attachment: &Value, path: &str, unused: &mut Vec<String>) {
    fn unknown(v: &Value, keys: &[&str], path: &str, unused: &mut Vec<String>) {
        let Some(obj) = v.as_object() else { return };
        for key in obj.keys() {
            if !keys.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                unused.push(format!("{path}.{key}"));
            }
        }
    }
    fn member<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
        v.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }
    fn each<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = (usize, &'a Value)> {
        member(v, key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
    }
    unknown(attachment, ATTACHMENT_KEYS, path, unused);
    for (i, field) in each(attachment, "fields") {
        unknown(field, FIELD_KEYS, &format!("{path}.fields[{i}]"), unused);
    }
    for (i, action) in each(attachment, "actions") {
        let action_path = format!("{path}.actions[{i}]");
        unknown(action, ACTION_KEYS, &action_path, unused);
        for (j, option) in each(action, "options") {
            let option_path = format!("{action_path}.options[{j}]");
            unknown(option, OPTION_KEYS, &option_path, unused);
        }
        if let Some(integration) = member(action, "integration") {
            let integration_path = format!("{action_path}.integration");
            unknown(integration, INTEGRATION_KEYS, &integration_path, unused);
        }
    }
}

// Go decodes these objects into structs: keys match in any case and a null member leaves the
// field empty. Both are applied to the JSON before the derived, case-sensitive serde decode.
fn normalize_attachment(v: &mut Value) {
    let Some(obj) = struct_members(v, ATTACHMENT_KEYS) else {
        return;
    };
    if let Some(Value::Array(fields)) = obj.get_mut("fields") {
        normalize_list(fields, normalize_field);
    }
    if let Some(Value::Array(actions)) = obj.get_mut("actions") {
        normalize_list(actions, normalize_action);
    }
}

fn normalize_field(v: &mut Value) {
    if let Value::Object(obj) = v {
        fold_keys(obj, FIELD_KEYS);
        // A null `short` must reach `slack_bool`, which rejects it as Mattermost does.
        obj.retain(|k, v| k == "short" || !v.is_null());
    }
}

fn normalize_action(v: &mut Value) {
    let Some(obj) = struct_members(v, ACTION_KEYS) else {
        return;
    };
    if let Some(Value::Array(options)) = obj.get_mut("options") {
        normalize_list(options, |o| {
            struct_members(o, OPTION_KEYS);
        });
    }
    if let Some(integration) = obj.get_mut("integration") {
        struct_members(integration, INTEGRATION_KEYS);
    }
}

fn struct_members<'a>(v: &'a mut Value, keys: &[&str]) -> Option<&'a mut Map<String, Value>> {
    let obj = v.as_object_mut()?;
    fold_keys(obj, keys);
    obj.retain(|_, v| !v.is_null());
    Some(obj)
}

// Null entries would be nil pointers in Mattermost (one of which crashes it); drop them.
fn normalize_list(items: &mut Vec<Value>, normalize: impl Fn(&mut Value)) {
    items.retain(|item| !item.is_null());
    items.iter_mut().for_each(normalize);
}

/// Mattermost's `SlackCompatibleBool`: `true`/`false` as JSON or as a string in any case.
fn slack_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(D::Error::custom(format!(
            "unable to convert {other} to bool"
        ))),
    }
}

fn empty_as_null<S: Serializer>(fields: &[AttachmentField], s: S) -> Result<S::Ok, S::Error> {
    if fields.is_empty() {
        s.serialize_none()
    } else {
        s.collect_seq(fields)
    }
}

/// Go's `%v` for decoded JSON, except that numbers read as people write them: Go would turn
/// `1000000` into `1e+06`, which no one sending a count or an ID wants to see.
fn stringify(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => human_number(n),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(stringify).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(obj) => {
            // Go's fmt prints maps with their keys sorted.
            let mut members: Vec<(&String, &Value)> = obj.iter().collect();
            members.sort_by_key(|(k, _)| *k);
            let members: Vec<String> = members
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", stringify(v)))
                .collect();
            format!("map[{}]", members.join(" "))
        }
    }
}

/// Integers in full; other numbers in shortest round-trip form, switching to an exponent
/// only where JavaScript does (below 1e-6 or from 1e21), where digits stop being readable.
fn human_number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or_default();
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        format!("{f:e}")
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_one(v: Value) -> Result<Attachment, String> {
        let mut all = decode_attachments(&json!([v]))?;
        assert_eq!(all.len(), 1);
        Ok(all.remove(0))
    }

    #[test]
    fn field_values_are_stringified_as_people_write_them() {
        let cases = [
            (json!("text"), json!("text")),
            (json!(42), json!("42")),
            (json!(-7), json!("-7")),
            (json!(1000000), json!("1000000")),
            (json!(1e6), json!("1000000")),
            (json!(4.5), json!("4.5")),
            (json!(1.0), json!("1")),
            (json!(0.1), json!("0.1")),
            (json!(1e21), json!("1e21")),
            (json!(1.5e-7), json!("1.5e-7")),
            (
                json!(18446744073709551615u64),
                json!("18446744073709551615"),
            ),
            (json!(true), json!("true")),
            (json!(false), json!("false")),
            (json!([]), json!("[]")),
            (json!(["a", "b"]), json!("[a b]")),
            (json!([1, null, [2.5]]), json!("[1 <nil> [2.5]]")),
            (json!({"k": "v"}), json!("map[k:v]")),
            (
                json!({"b": 1, "a": {"c": true}}),
                json!("map[a:map[c:true] b:1]"),
            ),
            (json!({}), json!("map[]")),
            (Value::Null, Value::Null),
        ];
        for (value, want) in cases {
            let a = decode_one(json!({"fields": [{"title": "t", "value": value}]})).unwrap();
            assert_eq!(a.fields[0].value, want, "{value}");
        }
    }

    #[test]
    fn short_accepts_slack_booleans_only() {
        let cases = [
            (json!(true), Ok(true)),
            (json!(false), Ok(false)),
            (json!("true"), Ok(true)),
            (json!("TRUE"), Ok(true)),
            (json!("False"), Ok(false)),
            (json!("yes"), Err(())),
            (json!(1), Err(())),
            (json!(""), Err(())),
            (Value::Null, Err(())),
        ];
        for (short, want) in cases {
            let got = decode_one(json!({"fields": [{"short": short}]}))
                .map(|a| a.fields[0].short)
                .map_err(|_| ());
            assert_eq!(got, want, "{short}");
        }
        let absent = decode_one(json!({"fields": [{"title": "t"}]})).unwrap();
        assert!(!absent.fields[0].short);
    }

    #[test]
    fn nulls_are_dropped_and_strings_tolerate_null() {
        let atts = decode_attachments(&json!([
            null,
            {"text": null, "fields": [null, {"title": null, "value": "v"}, null], "ts": null},
            null
        ]))
        .unwrap();
        assert_eq!(atts.len(), 1);
        assert_eq!(atts[0].text, "");
        assert_eq!(atts[0].fields.len(), 1);
        assert_eq!(atts[0].fields[0].title, "");
        assert_eq!(decode_attachments(&Value::Null).unwrap(), vec![]);
        assert_eq!(decode_attachments(&json!([null])).unwrap(), vec![]);
    }

    #[test]
    fn keys_match_in_any_case_and_the_last_spelling_wins() {
        let a = decode_one(json!({
            "TEXT": "first", "Text": "second", "Title_Link": "http://x",
            "FIELDS": [{"TITLE": "t", "Value": 1, "SHORT": "true"}],
            "Actions": [{"NAME": "go", "Type": "button",
                         "Integration": {"URL": "http://h", "Context": {"Key": 1}}}]
        }))
        .unwrap();
        assert_eq!(a.text, "second");
        assert_eq!(a.title_link, "http://x");
        assert_eq!(a.fields[0].title, "t");
        assert_eq!(a.fields[0].value, json!("1"));
        assert!(a.fields[0].short);
        let integration = a.actions[0].integration.as_ref().unwrap();
        assert_eq!(a.actions[0].name, "go");
        assert_eq!(integration.url, "http://h");
        // The integration's own context keeps its keys as sent.
        assert_eq!(
            integration.context,
            json!({"Key": 1}).as_object().cloned().unwrap()
        );
    }

    #[test]
    fn wrong_types_are_errors() {
        let cases = [
            json!({"text": 5}),
            json!({"id": "1"}),
            json!({"id": 1.5}),
            json!({"fields": "x"}),
            json!({"fields": [5]}),
            json!({"actions": [{"disabled": "yes"}]}),
            json!({"actions": [{"integration": {"context": []}}]}),
        ];
        for att in cases {
            assert!(decode_one(att.clone()).is_err(), "{att}");
        }
        assert!(decode_attachments(&json!({"text": "x"})).is_err());
        assert!(decode_attachments(&json!([5])).is_err());
        assert!(decode_attachments(&json!("x")).is_err());
    }

    #[test]
    fn unused_members_are_noted_by_the_senders_path() {
        let mut unused = Vec::new();
        let sent = json!([null, {
            "Text": "t", "mrkdwn_in": ["text"], "callback_id": "c",
            "fields": [{"title": "a", "value": "b", "short": true, "emoji": true}],
            "actions": [{"name": "n", "confirm": {}, "options": [{"text": "a", "value": "b", "x": 1}],
                         "integration": {"url": "u", "context": {}, "secret": "s"}}],
            "blocks": [{"type": "input"}]
        }]);
        let decoded = decode_attachments_noting(&sent, &mut unused).unwrap();
        assert_eq!(decoded.len(), 1);
        assert_eq!(
            unused,
            [
                "attachments[1].mrkdwn_in",
                "attachments[1].callback_id",
                "attachments[1].fields[0].emoji",
                "attachments[1].actions[0].confirm",
                "attachments[1].actions[0].options[0].x",
                "attachments[1].actions[0].integration.secret",
                "attachments[1].blocks[0]",
            ]
        );
    }

    #[test]
    fn serializes_every_key_in_mattermost_order() {
        let plain = serde_json::to_string(&Attachment::default()).unwrap();
        assert_eq!(
            plain,
            r#"{"id":0,"fallback":"","color":"","pretext":"","author_name":"","author_link":"","author_icon":"","title":"","title_link":"","text":"","fields":null,"image_url":"","thumb_url":"","footer":"","footer_icon":"","ts":null}"#
        );
        let full = decode_one(json!({
            "ts": "123.4",
            "fields": [{"title": "t", "value": 2, "short": true}],
            "actions": [{"name": "n", "type": "select", "options": [{"text": "a", "value": "b"}]}]
        }))
        .unwrap();
        let v = serde_json::to_value(&full).unwrap();
        assert_eq!(v["ts"], json!("123.4"));
        assert_eq!(
            v["fields"],
            json!([{"title": "t", "value": "2", "short": true}])
        );
        assert_eq!(
            v["actions"],
            json!([{"type": "select", "name": "n", "options": [{"text": "a", "value": "b"}]}])
        );
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.last().map(|k| k.as_str()), Some("actions"));
        // Every decoded key is written back except `blocks`, which is rendered away.
        assert_eq!(keys.len(), ATTACHMENT_KEYS.len() - 1);
    }

    #[test]
    fn ts_is_kept_as_given() {
        for ts in [
            json!(1700000000),
            json!("1700000000.5"),
            json!(1.5),
            Value::Null,
        ] {
            assert_eq!(decode_one(json!({"ts": ts})).unwrap().ts, ts);
        }
    }
}
