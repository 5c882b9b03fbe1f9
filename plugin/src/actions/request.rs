//! The one place that builds requests to integrations for clicks and dialogs
//! (spec §7.3, §8.3, §8.4), and the errors their answers come to.
//!
//! Only Mattermost's JSON shape is built. Slack apps expect a form-encoded
//! `payload=` with `interactive_message` / `block_actions` instead; that would
//! be a second [`Shape`] here, leaving every caller as it is.

use crate::api::ApiError;
use crate::commands::model::is_valid_http_url;
use crate::host::{EgressError, Header, OutboundRequest, OutboundResponse};
use serde::Serialize;
use serde_json::{Map, Value};

/// How an integration wants to be called.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// `Content-Type: application/json`, Mattermost's field names.
    Mattermost,
}

/// Mattermost's `PostActionIntegrationRequest`, in its field order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ActionPayload {
    pub user_id: String,
    pub user_name: String,
    pub channel_id: String,
    pub channel_name: String,
    /// Empty for direct and group channels.
    pub team_id: String,
    pub team_domain: String,
    pub post_id: String,
    /// The long, signed form (spec §8.1).
    pub trigger_id: String,
    #[serde(rename = "type")]
    pub action_type: String,
    /// The action's data source for a select with a chosen option, else empty.
    pub data_source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
}

/// What an integration is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload<'a> {
    /// A click on a button or a choice in a menu.
    Action(&'a ActionPayload),
    /// A dialog submission or lookup: the client's `SubmitDialogRequest`
    /// with `url` removed and `type` set (already done by the caller).
    Dialog(&'a Map<String, Value>),
}

/// The request to `url` for `payload`. Only http(s) URLs: `/plugins/...`
/// URLs would be served by another plugin in-process, which this host has not.
pub fn build(shape: Shape, url: &str, payload: Payload<'_>) -> Result<OutboundRequest, ApiError> {
    if !is_valid_http_url(url) {
        return Err(integration_failed()
            .with_detail(format!("the integration URL {url:?} is not an http(s) URL")));
    }
    let body = match (shape, payload) {
        (Shape::Mattermost, Payload::Action(p)) => serde_json::to_vec(p),
        (Shape::Mattermost, Payload::Dialog(map)) => serde_json::to_vec(map),
    }
    .map_err(|e| integration_failed().with_detail(e.to_string()))?;
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
    ]
    .into_iter()
    .map(|(name, value)| Header {
        name: name.into(),
        value: value.into(),
    })
    .collect();
    Ok(OutboundRequest {
        method: "POST".into(),
        url: url.to_string(),
        headers,
        body,
        timeout_ms: None,
    })
}

/// Mattermost's 400 for every way a call to an integration can fail.
pub fn integration_failed() -> ApiError {
    ApiError::new(
        400,
        "api.post.do_action.action_integration.app_error",
        "Action integration error.",
    )
}

/// The body of a 200 answer (the spec's "non-200 ⇒ 400"); transport errors,
/// other statuses and bodies cut at the size cap are [`integration_failed`].
pub fn answer_body(answer: Result<OutboundResponse, EgressError>) -> Result<Vec<u8>, ApiError> {
    let reply = answer.map_err(|e| {
        let detail = match e {
            EgressError::Refused(m)
            | EgressError::InvalidUrl(m)
            | EgressError::Timeout(m)
            | EgressError::Connect(m)
            | EgressError::Other(m) => m,
        };
        integration_failed().with_detail(detail)
    })?;
    if reply.status != 200 {
        return Err(integration_failed()
            .with_detail(format!("the integration answered status {}", reply.status)));
    }
    if reply.truncated {
        return Err(integration_failed()
            .with_detail("the integration's answer is longer than 1 MiB and was cut"));
    }
    Ok(reply.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::reply;

    #[test]
    fn action_requests_are_json_with_every_field_in_order() {
        let payload = ActionPayload {
            user_id: "u".into(),
            trigger_id: "t".into(),
            action_type: "button".into(),
            ..ActionPayload::default()
        };
        let req = build(Shape::Mattermost, "http://x/act", Payload::Action(&payload)).unwrap();
        assert_eq!(req.method, "POST");
        let body = String::from_utf8(req.body).unwrap();
        assert_eq!(
            body,
            r#"{"user_id":"u","user_name":"","channel_id":"","channel_name":"","team_id":"","team_domain":"","post_id":"","trigger_id":"t","type":"button","data_source":""}"#
        );
        assert!(
            req.headers
                .iter()
                .any(|h| h.name == "Content-Type" && h.value == "application/json")
        );
    }

    #[test]
    fn only_http_urls_and_only_200s() {
        let map = Map::new();
        let p = Payload::Dialog(&map);
        for url in ["/plugins/x/y", "ftp://x", "HTTP://x", ""] {
            let err = build(Shape::Mattermost, url, p.clone()).unwrap_err();
            assert_eq!(err.status, 400, "{url}");
        }
        assert_eq!(answer_body(Ok(reply(200, "", "ok"))).unwrap(), b"ok");
        let err = answer_body(Ok(reply(500, "", "no"))).unwrap_err();
        assert_eq!(err.id, "api.post.do_action.action_integration.app_error");
        let mut cut = reply(200, "", "{");
        cut.truncated = true;
        assert!(answer_body(Ok(cut)).is_err());
        assert!(answer_body(Err(EgressError::Timeout("slow".into()))).is_err());
    }
}
