//! `/api/v4/websocket`: live events in Mattermost's shape. A client
//! authenticates with the same tokens as the REST API, in the `Authorization`
//! header or with an `authentication_challenge` action, gets `hello`, then
//! the events it may see: ephemeral posts only their user's, posts and edits
//! only in channels the user may read.

use super::Shim;
use crate::app::{Event, Scope};
use crate::store::new_id;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

pub fn routes() -> Router<Shim> {
    Router::new().route("/api/v4/websocket", get(upgrade))
}

async fn upgrade(
    State(shim): State<Shim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    // Without a valid token the connection opens unauthenticated, as in
    // Mattermost: the client may still answer the challenge.
    let user = shim.session_user(&headers, query.as_deref());
    ws.on_upgrade(move |socket| serve(shim, socket, user))
}

/// One client connection: its user once known, and its own event sequence.
struct Connection {
    socket: WebSocket,
    user: Option<String>,
    id: String,
    seq: u64,
}

impl Connection {
    async fn send(&mut self, value: Value) -> bool {
        self.socket
            .send(Message::Text(value.to_string().into()))
            .await
            .is_ok()
    }

    async fn send_event(&mut self, event: &Event) -> bool {
        let value = event.to_json(self.seq);
        self.seq += 1;
        self.send(value).await
    }

    async fn hello(&mut self) -> bool {
        let hello = Event {
            event: "hello".into(),
            data: json!({
                "server_version": env!("CARGO_PKG_VERSION"),
                "connection_id": self.id,
                "server_hostname": "",
            }),
            user_id: self.user.clone(),
            channel_id: String::new(),
        };
        self.send_event(&hello).await
    }
}

async fn serve(shim: Shim, socket: WebSocket, user: Option<String>) {
    // Subscribe before saying hello, so nothing posted after it is missed.
    let mut events = shim.app.events.subscribe();
    let mut conn = Connection {
        socket,
        user,
        id: new_id(),
        seq: 0,
    };
    if conn.user.is_some() && !conn.hello().await {
        return;
    }
    loop {
        tokio::select! {
            incoming = conn.socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if !action(&shim, &mut conn, text.as_str()).await {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                // Pings are answered by the socket itself; binary frames mean nothing here.
                Some(Ok(_)) => {}
            },
            event = events.recv() => match event {
                Ok(event) => {
                    if visible(&shim, conn.user.as_deref(), &event) && !conn.send_event(&event).await {
                        break;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!("websocket {} fell behind and missed {missed} events", conn.id);
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
}

/// Whether `user` may see `event`.
fn visible(shim: &Shim, user: Option<&str>, event: &Event) -> bool {
    let Some(user) = user else {
        return false;
    };
    match &event.user_id {
        Some(only) => only == user,
        None => shim.app.has_permission(
            user,
            "read_channel",
            &Scope::Channel(event.channel_id.clone()),
        ),
    }
}

fn reply(seq: &Value, error: Option<Value>) -> Value {
    match error {
        None => json!({"status": "OK", "seq_reply": seq}),
        Some(error) => json!({"status": "FAIL", "seq_reply": seq, "error": error}),
    }
}

fn app_error(id: &str, message: &str, status: u16) -> Value {
    json!({
        "id": id,
        "message": message,
        "detailed_error": "",
        "request_id": "",
        "status_code": status,
    })
}

/// Handles one client message `{seq, action, data}`; `false` closes the connection.
async fn action(shim: &Shim, conn: &mut Connection, text: &str) -> bool {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        // Mattermost drops what it cannot decode.
        return true;
    };
    let seq = message.get("seq").cloned().unwrap_or(Value::Null);
    let action = message.get("action").and_then(Value::as_str).unwrap_or("");
    if action == "authentication_challenge" {
        if conn.user.is_some() {
            return true;
        }
        let Some(token) = message.pointer("/data/token").and_then(Value::as_str) else {
            let error = app_error(
                "api.websocket_handler.invalid_param.app_error",
                "Invalid token parameter.",
                400,
            );
            return conn.send(reply(&seq, Some(error))).await;
        };
        let Some(user) = shim.app.user_for_token(token) else {
            // A bad token ends the connection, as Mattermost does.
            let _ = conn.socket.send(Message::Close(None)).await;
            return false;
        };
        conn.user = Some(user);
        return conn.send(reply(&seq, None)).await && conn.hello().await;
    }
    if conn.user.is_none() {
        let error = app_error(
            "api.web_socket_router.not_authenticated.app_error",
            "The connection is not authenticated. Please log in and try again.",
            401,
        );
        return conn.send(reply(&seq, Some(error))).await;
    }
    let error = app_error(
        "api.web_socket_router.bad_action.app_error",
        "Unknown websocket action.",
        501,
    );
    conn.send(reply(&seq, Some(error))).await
}
