//! The plugin's route table, at the top of the plugin: each feature owns its
//! handlers; this file only decides which one a request goes to, and turns
//! errors into envelopes. No feature imports it (they share `api`, below them).

use crate::api::{ApiError, Request, Response};
use crate::host::Host;
use crate::{commands, incoming, outgoing};

/// Serves one request. Never panics on input: every failure is an envelope.
pub fn route(host: &dyn Host, req: &Request) -> Response {
    let segments: Vec<&str> = req
        .path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .collect();
    let method = req.method.as_str();

    let result = match (method, segments.as_slice()) {
        // Incoming webhooks take the oversize body themselves: their errors
        // carry webhook-specific ids.
        ("POST", ["hooks", id]) => return incoming::execute::handle(host, req, id, None),
        // A built-in source's native payload (`/hooks/commands/…` is a command's response URL).
        ("POST", ["hooks", id, source]) if *id != "commands" => {
            return incoming::execute::handle(host, req, id, Some(source));
        }
        _ if req.body_too_large => Err(ApiError::body_too_large()),

        ("POST", ["api", "v4", "hooks", "incoming"]) => incoming::manage::create(host, req),
        ("GET", ["api", "v4", "hooks", "incoming"]) => incoming::manage::list(host, req),
        ("GET", ["api", "v4", "hooks", "incoming", "sources"]) => incoming::manage::sources(req),
        ("GET", ["api", "v4", "hooks", "incoming", id]) => incoming::manage::get(host, req, id),
        ("GET", ["api", "v4", "hooks", "incoming", id, "samples"]) => {
            incoming::manage::samples(host, req, id)
        }
        ("POST", ["api", "v4", "hooks", "incoming", id, "preview"]) => {
            incoming::manage::preview(host, req, id)
        }
        ("PUT", ["api", "v4", "hooks", "incoming", id]) => incoming::manage::update(host, req, id),
        ("DELETE", ["api", "v4", "hooks", "incoming", id]) => {
            incoming::manage::delete(host, req, id)
        }

        ("POST", ["hooks", "commands", id]) => Ok(commands::response_url::handle(host, req, id)),
        ("PATCH", ["hooks", id, "posts", post_id]) => incoming::posts::edit(host, req, id, post_id),
        ("DELETE", ["hooks", id, "posts", post_id]) => incoming::posts::delete(host, id, post_id),
        ("POST", ["api", "v4", "commands"]) => commands::manage::create(host, req),
        ("GET", ["api", "v4", "commands"]) => commands::manage::list(host, req),
        ("GET", ["api", "v4", "commands", id]) => commands::manage::get(host, req, id),
        ("PUT", ["api", "v4", "commands", id]) => commands::manage::update(host, req, id),
        ("DELETE", ["api", "v4", "commands", id]) => commands::manage::delete(host, req, id),
        ("PUT", ["api", "v4", "commands", id, "move"]) => {
            commands::manage::move_to_team(host, req, id)
        }
        ("PUT", ["api", "v4", "commands", id, "regen_token"]) => {
            commands::manage::regen_token(host, req, id)
        }
        ("PUT", ["api", "v4", "commands", id, "regen_signing_secret"]) => {
            commands::manage::regen_signing_secret(host, req, id)
        }
        ("GET", ["api", "v4", "teams", team, "commands", "autocomplete"]) => {
            commands::autocomplete::list(host, req, team)
        }
        (
            "GET",
            [
                "api",
                "v4",
                "teams",
                team,
                "commands",
                "autocomplete_suggestions",
            ],
        ) => commands::autocomplete::suggestions(host, req, team),

        ("POST", ["api", "v4", "hooks", "outgoing"]) => outgoing::manage::create(host, req),
        ("GET", ["api", "v4", "hooks", "outgoing"]) => outgoing::manage::list(host, req),
        ("GET", ["api", "v4", "hooks", "outgoing", id]) => outgoing::manage::get(host, req, id),
        ("PUT", ["api", "v4", "hooks", "outgoing", id]) => outgoing::manage::update(host, req, id),
        ("DELETE", ["api", "v4", "hooks", "outgoing", id]) => {
            outgoing::manage::delete(host, req, id)
        }
        ("POST", ["api", "v4", "hooks", "outgoing", id, "regen_token"]) => {
            outgoing::manage::regen_token(host, req, id)
        }
        (
            "POST",
            [
                "api",
                "v4",
                "hooks",
                "outgoing",
                id,
                "deliveries",
                delivery,
                "redeliver",
            ],
        ) => outgoing::manage::redeliver(host, req, id, delivery),
        ("POST", ["api", "v4", "hooks", "outgoing", id, "rotate_secret"]) => {
            outgoing::manage::rotate_secret(host, req, id)
        }
        ("GET", ["api", "v4", "hooks", "outgoing", id, "deliveries"]) => {
            outgoing::manage::list_deliveries(host, req, id)
        }

        ("POST", ["api", "v4", "actions", "dialogs", "open"]) => crate::dialogs::open(host, req),

        ("GET", ["plugins", "switchboard"]) => Ok(crate::console::home()),
        ("GET", ["plugins", "switchboard", "console", rest @ ..]) => {
            crate::console::serve(req, rest, &host.settings().site_url)
        }
        ("POST", ["plugins", "switchboard", "test", what]) => test_fault(host, what),
        _ => Err(ApiError::not_found_route()),
    };
    match result {
        Ok(response) => response,
        Err(err) => err.into_response(&req.request_id, host.settings().enable_developer),
    }
}

/// Deliberate faults, so the host's isolation (traps, deadlines, memory caps)
/// can be tested through the real component. Only with `EnableTesting`.
fn test_fault(host: &dyn Host, what: &str) -> Result<Response, ApiError> {
    if !host.settings().enable_testing {
        return Err(ApiError::not_found_route());
    }
    match what {
        "trap" => panic!("test fault requested: trap"),
        "spin" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        _ => Err(ApiError::not_found_route()),
    }
}
