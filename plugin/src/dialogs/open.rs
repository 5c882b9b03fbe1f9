//! `POST /api/v4/actions/dialogs/open` (spec §8.2): an integration, holding a
//! trigger id from a command or a click, opens a dialog for that user only.

use super::model::{Dialog, without_nulls};
use super::validate::{self, Warning};
use crate::api::{ApiError, Request, Response};
use crate::host::{Host, Level};
use crate::json::{fold_keys, whole_value};
use crate::trigger_id;
use serde_json::{Value, json};

pub fn open(host: &dyn Host, req: &Request) -> Result<Response, ApiError> {
    let bad_body = |detail: String| ApiError::invalid_body_param("dialog").with_detail(detail);
    let mut body = match whole_value(&req.body).map_err(bad_body)? {
        Value::Object(map) => map,
        _ => return Err(bad_body("the body is not a JSON object".into())),
    };
    fold_keys(&mut body, &["trigger_id", "url", "dialog"]);
    let text = |key: &str| match body.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad_body(format!("{key} is not a string"))),
    };
    let (trigger, url) = (text("trigger_id")?, text("url")?);
    let dialog_json = match body.get("dialog") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(bad_body("dialog is not an object".into())),
    };
    if url.is_empty() {
        return Err(ApiError::invalid_body_param("url"));
    }
    let lifetime = host.settings().outgoing_integration_requests_timeout;
    let decoded = trigger_id::decode(host, &trigger, lifetime)?;
    let dialog: Dialog = serde_json::from_value(without_nulls(dialog_json.clone()))
        .map_err(|e| bad_body(e.to_string()))?;
    let warnings = validate::check(&dialog)?;

    // Clients see the client form of the trigger id, never the signed one.
    let shown = json!({"trigger_id": decoded.client_id, "url": url, "dialog": dialog_json});
    let data = json!({"dialog": shown.to_string()});
    host.publish_to_user(&decoded.user_id, "open_dialog", &data.to_string())
        .map_err(|e| ApiError::host("api.dialog.open.app_error", &e))?;
    let mut response = Response::status_ok();
    if !warnings.is_empty() {
        let all: Vec<String> = warnings.iter().map(Warning::to_string).collect();
        host.log(
            Level::Warn,
            &format!(
                "dialog {} opened although it breaks {} rule(s): {}",
                validate::quoted(&dialog.callback_id),
                all.len(),
                all.join("; ")
            ),
        );
        response
            .headers
            .push((WARNINGS_HEADER.into(), warnings_header(&warnings)));
    }
    Ok(response)
}

/// Names the rules an opened dialog breaks (Switchboard's extension).
pub const WARNINGS_HEADER: &str = "X-Switchboard-Dialog-Warnings";

/// Longest value of [`WARNINGS_HEADER`]; the log line has every warning.
const WARNINGS_HEADER_MAX: usize = 2048;

/// The warnings as one header value: `place: rule` joined by `; `, in
/// visible ASCII (anything else escaped), cut with a count of the rest.
fn warnings_header(warnings: &[Warning]) -> String {
    let mut out = String::new();
    for (index, warning) in warnings.iter().enumerate() {
        let item: String = warning
            .to_string()
            .chars()
            .map(|c| match c {
                ' '..='~' => c.to_string(),
                _ => c.escape_unicode().to_string(),
            })
            .collect();
        let separator = if out.is_empty() { "" } else { "; " };
        // Room for the `; and N more` that may follow this one.
        let room = if index + 1 < warnings.len() { 20 } else { 0 };
        if out.len() + separator.len() + item.len() + room > WARNINGS_HEADER_MAX {
            out.push_str(&format!("{separator}and {} more", warnings.len() - index));
            break;
        }
        out.push_str(separator);
        out.push_str(&item);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    fn open_with(host: &FakeHost, body: Value) -> Result<Response, ApiError> {
        let req = Request {
            method: "POST".into(),
            body: body.to_string().into_bytes(),
            ..Request::default()
        };
        open(host, &req)
    }

    fn good_dialog() -> Value {
        json!({"callback_id": "cb", "title": "Deploy", "elements": [
            {"display_name": "Env", "name": "env", "type": "text", "placeholder": null}
        ]})
    }

    #[test]
    fn opens_for_the_trigger_user_only_with_the_client_id() {
        let host = FakeHost::default();
        let ids = trigger_id::generate(&host, "ua").unwrap();
        let out = open_with(
            &host,
            json!({"trigger_id": ids.signed, "url": "http://x/submit", "dialog": good_dialog()}),
        )
        .unwrap();
        assert_eq!(out.status, 200);
        let published = host.published.borrow();
        let (user, event, data) = &published[0];
        assert_eq!((user.as_str(), event.as_str()), ("ua", "open_dialog"));
        let data: Value = serde_json::from_str(data).unwrap();
        let shown: Value = serde_json::from_str(data["dialog"].as_str().unwrap()).unwrap();
        assert_eq!(shown["trigger_id"], ids.client_id);
        assert_eq!(shown["dialog"]["title"], "Deploy");
    }

    #[test]
    fn bad_requests_name_what_is_wrong() {
        let host = FakeHost::default();
        let ids = trigger_id::generate(&host, "ua").unwrap();
        let err = open_with(
            &host,
            json!({"trigger_id": ids.signed, "dialog": good_dialog()}),
        )
        .unwrap_err();
        assert_eq!(err.id, "api.context.invalid_body_param.app_error");
        let err = open_with(
            &host,
            json!({"trigger_id": "%%", "url": "http://x", "dialog": good_dialog()}),
        )
        .unwrap_err();
        assert_eq!(
            err.id,
            "interactive_message.decode_trigger_id.base64_decode_failed"
        );
        let many: Vec<Value> = (0..=validate::MAX_ELEMENTS)
            .map(|i| json!({"display_name": "F", "name": format!("f{i}"), "type": "text"}))
            .collect();
        let mut huge = good_dialog();
        huge["elements"] = json!(many);
        let err = open_with(
            &host,
            json!({"trigger_id": ids.signed, "url": "http://x", "dialog": huge}),
        )
        .unwrap_err();
        assert_eq!(err.id, "interactive_message.dialog.invalid.app_error");
        assert!(host.published.borrow().is_empty());
    }

    #[test]
    fn a_dialog_breaking_rules_opens_with_a_warnings_header_and_a_log_line() {
        let host = FakeHost::default();
        let ids = trigger_id::generate(&host, "ua").unwrap();
        let mut bad = good_dialog();
        bad["title"] = json!("A title far longer than twenty-four bytes");
        bad["elements"][0]["type"] = json!("colour");
        bad["elements"].as_array_mut().unwrap().push(
            json!({"display_name": "Ünïcode", "name": "é\n", "type": "bool", "default": "maybe"}),
        );
        let out = open_with(
            &host,
            json!({"trigger_id": ids.signed, "url": "http://x", "dialog": bad}),
        )
        .unwrap();
        assert_eq!(out.status, 200);
        assert_eq!(host.published.borrow().len(), 1, "opened anyway");
        let header: Vec<&String> = out
            .headers
            .iter()
            .filter(|(name, _)| name == WARNINGS_HEADER)
            .map(|(_, value)| value)
            .collect();
        assert_eq!(
            header,
            [concat!(
                "title: must be 1 to 24 bytes; ",
                "elements[0] \"env\": type \"colour\" is not a dialog element type; ",
                "elements[1] \"\\u{e9}\\n\": default must be \"\", \"true\" or \"false\""
            )]
        );
        let logs = host.logs.borrow();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].0, Level::Warn);
        assert!(
            logs[0]
                .1
                .contains("\"cb\" opened although it breaks 3 rule(s)"),
            "{}",
            logs[0].1
        );
        assert!(
            logs[0].1.contains("elements[0] \"env\": type \"colour\""),
            "{}",
            logs[0].1
        );

        // A clean dialog has no header.
        let ids = trigger_id::generate(&host, "ua").unwrap();
        let out = open_with(
            &host,
            json!({"trigger_id": ids.signed, "url": "http://x", "dialog": good_dialog()}),
        )
        .unwrap();
        assert!(out.headers.iter().all(|(name, _)| name != WARNINGS_HEADER));
    }

    #[test]
    fn the_warnings_header_stays_short() {
        let warnings: Vec<Warning> = (0..100)
            .map(|i| Warning {
                place: format!("elements[{i}] \"{}\"...", "n".repeat(40)),
                rule: "name is used by an earlier element".into(),
            })
            .collect();
        let header = warnings_header(&warnings);
        assert!(header.len() <= WARNINGS_HEADER_MAX, "{}", header.len());
        assert!(header.starts_with("elements[0] "), "{header}");
        let (_, tail) = header.rsplit_once("; ").unwrap();
        assert!(
            tail.starts_with("and ") && tail.ends_with(" more"),
            "{tail}"
        );
        let shown = header.matches(": name is used").count();
        assert_eq!(tail, format!("and {} more", 100 - shown));
    }
}
