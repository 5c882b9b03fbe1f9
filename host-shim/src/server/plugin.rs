//! Routes the plugin owns, forwarded to its exports: `/hooks/...`, integration
//! management under `/api/v4`, slash command execution, opening dialogs and
//! `/plugins/switchboard/...` (clicks and dialog submissions: `actions.rs`).

use super::{ApiError, Shim};
use crate::runtime::{CallError, CommandArgs, CommandOutcome, PluginHeader, PluginRequest};
use crate::store::{StoreError, new_id};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};

pub fn routes() -> Router<Shim> {
    Router::new()
        .route("/hooks/{*rest}", any(forward))
        .route("/api/v4/hooks/{*rest}", any(forward))
        .route("/api/v4/commands", any(forward))
        .route("/api/v4/commands/execute", post(execute_command))
        .route("/api/v4/commands/{*rest}", any(forward))
        .route(
            "/api/v4/teams/{team_id}/commands/autocomplete",
            any(forward),
        )
        .route(
            "/api/v4/teams/{team_id}/commands/autocomplete_suggestions",
            any(forward),
        )
        .route("/api/v4/actions/{*rest}", any(forward))
        .route("/plugins/switchboard", any(forward))
        // A wildcard does not match an empty rest: the root with its slash.
        .route("/plugins/switchboard/", any(forward))
        .route("/plugins/switchboard/{*rest}", any(forward))
}

/// A plugin call that failed (trap, deadline, memory) is a 500 for this
/// request only; a call refused for a full pool is a 503 to retry. A trap's
/// backtrace goes to the log and, in developer mode, `detailed_error`.
pub fn call_failed(err: CallError) -> ApiError {
    match &err {
        CallError::Busy { retry_after } => {
            tracing::warn!("plugin call refused: {err}");
            ApiError::busy(*retry_after)
        }
        CallError::Trap { detail, .. } => {
            tracing::error!("plugin call failed: {err}\n{detail}");
            ApiError::new(500, "app.plugin.call_failed.app_error", err.to_string())
                .detail(detail.clone())
        }
        _ => {
            tracing::error!("plugin call failed: {err}");
            ApiError::new(500, "app.plugin.call_failed.app_error", err.to_string())
                .detail(format!("{err:?}"))
        }
    }
}

/// Reads the body up to the cap; `None` when it is over. A body that has not
/// arrived whole within `ReadTimeout` answers 408 (and hyper closes the
/// connection, whose body was left unread), so a trickling sender holds no
/// handler for long.
pub async fn read_body(shim: &Shim, body: Body) -> Result<Option<Vec<u8>>, ApiError> {
    read_body_up_to(shim, body, shim.body_limit()).await
}

/// [`read_body`] with a cap of its own (uploads larger than a payload).
pub async fn read_body_up_to(
    shim: &Shim,
    body: Body,
    cap: usize,
) -> Result<Option<Vec<u8>>, ApiError> {
    let limit = std::time::Duration::from_secs(u64::from(
        shim.app.config().service_settings.read_timeout.max(1),
    ));
    let read = Limited::new(body, cap).collect();
    match tokio::time::timeout(limit, read).await {
        Err(_) => Err(ApiError::new(
            408,
            "api.context.read_timeout.app_error",
            "The request body did not arrive in time.",
        )),
        Ok(Ok(collected)) => Ok(Some(collected.to_bytes().to_vec())),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Ok(None),
        Ok(Err(e)) => Err(ApiError::invalid_body("body").detail(e.to_string())),
    }
}

async fn forward(State(shim): State<Shim>, request: Request) -> Response {
    let request = match plugin_request(&shim, request).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let call = shim.runtime.handle_http(shim.app.clone(), request);
    match crate::runtime::noting_store_outage(call).await {
        // The plugin failed while the database was unreachable (what it
        // could not read may even look like a bad request): a 503 to retry,
        // as the shim's own routes answer, never a 500.
        (Ok(response), true) if response.status >= 400 => {
            let outage = StoreError::Unavailable("a store call of the plugin's failed".into());
            ApiError::unavailable(&outage).into_response()
        }
        (Ok(response), _) => plugin_response(response),
        (Err(err), _) => call_failed(err).into_response(),
    }
}

/// The client's request as the plugin's `http` and `interactive` exports
/// take it: session user, headers, and the body up to the cap.
pub(super) async fn plugin_request(
    shim: &Shim,
    request: Request,
) -> Result<PluginRequest, Response> {
    let (parts, body) = request.into_parts();
    let query = parts.uri.query().unwrap_or("").to_string();
    let user_id = shim.session_user(&parts.headers, Some(&query));
    let (body, body_too_large) = match read_body(shim, body).await {
        Ok(Some(body)) => (body, false),
        Ok(None) => (Vec::new(), true),
        Err(e) => return Err(e.into_response()),
    };
    let headers = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some(PluginHeader {
                name: name.as_str().to_string(),
                value: value.to_str().ok()?.to_string(),
            })
        })
        .collect();
    Ok(PluginRequest {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query,
        headers,
        body,
        body_too_large,
        user_id,
        request_id: super::request_id(),
    })
}

pub(super) fn plugin_response(response: crate::runtime::PluginResponse) -> Response {
    let mut builder = Response::builder().status(response.status);
    for header in &response.headers {
        builder = builder.header(header.name.as_str(), header.value.as_str());
    }
    builder.body(Body::from(response.body)).unwrap_or_else(|e| {
        ApiError::new(
            500,
            "app.plugin.bad_response.app_error",
            "The plugin answered with an invalid response.",
        )
        .detail(e.to_string())
        .into_response()
    })
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct ExecuteBody {
    channel_id: String,
    team_id: String,
    root_id: String,
    parent_id: String,
    command: String,
}

/// `POST /api/v4/commands/execute` goes to the plugin's `commands` export,
/// which chat servers call from their own command box too.
async fn execute_command(State(shim): State<Shim>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let user_id = match shim.require_user(&parts.headers, parts.uri.query()) {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let body = match read_body(&shim, body).await {
        Ok(Some(b)) => b,
        Ok(None) => return ApiError::too_large().into_response(),
        Err(e) => return e.into_response(),
    };
    let Ok(args) = serde_json::from_slice::<ExecuteBody>(&body) else {
        return ApiError::invalid_body("command_args").into_response();
    };
    let args = CommandArgs {
        user_id,
        channel_id: args.channel_id,
        team_id: args.team_id,
        root_id: args.root_id,
        parent_id: args.parent_id,
        command: args.command,
    };
    let answer = match shim
        .runtime
        .execute_command(shim.app.clone(), args.clone())
        .await
    {
        Ok(Ok(CommandOutcome::Done(json))) => Ok(json),
        // A custom command: the host sends its request and waits for the
        // answer here, holding no instance, then the plugin finishes the
        // command in a fresh one.
        Ok(Ok(CommandOutcome::Call(call))) => {
            let (request, signing, continuation) = crate::runtime::command_call_parts(call);
            let reply = if shim.runtime.may_use_egress() {
                crate::deliveries::send_now(&shim.app, &shim.engine, request, &signing, &new_id())
                    .await
            } else {
                Err(crate::egress::EgressError::Refused(
                    "the plugin's manifest does not request the `egress` permission".into(),
                ))
            };
            match shim
                .runtime
                .respond_command(shim.app.clone(), args, continuation, reply)
                .await
            {
                Ok(answer) => answer,
                Err(err) => return call_failed(err).into_response(),
            }
        }
        Ok(Err(e)) => Err(e),
        Err(err) => return call_failed(err).into_response(),
    };
    match answer {
        Ok(json) => (
            axum::http::StatusCode::OK,
            [("content-type", "application/json")],
            json,
        )
            .into_response(),
        Err(e) => ApiError::new(e.status_code, &e.id, e.message)
            .detail(e.detailed_error)
            .into_response(),
    }
}
