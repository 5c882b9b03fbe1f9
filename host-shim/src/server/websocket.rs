//! `/api/v4/websocket`: live events in Mattermost's shape. A client
//! authenticates with the same tokens as the REST API, in the `Authorization`
//! header or with an `authentication_challenge` action (within
//! `WebsocketAuthTimeoutSeconds`), gets `hello`, then the events it may see:
//! its own ephemeral posts, posts in channels it may read, its teams' events.

use super::Shim;
use crate::app::{Event, OnlineGuard, Scope};
use crate::store::{new_id, now_millis};
use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// The close code for a connection that fell behind the event buffer: 1008
/// (policy violation: it did not read its events in time). Clients reconnect
/// on any close.
const SLOW_CLOSE_CODE: u16 = 1008;
const SLOW_CLOSE_REASON: &str = "fell behind the event stream; reconnect and resync";
/// The close code when the server stops: 1001 (going away).
const STOP_CLOSE_CODE: u16 = 1001;

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
    /// Counts the user online (for `@here`) while the connection lives.
    online: Option<OnlineGuard>,
    /// What this user may see, per channel or team, so fan-out asks the
    /// permission store once per connection and scope, not once per event.
    visible: VisibilityCache,
}

/// Permission answers of one connection, valid while the membership
/// epoch (this node's and the cluster's) stays the same.
#[derive(Default)]
struct VisibilityCache {
    epoch: u64,
    answers: HashMap<String, bool>,
}

impl VisibilityCache {
    fn get(&mut self, shim: &Shim, key: &str, ask: impl FnOnce() -> bool) -> bool {
        // In a cluster, another node's membership change moves it too.
        let epoch = shim.app.store.membership_epoch();
        if epoch != self.epoch {
            self.answers.clear();
            self.epoch = epoch;
        }
        *self.answers.entry(key.to_string()).or_insert_with(ask)
    }
}

impl Connection {
    async fn send(&mut self, value: Value) -> bool {
        self.socket
            .send(Message::Text(value.to_string().into()))
            .await
            .is_ok()
    }

    async fn send_event(&mut self, event: &Event) -> bool {
        let value = event.to_json_for(self.user.as_deref(), self.seq);
        self.seq += 1;
        self.send(value).await
    }

    /// Marks the connection authenticated as `user` and says hello.
    async fn authenticated(&mut self, shim: &Shim, user: String) -> bool {
        self.online = Some(shim.app.events.online(&user));
        self.user = Some(user);
        let hello = Event {
            event: "hello".into(),
            data: json!({
                "server_version": env!("CARGO_PKG_VERSION"),
                "connection_id": self.id,
                "server_hostname": "",
            }),
            user_id: self.user.clone(),
            ..Event::default()
        };
        self.send_event(&hello).await
    }

    /// Whether this connection's user may see `event`.
    fn may_see(&mut self, shim: &Shim, event: &Event) -> bool {
        let Some(user) = self.user.clone() else {
            return false;
        };
        if let Some(only) = &event.user_id {
            return *only == user;
        }
        if !event.channel_id.is_empty() {
            let channel = event.channel_id.clone();
            return self.visible.get(shim, &format!("c:{channel}"), || {
                shim.app
                    .has_permission(&user, "read_channel", &Scope::Channel(channel.clone()))
            });
        }
        if !event.team_id.is_empty() {
            let team = event.team_id.clone();
            return self.visible.get(shim, &format!("t:{team}"), || {
                shim.app
                    .has_permission(&user, "view_team", &Scope::Team(team.clone()))
            });
        }
        true
    }
}

async fn serve(shim: Shim, socket: WebSocket, user: Option<String>) {
    let _counted = shim.app.telemetry.websocket_opened();
    let _open = shim.app.events.socket_open();
    let stopping = shim.app.events.stopping();
    tokio::pin!(stopping);
    // Subscribe before saying hello, so nothing posted after it is missed.
    let mut events = shim.app.events.subscribe();
    let mut conn = Connection {
        socket,
        user: None,
        id: new_id(),
        seq: 0,
        online: None,
        visible: VisibilityCache::default(),
    };
    if let Some(user) = user
        && !conn.authenticated(&shim, user).await
    {
        return;
    }
    // An unauthenticated connection is closed once this passes.
    let timeout = shim
        .app
        .config()
        .switchboard_settings
        .websocket_auth_timeout_seconds;
    let auth_deadline = tokio::time::sleep(Duration::from_secs(u64::from(timeout)));
    tokio::pin!(auth_deadline);
    loop {
        tokio::select! {
            () = &mut stopping => {
                let close = CloseFrame {
                    code: STOP_CLOSE_CODE,
                    reason: "the server is stopping".into(),
                };
                // A client that does not read gets no more than a second.
                let send = conn.socket.send(Message::Close(Some(close)));
                let _ = tokio::time::timeout(Duration::from_secs(1), send).await;
                break;
            },
            () = &mut auth_deadline, if conn.user.is_none() => {
                tracing::debug!("websocket {} did not authenticate in time", conn.id);
                let _ = conn.socket.send(Message::Close(None)).await;
                break;
            },
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
                    if conn.may_see(&shim, &event) && !conn.send_event(&event).await {
                        break;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    // Skipping would leave the client silently out of date;
                    // closed, it reconnects and fetches what it missed
                    // (`?since=`), as Mattermost's clients do.
                    shim.app.events.count_slow_socket();
                    shim.app.telemetry.slow_socket_closed();
                    tracing::warn!(
                        "websocket {} fell behind and missed {missed} events: closing it",
                        conn.id
                    );
                    let close = CloseFrame {
                        code: SLOW_CLOSE_CODE,
                        reason: SLOW_CLOSE_REASON.into(),
                    };
                    let _ = conn.socket.send(Message::Close(Some(close))).await;
                    break;
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
}

fn reply(seq: &Value, error: Option<Value>) -> Value {
    match error {
        None => json!({"status": "OK", "seq_reply": seq}),
        Some(error) => json!({"status": "FAIL", "seq_reply": seq, "error": error}),
    }
}

/// Mattermost's answer to `ping`, which its web client sends every 30 s.
fn pong(seq: &Value) -> Value {
    json!({
        "status": "OK",
        "seq_reply": seq,
        "data": {
            "text": "pong",
            "version": env!("CARGO_PKG_VERSION"),
            "server_time": now_millis(),
            "node_id": "",
        },
    })
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
    if action.is_empty() {
        let error = app_error(
            "api.web_socket_router.no_action.app_error",
            "No websocket action.",
            400,
        );
        return conn.send(reply(&seq, Some(error))).await;
    }
    if seq.as_i64().is_none_or(|n| n <= 0) {
        let error = app_error(
            "api.web_socket_router.bad_seq.app_error",
            "Invalid sequence for websocket message.",
            400,
        );
        return conn.send(reply(&seq, Some(error))).await;
    }
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
        // Mattermost registers the connection (which queues `hello`) before
        // it answers the challenge; clients such as mattermostdriver expect
        // that order.
        return conn.authenticated(shim, user).await && conn.send(reply(&seq, None)).await;
    }
    if conn.user.is_none() {
        let error = app_error(
            "api.web_socket_router.not_authenticated.app_error",
            "The connection is not authenticated. Please log in and try again.",
            401,
        );
        return conn.send(reply(&seq, Some(error))).await;
    }
    if action == "ping" {
        return conn.send(pong(&seq)).await;
    }
    let error = app_error(
        "api.web_socket_router.bad_action.app_error",
        "Unknown websocket action.",
        500,
    );
    conn.send(reply(&seq, Some(error))).await
}
