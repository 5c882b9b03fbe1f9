//! A hook's transform (issue 25): a template (`template`) or an uploaded component (the
//! host's `transforms.run`) turns any sender's request into an incoming-webhook payload, which
//! then takes exactly a sender's path (`execute::deliver`); or drops it. A failure is the
//! sender's: 422 with where it went wrong, never a 5xx.

use super::IncomingWebhook;
use super::execute::{Origin, Sink, Trace, deliver, found_hook, take_rate_limit};
use super::payload::parse_incoming;
use super::template::{Context, RenderError, Template};
use crate::api::{ApiError, Request};
use crate::host::{Header, Host, Post, TransformFailure, TransformRequest};
use crate::ids;
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// The hook's `"transform"`: `{"template": {...}}` or `{"component": "<transform id>"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    Template(Template),
    Component(String),
}

/// What `X-Switchboard-Ignored` says of a request the transform dropped.
pub const DROPPED: &str = "transform:dropped";
/// The id of a refused transform on save.
pub const INVALID_ID: &str = "model.incoming_hook.transform.app_error";
/// The ids of a request's transform failures (422).
pub const TEMPLATE_FAILED: &str = "web.incoming_webhook.transform_template.app_error";
pub const COMPONENT_FAILED: &str = "web.incoming_webhook.transform_component.app_error";
pub const OUTPUT_INVALID: &str = "web.incoming_webhook.transform_output.app_error";

impl Transform {
    /// On save: a template must compile, a component id must look like an id.
    pub fn check(&self) -> Result<(), ApiError> {
        match self {
            Transform::Template(template) => template.check().map_err(|e| {
                ApiError::new(
                    400,
                    INVALID_ID,
                    format!("The template does not compile: {e}."),
                )
                .with_detail(e.to_string())
            }),
            Transform::Component(id) if ids::is_valid(id) => Ok(()),
            Transform::Component(_) => Err(ApiError::new(
                400,
                INVALID_ID,
                "The transform component id is not a valid id.",
            )),
        }
    }
}

fn failed(id: &str, message: &str, detail: String) -> ApiError {
    ApiError::new(422, id, format!("{message}: {detail}")).with_detail(detail)
}

/// What a transform made of a request: a payload (JSON text, as a sender would post it) and,
/// for templates, the thread key; or `None` to drop it.
pub(super) struct Output {
    pub payload: Vec<u8>,
    pub thread_key: String,
}

/// Runs the hook's transform on the request.
pub(super) fn apply(
    host: &dyn Host,
    hook: &IncomingWebhook,
    transform: &Transform,
    req: &Request,
) -> Result<Option<Output>, ApiError> {
    match transform {
        Transform::Template(template) => {
            let post = super::from_source::source_post(req, hook);
            let context = Context::new(&req.query, &req.headers, &req.body, post);
            let rendered = template.render(&context).map_err(|e| {
                let message = match e {
                    RenderError::Fuel { .. } => "The hook's template ran out of fuel",
                    RenderError::Output { .. } => "The hook's template rendered too much",
                    RenderError::Template(_) => "The hook's template failed",
                };
                failed(TEMPLATE_FAILED, message, e.to_string())
            })?;
            Ok(rendered.map(|r| Output {
                payload: serde_json::to_vec(&r.payload).unwrap_or_default(),
                thread_key: r.thread_key,
            }))
        }
        Transform::Component(id) => {
            let request = TransformRequest {
                method: req.method.clone(),
                path: req.path.clone(),
                query: req.query.clone(),
                headers: req
                    .headers
                    .iter()
                    .map(|(name, value)| Header {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                body: req.body.clone(),
            };
            let answer = host.run_transform(id, &request).map_err(|e| {
                let detail = match e {
                    TransformFailure::NotFound => format!("no transform component {id}"),
                    TransformFailure::Refused(why) => format!("the component refused: {why}"),
                    TransformFailure::Crashed(why) => format!("the component failed: {why}"),
                };
                failed(COMPONENT_FAILED, "The hook's transform failed", detail)
            })?;
            Ok(answer.map(|json| Output {
                payload: json.into_bytes(),
                thread_key: String::new(),
            }))
        }
    }
}

/// `/hooks/{id}` for a hook with a transform or `capture_only`: the rate limit first, then
/// the transform, then a sender's path for what it made.
pub(super) fn run(
    host: &dyn Host,
    req: &Request,
    stored: Option<&IncomingWebhook>,
    trace: &mut Trace,
) -> Result<(Vec<Post>, Vec<String>), ApiError> {
    if req.body_too_large {
        return Err(ApiError::body_too_large());
    }
    let hook = found_hook(host, stored)?;
    trace.hook = Some(hook.id.clone());
    take_rate_limit(host, hook, trace)?;
    // A preview's request is a sample, whose signature is redacted.
    if trace.sink == Sink::Create {
        super::from_source::check_hook_signature(host, req, hook)?;
    }
    if hook.capture_only && trace.sink == Sink::Create {
        return Ok((Vec::new(), vec!["capture_only".to_owned()]));
    }
    let Some(transform) = &hook.transform else {
        return Ok((Vec::new(), vec!["capture_only".to_owned()]));
    };
    let Some(output) = apply(host, hook, transform, req)? else {
        return Ok((Vec::new(), vec![DROPPED.to_owned()]));
    };
    let mut payload = parse_incoming(Some("application/json"), &output.payload).map_err(|e| {
        failed(
            OUTPUT_INVALID,
            "The hook's transform made an invalid payload",
            e.to_string(),
        )
    })?;
    let ignored = std::mem::take(&mut payload.ignored);
    // Hashed: the key is the sender's text, of any length and bytes.
    let thread = (!output.thread_key.is_empty()).then(|| {
        let digest = hex::encode(sha2::Sha256::digest(output.thread_key.as_bytes()));
        super::from_source::thread_key(&hook.id, "template", &digest)
    });
    let root = thread
        .as_deref()
        .map(|key| super::from_source::thread_root(host, key, &hook.channel_id));
    if let Some((_, root_id)) = &root
        && payload.root_id.is_empty()
    {
        payload.root_id = root_id.clone();
    }
    let posts = deliver(host, req, stored, payload, Origin::Payload, trace).map_err(|e| {
        e.wrap(
            "web.incoming_webhook.general.app_error",
            format!(
                "Failed to handle the transformed payload for incoming webhook {}.",
                hook.id
            ),
        )
    })?;
    if let (Some(key), Some((recorded, root_id)), Sink::Create) = (thread, root, trace.sink)
        && root_id.is_empty()
    {
        super::from_source::remember_root(host, &key, recorded.as_deref(), &posts);
    }
    Ok((posts, ignored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Response;
    use crate::host::ChannelType;
    use crate::testing::{FakeHost, channel};

    const COMPONENT: &str = "cccccccccccccccccccccccccc";

    fn setup(transform: Transform, rate_limit: Option<u32>) -> (FakeHost, IncomingWebhook) {
        let hook = IncomingWebhook {
            channel_locked: true,
            transform: Some(transform),
            rate_limit,
            ..crate::incoming::fixture::hook()
        };
        let host = crate::incoming::fixture::host_with_hook(&hook);
        host.channels.borrow_mut().push(channel(
            &"o".repeat(26),
            &hook.team_id,
            "off-topic",
            ChannelType::Open,
        ));
        (host, hook)
    }

    fn answer(host: &FakeHost, result: Result<Option<String>, TransformFailure>) {
        host.transforms
            .borrow_mut()
            .insert(COMPONENT.into(), result);
    }

    fn post(host: &FakeHost, hook: &IncomingWebhook) -> Response {
        let req = Request {
            method: "POST".into(),
            path: format!("/hooks/{}", hook.id),
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"anything at all".to_vec(),
            ..Request::default()
        };
        super::super::execute::handle(host, &req, &hook.id, None)
    }

    fn error_id(response: &Response) -> String {
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        body["id"].as_str().unwrap_or_default().to_owned()
    }

    #[test]
    fn a_components_payload_posts_and_none_drops() {
        let (host, hook) = setup(Transform::Component(COMPONENT.into()), None);
        answer(&host, Ok(Some(r#"{"text": "made by a component"}"#.into())));
        assert_eq!(post(&host, &hook).status, 200);
        assert_eq!(host.posts.borrow().len(), 1);
        assert_eq!(host.posts.borrow()[0].message, "made by a component");

        answer(&host, Ok(None));
        let response = post(&host, &hook);
        assert_eq!(response.status, 200);
        assert!(
            response
                .headers
                .iter()
                .any(|(k, v)| k == "X-Switchboard-Ignored" && v == "transform:dropped")
        );
        assert_eq!(host.posts.borrow().len(), 1);
    }

    #[test]
    fn failures_are_422_and_post_nothing() {
        let (host, hook) = setup(Transform::Component(COMPONENT.into()), None);
        let cases = [
            (Err(TransformFailure::NotFound), COMPONENT_FAILED),
            (
                Err(TransformFailure::Refused("no".into())),
                COMPONENT_FAILED,
            ),
            (
                Err(TransformFailure::Crashed("wall deadline".into())),
                COMPONENT_FAILED,
            ),
            (Ok(Some("not json".into())), OUTPUT_INVALID),
        ];
        for (result, id) in cases {
            answer(&host, result);
            let response = post(&host, &hook);
            assert_eq!(response.status, 422);
            assert_eq!(error_id(&response), id);
        }
        assert!(host.posts.borrow().is_empty());
    }

    #[test]
    fn a_components_payload_can_do_no_more_than_a_senders() {
        let (host, hook) = setup(Transform::Component(COMPONENT.into()), None);
        answer(
            &host,
            Ok(Some(r#"{"text": "x", "channel": "off-topic"}"#.into())),
        );
        let response = post(&host, &hook);
        assert_eq!(response.status, 403);
        assert!(host.posts.borrow().is_empty());
    }

    /// The rate limit is taken before the transform runs, once: a limited request never
    /// reaches it.
    #[test]
    fn the_rate_limit_comes_first() {
        let (host, hook) = setup(Transform::Component(COMPONENT.into()), Some(1));
        answer(&host, Err(TransformFailure::Crashed("trap".into())));
        assert_eq!(post(&host, &hook).status, 422);
        assert_eq!(post(&host, &hook).status, 429);
    }

    #[test]
    fn a_template_with_a_bad_id_or_syntax_is_refused() {
        let bad = Transform::Component("../../etc".into());
        assert_eq!(bad.check().unwrap_err().id, INVALID_ID);
        let bad = Transform::Template(Template {
            text: "{{ x".into(),
            ..Template::default()
        });
        assert_eq!(bad.check().unwrap_err().status, 400);
        let json: Transform = serde_json::from_str(r#"{"component": "abc"}"#).unwrap();
        assert_eq!(json, Transform::Component("abc".into()));
        assert!(serde_json::from_str::<Transform>(r#"{"template": {"txt": "a"}}"#).is_err());
    }
}
