//! `GET /api/v4/system/ping`: the server answers, and with
//! `get_server_status=true` says how its database and plugin are, as
//! Mattermost's enhanced ping does for its database and file store.

use super::Shim;
use super::rest::json_response;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

const OK: &str = "OK";
const UNHEALTHY: &str = "UNHEALTHY";

pub(super) async fn ping(State(shim): State<Shim>, RawQuery(query): RawQuery) -> Response {
    let flag = |name: &str| {
        url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
            .any(|(k, v)| k == name && v == "true")
    };
    let mut answer = json!({"status": OK, "version": env!("CARGO_PKG_VERSION")});
    if !flag("get_server_status") {
        return json_response(StatusCode::OK, answer);
    }
    let database = match shim.app.store.health_check().await {
        Ok(()) => OK,
        Err(e) => {
            tracing::warn!("server status: the database is unhealthy: {e}");
            UNHEALTHY
        }
    };
    let plugin = if !shim.app.telemetry.activated() {
        tracing::warn!("server status: the plugin is not activated");
        UNHEALTHY
    } else if !shim.runtime.can_take_call() {
        tracing::warn!(
            "server status: the plugin cannot take a call (every slot and the queue are full)"
        );
        UNHEALTHY
    } else {
        OK
    };
    let status = if database == OK && plugin == OK {
        OK
    } else {
        UNHEALTHY
    };
    answer["status"] = status.into();
    answer["database_status"] = database.into();
    answer["plugin_status"] = plugin.into();
    // Mattermost names its search engine here; the shim searches nothing
    // but its database.
    answer["ActiveSearchBackend"] = "database".into();
    // Unhealthy is a 500 unless the caller asked for REST semantics, as in
    // Mattermost (load balancers read the status code).
    let code = if status != OK && !flag("use_rest_semantics") {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let mut response = json_response(code, answer);
    for (name, value) in [
        ("status", status),
        ("database_status", database),
        ("plugin_status", plugin),
    ] {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}
