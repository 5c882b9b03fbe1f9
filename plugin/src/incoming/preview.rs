//! `POST /api/v4/hooks/incoming/{id}/preview`: what the hook would post for a captured
//! request (`sample_id`) or a made-up one (`headers`, `body`), with the hook's transform or
//! one being edited. The request's own pipeline with a preview sink: every check, no writes.

use super::IncomingWebhook;
use super::execute::{Trace, post_json};
use super::transform::{DROPPED, Transform};
use crate::api::{ApiError, Request, Response, json_body};
use crate::host::Host;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct PreviewRequest {
    /// The transform to try; the hook's when absent.
    transform: Option<Transform>,
    sample_id: Option<String>,
    headers: Option<serde_json::Map<String, Value>>,
    /// JSON, sent as `application/json` unless `headers` name a type; a string is the text.
    body: Option<Value>,
}

/// The request a preview runs: a sample's, or one made of `headers` and `body`.
fn sender_request(
    host: &dyn Host,
    hook_id: &str,
    asked: &PreviewRequest,
) -> Result<Request, ApiError> {
    if let Some(id) = &asked.sample_id {
        let sample = super::samples::get(host, hook_id, id).ok_or_else(|| {
            ApiError::new(
                404,
                "api.incoming_webhook.sample.app_error",
                "No such sample for this hook.",
            )
        })?;
        return Ok(Request {
            method: sample.method,
            path: sample.path,
            query: sample.query,
            headers: sample.headers,
            body: sample.body.into_bytes(),
            ..Request::default()
        });
    }
    let mut headers: Vec<(String, String)> = asked
        .headers
        .iter()
        .flatten()
        .map(|(name, value)| {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            (name.to_ascii_lowercase(), value)
        })
        .collect();
    let body = match &asked.body {
        None => Vec::new(),
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(json) => {
            if !headers.iter().any(|(name, _)| name == "content-type") {
                headers.push(("content-type".into(), "application/json".into()));
            }
            json.to_string().into_bytes()
        }
    };
    Ok(Request {
        method: "POST".into(),
        path: format!("/hooks/{hook_id}"),
        headers,
        body,
        ..Request::default()
    })
}

/// The preview of `hook` (loaded for a user who may manage it) for the request's ask.
pub(super) fn run(
    host: &dyn Host,
    req: &Request,
    mut hook: IncomingWebhook,
) -> Result<Response, ApiError> {
    let asked: PreviewRequest = json_body(req, "preview")?;
    if asked.sample_id.is_none() && asked.body.is_none() {
        return Err(ApiError::invalid_body_param("sample_id"));
    }
    if let Some(transform) = &asked.transform {
        transform.check()?;
        hook.transform = Some(transform.clone());
    }
    hook.capture_only = false;
    let sender = sender_request(host, &hook.id, &asked)?;

    let started = std::time::Instant::now();
    let mut trace = Trace::preview();
    // The dispatch of `execute::handle`, for this one hook.
    let outcome = if hook.transform.is_some() {
        super::transform::run(host, &sender, Some(&hook), &mut trace)
    } else if super::from_source::hook_takes_native(&sender, Some(&hook)) {
        super::from_source::run(host, &sender, &hook.id, Some(&hook), None, &mut trace)
    } else {
        super::execute::run(host, &sender, &hook.id, Some(&hook), &mut trace)
    };
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let answer = match outcome {
        Ok((posts, ignored)) => json!({
            "posts": posts.iter().map(post_json).collect::<Vec<_>>(),
            "dropped": posts.is_empty() && ignored.iter().any(|i| i == DROPPED),
            "error": null,
            "duration_ms": duration_ms,
        }),
        Err(err) => json!({
            "posts": [],
            "dropped": false,
            "error": {
                "id": err.id,
                "message": err.message,
                "detailed_error": err.detailed_error,
                "status_code": err.status,
            },
            "duration_ms": duration_ms,
        }),
    };
    Ok(Response::json(200, &answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incoming::fixture::{add_hook, hook, host_with_hook};
    use crate::incoming::template::Template;
    use crate::testing::FakeHost;

    /// A preview of a threaded, rate-limited template hook builds its post and writes
    /// nothing: no post, no thread record, no rate-limit budget, no idempotency record.
    #[test]
    fn a_preview_writes_nothing() {
        let hook = IncomingWebhook {
            rate_limit: Some(1),
            transform: Some(Transform::Template(Template {
                text: "{{ body.n }}".into(),
                thread_key: "{{ body.n }}".into(),
                ..Template::default()
            })),
            ..hook()
        };
        let host = host_with_hook(&hook);
        host.admins.borrow_mut().push(hook.user_id.clone());
        let keys_before = host.kv_list("", 0, 1000).unwrap();
        let req = Request {
            method: "POST".into(),
            path: format!("/api/v4/hooks/incoming/{}/preview", hook.id),
            body: br#"{"body": {"n": "7"}, "headers": {"Idempotency-Key": "k"}}"#.to_vec(),
            user_id: Some(hook.user_id.clone()),
            ..Request::default()
        };
        for _ in 0..3 {
            let response = run(&host, &req, hook.clone()).unwrap();
            let answer: Value = serde_json::from_slice(&response.body).unwrap();
            assert_eq!(answer["posts"][0]["message"], "7", "{answer}");
            assert_eq!(answer["error"], Value::Null);
        }
        assert!(host.posts.borrow().is_empty());
        assert_eq!(host.kv_list("", 0, 1000).unwrap(), keys_before);
    }

    /// A sample's signature is redacted, so a preview of a signed source hook does not
    /// check it (a request does: 401).
    #[test]
    fn a_preview_of_a_signed_source_hook_skips_the_signature() {
        let fixture: Value = serde_json::from_str(include_str!(
            "../sources/fixtures/github/issues_opened.json"
        ))
        .unwrap();
        let host = FakeHost::default();
        let hook = IncomingWebhook {
            source: Some("github".into()),
            source_secret_sealed: host.seal(super::super::model::SOURCE_SECRET_PURPOSE, b"s"),
            ..hook()
        };
        add_hook(&host, &hook);
        let mut headers = fixture["headers"].clone();
        headers["X-Hub-Signature-256"] = "[redacted]".into();
        let asked = json!({"headers": headers, "body": fixture["body"]});
        let req = Request {
            method: "POST".into(),
            body: asked.to_string().into_bytes(),
            user_id: Some(hook.user_id.clone()),
            ..Request::default()
        };
        let answer: Value =
            serde_json::from_slice(&run(&host, &req, hook.clone()).unwrap().body).unwrap();
        assert_eq!(answer["error"], Value::Null, "{answer}");
        assert_eq!(answer["posts"].as_array().map(Vec::len), Some(1));

        let sent = Request {
            method: "POST".into(),
            path: format!("/hooks/{}", hook.id),
            headers: headers
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_owned()))
                .collect(),
            body: fixture["body"].to_string().into_bytes(),
            ..Request::default()
        };
        let response = super::super::execute::handle(&host, &sent, &hook.id, None);
        assert_eq!(response.status, 401);
    }
}
