//! Interactive messages (spec §7) and the `interactive` export: a click, a
//! dialog submission or a lookup starts here, becomes one request to the
//! integration (sent by the host), and is finished by `respond`.

mod click;
pub mod cookie;
pub mod request;

use crate::api::{ApiError, Request, Response};
use crate::host::{EgressError, Host, InteractiveCall, OutboundResponse};
use serde::{Deserialize, Serialize};

/// What `start` comes to: the client's answer now, or a request for the
/// host to send before `respond` finishes.
#[derive(Debug)]
pub enum Outcome {
    Done(Response),
    Call(InteractiveCall),
}

/// What each kind of interaction hands itself from `start` to `respond`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Continuation {
    Click(Box<click::Pending>),
    Submit,
    Lookup,
}

pub(crate) fn continuation(c: &Continuation) -> Vec<u8> {
    serde_json::to_vec(c).unwrap_or_default()
}

fn segments(req: &Request) -> Vec<&str> {
    req.path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .collect()
}

/// `interactive.start`: never panics on input; every failure is an envelope.
pub fn start(host: &dyn Host, req: &Request) -> Outcome {
    let result = if req.body_too_large {
        Err(ApiError::body_too_large())
    } else {
        match (req.method.as_str(), segments(req).as_slice()) {
            ("POST", ["api", "v4", "posts", post_id, "actions", action_id]) => {
                click::start(host, req, post_id, action_id)
            }
            ("POST", ["api", "v4", "actions", "dialogs", "submit"]) => {
                crate::dialogs::submit::start(host, req, false)
            }
            ("POST", ["api", "v4", "actions", "dialogs", "lookup"]) => {
                crate::dialogs::submit::start(host, req, true)
            }
            _ => Err(ApiError::not_found_route()),
        }
    };
    result.unwrap_or_else(|e| Outcome::Done(envelope(host, req, e)))
}

/// `interactive.respond`: what the integration answered (or why nothing came).
pub fn respond(
    host: &dyn Host,
    req: &Request,
    continuation: &[u8],
    answer: Result<OutboundResponse, EgressError>,
) -> Response {
    let result = match serde_json::from_slice::<Continuation>(continuation) {
        Ok(Continuation::Click(pending)) => click::respond(host, req, *pending, answer),
        Ok(Continuation::Submit) => crate::dialogs::submit::respond(host, req, false, answer),
        Ok(Continuation::Lookup) => crate::dialogs::submit::respond(host, req, true, answer),
        Err(e) => Err(request::integration_failed().with_detail(format!("bad continuation: {e}"))),
    };
    result.unwrap_or_else(|e| envelope(host, req, e))
}

fn envelope(host: &dyn Host, req: &Request, e: ApiError) -> Response {
    e.into_response(&req.request_id, host.settings().enable_developer)
}
