//! `POST /api/v4/actions/dialogs/submit` and `/lookup` (spec §8.3, §8.4): the
//! client's submission (or a dynamic select's query) goes to the dialog's URL,
//! and its answer back to the client.

use crate::actions::request::{self, Payload, Shape};
use crate::actions::{Continuation, Outcome, continuation};
use crate::api::{ApiError, Request, Response, require_permission};
use crate::host::{EgressError, Host, InteractiveCall, OutboundResponse, PermissionScope};
use crate::json::{fold_keys, whole_value};
use serde_json::{Map, Value, json};

/// `SubmitDialogRequest`'s fields.
const FIELDS: &[&str] = &[
    "type",
    "url",
    "callback_id",
    "state",
    "user_id",
    "channel_id",
    "team_id",
    "submission",
    "cancelled",
];

fn string_of<'a>(map: &'a Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or("")
}

pub fn start(host: &dyn Host, req: &Request, lookup: bool) -> Result<Outcome, ApiError> {
    let user_id = req.session_user()?;
    let bad_body = |detail: String| ApiError::invalid_body_param("dialog").with_detail(detail);
    let mut body = match whole_value(&req.body).map_err(bad_body)? {
        Value::Object(map) => map,
        _ => return Err(bad_body("the body is not a JSON object".into())),
    };
    fold_keys(&mut body, FIELDS);
    for key in FIELDS {
        let ok = match (*key, body.get(*key)) {
            (_, None | Some(Value::Null)) => true,
            ("submission", Some(v)) => v.is_object(),
            ("cancelled", Some(v)) => v.is_boolean(),
            (_, Some(v)) => v.is_string(),
        };
        if !ok {
            return Err(bad_body(format!("{key} has the wrong type")));
        }
    }
    let url = string_of(&body, "url").to_string();
    if url.is_empty() || (lookup && !crate::dialogs::validate::is_lookup_url(&url)) {
        return Err(ApiError::invalid_body_param("url"));
    }
    let channel_id = string_of(&body, "channel_id").to_string();
    require_permission(
        host,
        user_id,
        "read_channel",
        &PermissionScope::Channel(channel_id),
    )?;
    let team_id = string_of(&body, "team_id").to_string();
    if !team_id.is_empty() {
        require_permission(host, user_id, "view_team", &PermissionScope::Team(team_id))?;
    }

    body.remove("url");
    body.insert("user_id".into(), Value::String(user_id.to_string()));
    // Mattermost's `SubmitDialogRequest.Cancelled` has no `omitempty`: the
    // field is always sent, `false` unless the client said otherwise.
    if !matches!(body.get("cancelled"), Some(Value::Bool(_))) {
        body.insert("cancelled".into(), Value::Bool(false));
    }
    let kind = if lookup {
        "dialog_lookup"
    } else if string_of(&body, "type") == "refresh" {
        "refresh"
    } else {
        "dialog_submission"
    };
    body.insert("type".into(), Value::String(kind.into()));
    let outbound = request::build(Shape::Mattermost, &url, Payload::Dialog(&body))?;
    let next = if lookup {
        Continuation::Lookup
    } else {
        Continuation::Submit
    };
    Ok(Outcome::Call(InteractiveCall {
        request: outbound,
        signing: Vec::new(),
        continuation: continuation(&next),
    }))
}

pub fn respond(
    _host: &dyn Host,
    req: &Request,
    lookup: bool,
    answer: Result<OutboundResponse, EgressError>,
) -> Result<Response, ApiError> {
    req.session_user()?;
    let body = request::answer_body(answer)?;
    let what = if lookup { "lookup" } else { "submit" };
    let decode_error = |detail: String| {
        ApiError::new(
            500,
            &format!("app.{what}_interactive_dialog.decode_json_error"),
            "Encountered an error decoding JSON response from interactive dialog.",
        )
        .with_detail(detail)
    };
    if body.is_empty() {
        let empty = if lookup {
            json!({"items": null})
        } else {
            json!({})
        };
        return Ok(Response::json(200, &empty));
    }
    let mut map = match whole_value(&body).map_err(decode_error)? {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => return Err(decode_error(format!("expected an object, got {other}"))),
    };
    if lookup {
        fold_keys(&mut map, &["items"]);
        let items = match map.remove("items") {
            None | Some(Value::Null) => Value::Null,
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for item in items {
                    let Value::Object(mut item) = item else {
                        return Err(decode_error("an item is not an object".into()));
                    };
                    fold_keys(&mut item, &["text", "value"]);
                    out.push(json!({"text": string_of(&item, "text"), "value": string_of(&item, "value")}));
                }
                Value::Array(out)
            }
            Some(_) => return Err(decode_error("items is not a list".into())),
        };
        return Ok(Response::json(200, &json!({"items": items})));
    }

    fold_keys(&mut map, &["error", "errors", "type", "form"]);
    let mut out = Map::new();
    match map.get("error") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => {
            out.insert("error".into(), Value::String(s.clone()));
        }
        Some(_) => return Err(decode_error("error is not a string".into())),
    }
    match map.get("errors") {
        None | Some(Value::Null) => {}
        Some(Value::Object(errors)) => {
            if errors.values().any(|v| !v.is_string()) {
                return Err(decode_error("errors holds a non-string".into()));
            }
            if !errors.is_empty() {
                out.insert("errors".into(), Value::Object(errors.clone()));
            }
        }
        Some(_) => return Err(decode_error("errors is not an object".into())),
    }
    let kind = match map.get("type") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(decode_error("type is not a string".into())),
    };
    let form = match map.get("form") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(decode_error("form is not an object".into())),
    };
    if out.is_empty() {
        // No field errors: the answer's type decides what the client does next.
        let invalid = |detail: &str| {
            ApiError::new(
                400,
                "app.submit_interactive_dialog.invalid_response",
                "The integration's answer to the dialog is not valid.",
            )
            .with_detail(detail.to_string())
        };
        match (kind, &form) {
            ("" | "ok" | "navigate", Some(_)) => {
                return Err(invalid("a form is only for type \"form\""));
            }
            ("form", None) => return Err(invalid("type \"form\" needs a form")),
            ("" | "ok" | "navigate" | "form", _) => {}
            (other, _) => return Err(invalid(&format!("unknown type {other:?}"))),
        }
    }
    if !kind.is_empty() {
        out.insert("type".into(), Value::String(kind.to_string()));
    }
    if let Some(form) = form {
        out.insert("form".into(), form);
    }
    Ok(Response::json(200, &Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeHost, reply};

    fn req(body: Value) -> Request {
        Request {
            method: "POST".into(),
            body: body.to_string().into_bytes(),
            user_id: Some("ua".into()),
            ..Request::default()
        }
    }

    #[test]
    fn submissions_go_out_without_url_as_the_session_user() {
        let host = FakeHost::default();
        host.add_channel_member("chan", "ua").unwrap();
        let out = start(
            &host,
            &req(
                json!({"url": "http://x/s", "callback_id": "cb", "state": "st",
                        "user_id": "someone-else", "channel_id": "chan",
                        "submission": {"env": "prod"}, "cancelled": false}),
            ),
            false,
        )
        .unwrap();
        let Outcome::Call(call) = out else { panic!() };
        let sent: Value = serde_json::from_slice(&call.request.body).unwrap();
        assert_eq!(sent["type"], "dialog_submission");
        assert_eq!(sent["user_id"], "ua");
        assert_eq!(sent["submission"], json!({"env": "prod"}));
        assert!(sent.get("url").is_none());
        let Outcome::Call(call) = start(
            &host,
            &req(json!({"url": "http://x/s", "type": "refresh", "channel_id": "chan"})),
            false,
        )
        .unwrap() else {
            panic!()
        };
        let sent: Value = serde_json::from_slice(&call.request.body).unwrap();
        assert_eq!(sent["type"], "refresh");
        // A /plugins/ lookup URL passes the rule, but no other plugin serves it.
        let err = start(
            &host,
            &req(json!({"url": "/plugins/x/lookup", "channel_id": "chan"})),
            true,
        )
        .unwrap_err();
        assert_eq!(err.id, "api.post.do_action.action_integration.app_error");
        let err = start(
            &host,
            &req(json!({"url": "http://x/s", "channel_id": "other"})),
            false,
        )
        .unwrap_err();
        assert_eq!(err.status, 403);
        let err = start(&host, &req(json!({"channel_id": "chan"})), false).unwrap_err();
        assert_eq!(err.id, "api.context.invalid_body_param.app_error");
    }

    #[test]
    fn cancelled_is_always_sent_false_unless_the_client_said_true() {
        let host = FakeHost::default();
        host.add_channel_member("chan", "ua").unwrap();
        let sent = |body: Value, lookup: bool| {
            let Outcome::Call(call) = start(&host, &req(body), lookup).unwrap() else {
                panic!()
            };
            serde_json::from_slice::<Value>(&call.request.body).unwrap()
        };
        let plain = json!({"url": "http://x/s", "channel_id": "chan"});
        assert_eq!(sent(plain.clone(), false)["cancelled"], json!(false));
        assert_eq!(sent(plain, true)["cancelled"], json!(false));
        let null = json!({"url": "http://x/s", "channel_id": "chan", "cancelled": null});
        assert_eq!(sent(null, false)["cancelled"], json!(false));
        let yes = json!({"url": "http://x/s", "channel_id": "chan", "cancelled": true});
        assert_eq!(sent(yes, false)["cancelled"], json!(true));
    }

    #[test]
    fn answers_pass_errors_through_and_check_types() {
        let host = FakeHost::default();
        let r = req(json!({}));
        let answer =
            |body: &str| respond(&host, &r, false, Ok(reply(200, "application/json", body)));
        let out = answer(r#"{"errors": {"env": "no"}, "type": "weird"}"#).unwrap();
        assert_eq!(
            String::from_utf8(out.body).unwrap(),
            r#"{"errors":{"env":"no"},"type":"weird"}"#
        );
        assert_eq!(answer("").unwrap().body, b"{}");
        assert_eq!(answer("nope").unwrap_err().status, 500);
        assert_eq!(answer(r#"{"type": "form"}"#).unwrap_err().status, 400);
        assert_eq!(answer(r#"{"type": "other"}"#).unwrap_err().status, 400);
        let out = respond(
            &host,
            &r,
            true,
            Ok(reply(200, "", r#"{"items":[{"text":"A","value":"a"}]}"#)),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out.body).unwrap(),
            r#"{"items":[{"text":"A","value":"a"}]}"#
        );
    }
}
