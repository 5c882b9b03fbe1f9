//! `POST /api/v4/actions/dialogs/open` (spec §8.2): an integration, holding a
//! trigger id from a command or a click, opens a dialog for that user only.

use super::model::{Dialog, without_nulls};
use super::validate;
use crate::api::{ApiError, Request, Response};
use crate::host::Host;
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
    validate::check(&dialog)?;

    // Clients see the client form of the trigger id, never the signed one.
    let shown = json!({"trigger_id": decoded.client_id, "url": url, "dialog": dialog_json});
    let data = json!({"dialog": shown.to_string()});
    host.publish_to_user(&decoded.user_id, "open_dialog", &data.to_string())
        .map_err(|e| ApiError::host("api.dialog.open.app_error", &e))?;
    Ok(Response::status_ok())
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
        let mut bad = good_dialog();
        bad["elements"][0]["type"] = json!("colour");
        let err = open_with(
            &host,
            json!({"trigger_id": ids.signed, "url": "http://x", "dialog": bad}),
        )
        .unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("\"env\""), "{}", err.message);
        assert!(host.published.borrow().is_empty());
    }
}
