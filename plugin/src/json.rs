// Decoding helpers that reproduce the parts of Go's encoding/json that integrations rely on,
// so payloads Mattermost accepts (odd key case, trailing bytes, stray bytes) are accepted here.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// Decodes the first JSON value and ignores whatever follows it, as Go's `json.Decoder` does
/// for incoming webhooks and outgoing webhook responses.
pub fn first_value(body: &[u8]) -> Result<Value, String> {
    let body = go_utf8(body);
    let mut values = serde_json::Deserializer::from_slice(&body).into_iter::<Value>();
    match values.next() {
        Some(value) => value.map_err(|e| e.to_string()),
        None => Err("EOF".to_owned()),
    }
}

/// Decodes a whole buffer as one JSON value, as Go's `json.Unmarshal` does for command,
/// post-action and dialog responses: anything but whitespace after the value is an error.
pub fn whole_value(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(&go_utf8(body)).map_err(|e| e.to_string())
}

/// Renames the keys that match one of a struct's `fields` ignoring ASCII case to that field,
/// in document order so the last spelling wins, as Go does when it decodes into a struct.
/// Call it only on objects that Go decodes into a struct; free-form maps keep their keys.
pub fn fold_keys(obj: &mut Map<String, Value>, fields: &[&str]) {
    for (key, value) in std::mem::take(obj) {
        let key = match fields.iter().find(|f| f.eq_ignore_ascii_case(&key)) {
            Some(field) => (*field).to_owned(),
            None => key,
        };
        obj.insert(key, value);
    }
}

/// Go replaces each byte of an invalid UTF-8 sequence in a string with U+FFFD instead of
/// failing; outside strings such bytes are a syntax error either way.
fn go_utf8(body: &[u8]) -> Cow<'_, [u8]> {
    if std::str::from_utf8(body).is_ok() {
        return Cow::Borrowed(body);
    }
    let mut out = Vec::with_capacity(body.len() + 16);
    let mut rest = body;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.extend_from_slice(valid.as_bytes());
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.extend_from_slice(valid);
                let bad = e.error_len().unwrap_or(after.len());
                for _ in 0..bad {
                    out.extend_from_slice("\u{fffd}".as_bytes());
                }
                rest = &after[bad..];
            }
        }
    }
    Cow::Owned(out)
}

/// Decodes an object into `T` as Go decodes into a struct: keys matched to
/// `fields` ignoring case (last wins), and `null` leaving a field at its default.
pub fn go_struct<T: serde::de::DeserializeOwned>(
    mut obj: Map<String, Value>,
    fields: &[&str],
) -> Result<T, String> {
    fold_keys(&mut obj, fields);
    obj.retain(|_, v| !v.is_null());
    serde_json::from_value(Value::Object(obj)).map_err(|e| e.to_string())
}

/// Go's `json.Marshal` escaping for HTML-sensitive characters and the two
/// JavaScript line terminators, applied to serde's output: these characters
/// only ever occur inside strings there, so the result is the same JSON value.
pub fn go_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_value_ignores_trailing_bytes() {
        let cases: &[(&[u8], Result<Value, ()>)] = &[
            (br#"{"text":"a"}"#, Ok(json!({"text": "a"}))),
            (
                br#"  {"text":"a"} trailing garbage"#,
                Ok(json!({"text": "a"})),
            ),
            (br#"{"text":"a"}{"text":"b"}"#, Ok(json!({"text": "a"}))),
            (br#"{"text":"a"}x"#, Ok(json!({"text": "a"}))),
            (b"[1]]", Ok(json!([1]))),
            (b"null", Ok(Value::Null)),
            (b"", Err(())),
            (b"   ", Err(())),
            (br#"{"text":"a""#, Err(())),
        ];
        for (body, want) in cases {
            let got = first_value(body).map_err(|_| ());
            assert_eq!(&got, want, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn whole_value_rejects_trailing_bytes() {
        let cases: &[(&[u8], bool)] = &[
            (br#"{"text":"a"}"#, true),
            (b"{\"text\":\"a\"} \r\n\t", true),
            (br#"{"text":"a"} x"#, false),
            (br#"{"text":"a"}{}"#, false),
            (b"", false),
        ];
        for (body, ok) in cases {
            assert_eq!(
                whole_value(body).is_ok(),
                *ok,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn invalid_utf8_in_strings_becomes_replacement_chars() {
        let cases: &[(&[u8], &str)] = &[
            (b"{\"t\":\"a\xffb\"}", "a\u{fffd}b"),
            // A truncated three-byte sequence is two bad bytes, so two replacements, as in Go.
            (b"{\"t\":\"\xe2\x82x\"}", "\u{fffd}\u{fffd}x"),
            ("{\"t\":\"é\"}".as_bytes(), "é"),
        ];
        for (body, want) in cases {
            assert_eq!(first_value(body).unwrap()["t"], json!(want));
            assert_eq!(whole_value(body).unwrap()["t"], json!(want));
        }
    }

    #[test]
    fn fold_keys_matches_fields_ignoring_case_last_wins() {
        let cases = [
            (json!({"TEXT": "a"}), json!({"text": "a"})),
            (
                json!({"Channel": "x", "channel": "y"}),
                json!({"channel": "y"}),
            ),
            (json!({"text": "a", "Text": "b"}), json!({"text": "b"})),
            (
                json!({"other": 1, "TeXt": "a"}),
                json!({"other": 1, "text": "a"}),
            ),
            (
                json!({"icon_url": "u", "ICON_URL": "v"}),
                json!({"icon_url": "v"}),
            ),
            // Go does not fold underscores away: `iconurl` is not `icon_url`.
            (json!({"iconurl": "u"}), json!({"iconurl": "u"})),
        ];
        for (input, want) in cases {
            let Value::Object(mut obj) = input else {
                unreachable!()
            };
            fold_keys(&mut obj, &["text", "channel", "icon_url"]);
            assert_eq!(Value::Object(obj), want);
        }
    }
}
