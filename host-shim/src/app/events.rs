//! What happened on the server, in Mattermost's websocket event shape: sent to
//! live subscribers (the websocket) and kept in a bounded log for the harness.

use crate::store::Channel;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::broadcast;

/// How many recent events and log lines the harness can look back on.
const KEPT: usize = 10_000;

/// How many events a websocket connection may fall behind before it is
/// closed (see `server::websocket`).
pub const LIVE_BUFFER: usize = 1024;

/// One event as clients see it: `{event, data, broadcast, seq}`. Who receives
/// it follows its broadcast, as in Mattermost: one user, the readers of a
/// channel, or the members of a team.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub event: String,
    pub data: Value,
    /// Only this user receives it (ephemeral posts, hello), when set.
    pub user_id: Option<String>,
    /// Those who may read this channel receive it, when set.
    pub channel_id: String,
    /// Members of this team receive it, when set and no channel is.
    pub team_id: String,
    /// Recipients whose copy carries `data.mentions`: Mattermost adds the
    /// field per connection, holding only the recipient's own id.
    pub mentions: Vec<String>,
}

impl Event {
    /// The event as `recipient` receives it, with its connection's `seq`.
    pub fn to_json_for(&self, recipient: Option<&str>, seq: u64) -> Value {
        let mut data = self.data.clone();
        if let (Some(user), Value::Object(map)) = (recipient, &mut data)
            && self.mentions.iter().any(|m| m == user)
        {
            // A JSON string, as Mattermost's clients expect it.
            map.insert("mentions".into(), Value::String(json!([user]).to_string()));
        }
        json!({
            "event": self.event,
            "data": data,
            "broadcast": {
                "omit_users": null,
                "user_id": self.user_id.clone().unwrap_or_default(),
                "channel_id": self.channel_id,
                "team_id": self.team_id,
                "connection_id": "",
                "omit_connection_id": "",
            },
            "seq": seq,
        })
    }
}

impl Event {
    /// The event as the cluster bus carries it to the other nodes.
    pub fn to_wire(&self) -> String {
        json!({
            "event": self.event,
            "data": self.data,
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "team_id": self.team_id,
            "mentions": self.mentions,
        })
        .to_string()
    }

    /// An event another node sent (see [`Event::to_wire`]).
    pub fn from_wire(wire: &str) -> Option<Event> {
        let v: Value = serde_json::from_str(wire).ok()?;
        let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        Some(Event {
            event: text("event")?,
            data: v.get("data").cloned().unwrap_or(Value::Null),
            user_id: text("user_id"),
            channel_id: text("channel_id").unwrap_or_default(),
            team_id: text("team_id").unwrap_or_default(),
            mentions: v
                .get("mentions")
                .and_then(Value::as_array)
                .map(|m| {
                    m.iter()
                        .filter_map(|u| u.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// Hands each event this node emits to the other nodes (the cluster bus).
pub type Forward = Box<dyn Fn(&Event) + Send + Sync>;

/// Tells the other nodes that a user came online here (`true`: their first
/// connection to this node) or went offline here (their last one closed).
pub type Presence = Box<dyn Fn(&str, bool) + Send + Sync>;

/// How long what another node said about who is online there holds without
/// a new snapshot: three of its snapshots (`crate::cluster_upkeep`), so a
/// node that died stops counting its users online within a minute.
pub const REMOTE_PRESENCE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Who is online on another node, as it last said.
struct RemotePresence {
    heard: std::time::Instant,
    users: std::collections::HashSet<String>,
}

/// What a `posted` event says about its post beyond the post itself
/// (Mattermost's `SendNotifications`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PostedDetails {
    pub sender_name: String,
    pub channel_display_name: String,
    /// Users the post mentions (each sees only their own id).
    pub mentions: Vec<String>,
    pub set_online: bool,
}

/// A line the plugin logged, or a note of an outbound call.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub level: String,
    pub message: String,
}

/// One outbound request the plugin made through egress.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundCall {
    pub method: String,
    pub url: String,
    /// The response status, when one came back.
    pub status: Option<u16>,
    /// Why no response came back (refused, timeout, …).
    pub error: Option<String>,
    pub elapsed_ms: u32,
}

pub struct Events {
    live: broadcast::Sender<Event>,
    kept: Mutex<VecDeque<Event>>,
    logs: Mutex<VecDeque<LogLine>>,
    outbound: Mutex<VecDeque<OutboundCall>>,
    /// Authenticated websocket connections per user: "online" for `@here`.
    online: Mutex<HashMap<String, usize>>,
    /// Users online on the other nodes of a cluster, per node.
    remote_online: Mutex<HashMap<String, RemotePresence>>,
    /// Set when the node is in a cluster (see [`Presence`]).
    presence: std::sync::OnceLock<Presence>,
    /// Websocket connections closed because they fell behind `live`.
    slow_closed: AtomicU64,
    /// Set once the server stops: websockets close with 1001 (going away).
    going_away: tokio::sync::watch::Sender<bool>,
    /// Websocket connections open now, so a stop can wait for their close.
    sockets: tokio::sync::watch::Sender<usize>,
    /// Set when the node is in a cluster: every emitted event also goes to
    /// the other nodes' sockets.
    forward: std::sync::OnceLock<Forward>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            live: broadcast::channel(LIVE_BUFFER).0,
            kept: Mutex::new(VecDeque::new()),
            logs: Mutex::new(VecDeque::new()),
            outbound: Mutex::new(VecDeque::new()),
            online: Mutex::new(HashMap::new()),
            remote_online: Mutex::new(HashMap::new()),
            presence: std::sync::OnceLock::new(),
            slow_closed: AtomicU64::new(0),
            going_away: tokio::sync::watch::channel(false).0,
            sockets: tokio::sync::watch::channel(0).0,
            forward: std::sync::OnceLock::new(),
        }
    }
}

fn push<T>(queue: &Mutex<VecDeque<T>>, item: T) {
    let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
    if q.len() == KEPT {
        q.pop_front();
    }
    q.push_back(item);
}

impl Events {
    fn emit(&self, event: Event) {
        if let Some(forward) = self.forward.get() {
            forward(&event);
        }
        self.deliver(event);
    }

    /// To this node's sockets and log, whichever node it came from.
    fn deliver(&self, event: Event) {
        push(&self.kept, event.clone());
        // No subscriber is fine: nobody is listening.
        let _ = self.live.send(event);
    }

    /// An event another node emitted, for this node's sockets: in the
    /// cluster's order, each connection numbering it with its own `seq`.
    pub fn deliver_remote(&self, event: Event) {
        self.deliver(event);
    }

    /// From now on every event emitted here is also handed to `forward`
    /// (set once, when the node joins its cluster).
    pub fn forward_to(&self, forward: Forward) {
        let _ = self.forward.set(forward);
    }

    /// `post` is the post as clients see it (see `App::post_for_client`).
    pub fn posted(&self, post: &Value, channel: &Channel, details: PostedDetails) {
        self.emit(Event {
            event: "posted".into(),
            data: json!({
                "channel_display_name": details.channel_display_name,
                "channel_name": channel.name,
                "channel_type": channel.channel_type.code(),
                "post": post.to_string(),
                "sender_name": details.sender_name,
                "set_online": details.set_online,
                "team_id": channel.team_id,
            }),
            channel_id: channel.id.clone(),
            mentions: details.mentions,
            ..Event::default()
        });
    }

    pub fn ephemeral(&self, user_id: &str, post: &Value, channel_id: &str) {
        self.emit(Event {
            event: "ephemeral_message".into(),
            data: json!({ "post": post.to_string() }),
            user_id: Some(user_id.to_string()),
            channel_id: channel_id.to_string(),
            ..Event::default()
        });
    }

    /// An event for one user's connections only (`open_dialog`).
    pub fn to_user(&self, user_id: &str, event: &str, data: Value) {
        self.emit(Event {
            event: event.into(),
            data,
            user_id: Some(user_id.to_string()),
            ..Event::default()
        });
    }

    pub fn edited(&self, post: &Value, channel: &Channel) {
        self.emit(Event {
            event: "post_edited".into(),
            data: json!({ "post": post.to_string() }),
            channel_id: channel.id.clone(),
            ..Event::default()
        });
    }

    pub fn deleted(&self, post: &Value, channel_id: &str, deleted_by: &str) {
        self.emit(Event {
            event: "post_deleted".into(),
            data: json!({ "post": post.to_string(), "delete_by": deleted_by }),
            channel_id: channel_id.to_string(),
            ..Event::default()
        });
    }

    /// `reaction_added` / `reaction_removed`, to the readers of the
    /// post's channel; `reaction` is the reaction's JSON.
    pub fn reaction(&self, added: bool, reaction: &Value, channel_id: &str) {
        let event = if added {
            "reaction_added"
        } else {
            "reaction_removed"
        };
        self.emit(Event {
            event: event.into(),
            data: json!({ "reaction": reaction.to_string() }),
            channel_id: channel_id.to_string(),
            ..Event::default()
        });
    }

    /// `channel_deleted` / `channel_restored`, to the channel's team.
    pub fn channel_archived(&self, channel: &Channel, archived: bool) {
        let (event, data) = if archived {
            (
                "channel_deleted",
                json!({"channel_id": channel.id, "delete_at": channel.delete_at}),
            )
        } else {
            ("channel_restored", json!({"channel_id": channel.id}))
        };
        self.emit(Event {
            event: event.into(),
            data,
            team_id: channel.team_id.clone(),
            ..Event::default()
        });
    }

    /// Counts one more live connection of `user`; the guard counts it out.
    pub fn online(self: &std::sync::Arc<Self>, user: &str) -> OnlineGuard {
        let first = {
            let mut online = self.online.lock().unwrap_or_else(|p| p.into_inner());
            let count = online.entry(user.to_string()).or_default();
            *count += 1;
            *count == 1
        };
        if first && let Some(presence) = self.presence.get() {
            presence(user, true);
        }
        OnlineGuard {
            events: self.clone(),
            user: user.to_string(),
        }
    }

    /// The server is stopping: every websocket closes with 1001.
    pub fn go_away(&self) {
        self.going_away.send_replace(true);
    }

    /// Resolves once the server stops (at once if it has).
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut going_away = self.going_away.subscribe();
        async move {
            let _ = going_away.wait_for(|gone| *gone).await;
        }
    }

    /// Counts an open websocket connection until the guard is dropped.
    pub fn socket_open(self: &std::sync::Arc<Self>) -> SocketGuard {
        self.sockets.send_modify(|n| *n += 1);
        SocketGuard(self.clone())
    }

    /// Resolves once no websocket connection is open.
    pub async fn sockets_closed(&self) {
        let _ = self.sockets.subscribe().wait_for(|n| *n == 0).await;
    }

    /// Whether `user` has a live websocket connection, to this node or (in
    /// a cluster) to another that was heard from lately.
    pub fn is_online(&self, user: &str) -> bool {
        let here = self
            .online
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .is_some_and(|n| *n > 0);
        here || self
            .remote_online
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .any(|node| node.heard.elapsed() < REMOTE_PRESENCE_TTL && node.users.contains(user))
    }

    /// The users with a live connection to this node.
    pub fn online_here(&self) -> Vec<String> {
        self.online
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// From now on a user's first connection here and their last one's
    /// close are handed to `presence` (set once, when the node joins).
    pub fn presence_to(&self, presence: Presence) {
        let _ = self.presence.set(presence);
    }

    /// What another node said: `user` came online or went offline there.
    pub fn remote_presence(&self, node: &str, user: &str, online: bool) {
        let mut remote = self.remote_online.lock().unwrap_or_else(|p| p.into_inner());
        let entry = remote
            .entry(node.to_string())
            .or_insert_with(|| RemotePresence {
                heard: std::time::Instant::now(),
                users: Default::default(),
            });
        if online {
            entry.users.insert(user.to_string());
        } else {
            entry.users.remove(user);
        }
    }

    /// Everyone online on another node, as it says every so often; heard at
    /// `heard`. Replaces what that node said before.
    pub fn remote_snapshot(&self, node: &str, users: Vec<String>, heard: std::time::Instant) {
        let mut remote = self.remote_online.lock().unwrap_or_else(|p| p.into_inner());
        remote.retain(|_, n| n.heard.elapsed() < REMOTE_PRESENCE_TTL);
        remote.insert(
            node.to_string(),
            RemotePresence {
                heard,
                users: users.into_iter().collect(),
            },
        );
    }

    /// Counts a websocket connection closed for falling more than
    /// [`LIVE_BUFFER`] events behind.
    pub fn count_slow_socket(&self) {
        self.slow_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// How many websocket connections were closed for falling behind.
    pub fn slow_sockets_closed(&self) -> u64 {
        self.slow_closed.load(Ordering::Relaxed)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }

    pub fn recent(&self) -> Vec<Event> {
        self.kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub fn log(&self, level: &str, message: &str) {
        match level {
            "error" => tracing::error!(target: "plugin", "{message}"),
            "warn" => tracing::warn!(target: "plugin", "{message}"),
            "info" => tracing::info!(target: "plugin", "{message}"),
            _ => tracing::debug!(target: "plugin", "{message}"),
        }
        push(
            &self.logs,
            LogLine {
                level: level.into(),
                message: message.into(),
            },
        );
    }

    pub fn logs(&self) -> Vec<LogLine> {
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub fn outbound(&self, call: OutboundCall) {
        // The origin only: paths and queries of integration URLs carry
        // secrets (Slack-style hook URLs, tokens in queries).
        tracing::debug!(target: "egress", "{} {}: {:?} {:?} in {} ms", call.method, origin(&call.url), call.status, call.error, call.elapsed_ms);
        push(&self.outbound, call);
    }

    pub fn outbound_calls(&self) -> Vec<OutboundCall> {
        self.outbound
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// `scheme://host:port` of `url`, for logs.
fn origin(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "(unparsable URL)".into())
}

/// One open websocket connection (`Events::socket_open`).
pub struct SocketGuard(std::sync::Arc<Events>);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.0.sockets.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// One live connection of a user; dropping it takes the user offline when it
/// was their last.
pub struct OnlineGuard {
    events: std::sync::Arc<Events>,
    user: String,
}

impl Drop for OnlineGuard {
    fn drop(&mut self) {
        let last = {
            let mut online = self.events.online.lock().unwrap_or_else(|p| p.into_inner());
            match online.get_mut(&self.user) {
                Some(n) => {
                    *n = n.saturating_sub(1);
                    let last = *n == 0;
                    if last {
                        online.remove(&self.user);
                    }
                    last
                }
                None => false,
            }
        };
        if last && let Some(presence) = self.events.presence.get() {
            presence(&self.user, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Another node's users count as online while it was heard from
    /// lately; a node silent past the TTL (it died) counts no more.
    #[test]
    fn users_online_on_another_node_count_while_it_is_heard_from() {
        let events = std::sync::Arc::new(Events::default());
        assert!(!events.is_online("u1"));
        events.remote_snapshot("n1", vec!["u1".into()], Instant::now());
        assert!(events.is_online("u1"));
        events.remote_presence("n1", "u2", true);
        events.remote_presence("n1", "u1", false);
        assert!(!events.is_online("u1"));
        assert!(events.is_online("u2"));
        let long_ago = Instant::now() - REMOTE_PRESENCE_TTL - Duration::from_secs(1);
        events.remote_snapshot("n1", vec!["u2".into()], long_ago);
        assert!(
            !events.is_online("u2"),
            "a silent node's users are not online"
        );
        // This node's own connections, and what it tells the others.
        let told = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = told.clone();
        events.presence_to(Box::new(move |user, online| {
            sink.lock().unwrap().push((user.to_string(), online));
        }));
        let first = events.online("u3");
        let second = events.online("u3");
        assert!(events.is_online("u3"));
        assert_eq!(events.online_here(), ["u3"]);
        drop(first);
        drop(second);
        assert!(!events.is_online("u3"));
        assert_eq!(
            *told.lock().unwrap(),
            [("u3".to_string(), true), ("u3".to_string(), false)]
        );
    }
}
