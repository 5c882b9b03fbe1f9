//! What happened on the server, in Mattermost's websocket event shape: sent to
//! live subscribers (the websocket) and kept in a bounded log for the harness.

use crate::store::{Channel, Post};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// How many recent events and log lines the harness can look back on.
const KEPT: usize = 10_000;

/// One event as clients see it: `{event, data, broadcast}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event: String,
    pub data: Value,
    /// Only this user receives it (ephemeral posts), when set.
    pub user_id: Option<String>,
    pub channel_id: String,
}

impl Event {
    pub fn to_json(&self, seq: u64) -> Value {
        json!({
            "event": self.event,
            "data": self.data,
            "broadcast": {
                "omit_users": null,
                "user_id": self.user_id.clone().unwrap_or_default(),
                "channel_id": self.channel_id,
                "team_id": "",
            },
            "seq": seq,
        })
    }
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
}

impl Default for Events {
    fn default() -> Self {
        Events {
            live: broadcast::channel(1024).0,
            kept: Mutex::new(VecDeque::new()),
            logs: Mutex::new(VecDeque::new()),
            outbound: Mutex::new(VecDeque::new()),
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
        push(&self.kept, event.clone());
        // No subscriber is fine: nobody is listening.
        let _ = self.live.send(event);
    }

    pub fn posted(&self, post: &Post, channel: &Channel) {
        self.emit(Event {
            event: "posted".into(),
            data: json!({
                "post": post.to_json().to_string(),
                "channel_type": channel.channel_type.code(),
                "channel_name": channel.name,
                "channel_display_name": channel.display_name,
                "team_id": channel.team_id,
            }),
            user_id: None,
            channel_id: channel.id.clone(),
        });
    }

    pub fn ephemeral(&self, user_id: &str, post: &Post) {
        self.emit(Event {
            event: "ephemeral_message".into(),
            data: json!({ "post": post.to_json().to_string() }),
            user_id: Some(user_id.to_string()),
            channel_id: post.channel_id.clone(),
        });
    }

    pub fn edited(&self, post: &Post, channel: &Channel) {
        self.emit(Event {
            event: "post_edited".into(),
            data: json!({ "post": post.to_json().to_string() }),
            user_id: None,
            channel_id: channel.id.clone(),
        });
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
        tracing::debug!(target: "egress", "{} {}: {:?} {:?} in {} ms", call.method, call.url, call.status, call.error, call.elapsed_ms);
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
