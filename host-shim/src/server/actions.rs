//! Clicks on message actions and dialog submissions and lookups, forwarded to
//! the plugin's `interactive` export: the user waits for the integration's
//! answer here, holding no instance, through the one outbound path
//! (`deliveries::send_now`: signing, egress policy, per-destination limits).

use super::Shim;
use super::plugin::{call_failed, plugin_request, plugin_response};
use crate::runtime::InteractiveOutcome;
use crate::store::new_id;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

pub fn routes() -> Router<Shim> {
    Router::new()
        .route(
            "/api/v4/posts/{post_id}/actions/{action_id}",
            post(interact),
        )
        .route("/api/v4/actions/dialogs/submit", post(interact))
        .route("/api/v4/actions/dialogs/lookup", post(interact))
}

async fn interact(State(shim): State<Shim>, request: Request) -> Response {
    let request = match plugin_request(&shim, request).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let call = match shim
        .runtime
        .interactive_start(shim.app.clone(), request.clone())
        .await
    {
        Ok(InteractiveOutcome::Done(response)) => return plugin_response(response),
        Ok(InteractiveOutcome::Call(call)) => call,
        Err(err) => return call_failed(err).into_response(),
    };
    let (outbound, signing, continuation) = crate::runtime::interactive_call_parts(call);
    let answer = if shim.runtime.may_use_egress() {
        crate::deliveries::send_now(&shim.app, &shim.engine, outbound, &signing, &new_id()).await
    } else {
        Err(crate::egress::EgressError::Refused(
            "the plugin's manifest does not request the `egress` permission".into(),
        ))
    };
    match shim
        .runtime
        .interactive_respond(shim.app.clone(), request, continuation, answer)
        .await
    {
        Ok(response) => plugin_response(response),
        Err(err) => call_failed(err).into_response(),
    }
}
