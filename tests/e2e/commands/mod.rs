//! Slash commands through the compiled component: management, execution
//! against real backends on loopback, `response_url`, built-ins.

mod builtin;
mod execute;
mod manage;

use serde_json::{Value, json};
use switchboard_tests::Backend;
use switchboard_tests::{Api, Reply, TestShim};

/// A shim whose egress may reach loopback backends.
pub async fn shim() -> TestShim {
    TestShim::builder()
        .config(|c| {
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
        })
        .start()
        .await
        .unwrap()
}

/// Creates a command in the shim's team; `extra` overrides the defaults.
pub async fn create_command(api: &Api, shim: &TestShim, extra: Value) -> Value {
    let mut body = json!({
        "team_id": shim.team.id, "trigger": "deploy", "method": "P",
        "url": "http://127.0.0.1:9/unused", "display_name": "Deploy",
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let reply = api.post_json("/api/v4/commands", &body).await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);
    reply.json()
}

/// A command pointing at `backend`, with method `P` or `G`.
pub async fn command_for(api: &Api, shim: &TestShim, backend: &Backend, method: &str) -> Value {
    create_command(
        api,
        shim,
        json!({"method": method, "url": format!("{}/slash", backend.url)}),
    )
    .await
}

/// Runs a command line in a channel.
pub async fn execute(api: &Api, channel_id: &str, command: &str) -> Reply {
    api.post_json(
        "/api/v4/commands/execute",
        &json!({"channel_id": channel_id, "command": command}),
    )
    .await
}

/// Runs a command line and expects 200; returns the response JSON.
#[track_caller]
pub fn ok(reply: &Reply) -> Value {
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    reply.json()
}
