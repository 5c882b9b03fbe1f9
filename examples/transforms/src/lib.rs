//! An example transform: Uptime Kuma's webhook notifications as Mattermost posts.
//!
//! Uptime Kuma (a self-hosted uptime monitor) can notify a "Webhook" with a
//! JSON body like `samples/down.json`: a `heartbeat` (its `status` is 0 down,
//! 1 up, 2 pending, 3 maintenance), the `monitor` it is about, and a one-line
//! `msg`. Pointed at a Switchboard incoming hook whose transform is this
//! component, each notification becomes:
//!
//! - down: a red attachment "Billing API is down" linking to the monitored
//!   URL, with the error and when it happened;
//! - up: a green attachment "Billing API is up" with the response time;
//! - pending and maintenance: nothing (the request is dropped: Uptime Kuma
//!   says "pending" while it retries, and a down or up follows);
//! - the "Test" button's notification (no heartbeat): its `msg` as text.
//!
//! A body that is not Uptime Kuma's JSON is refused: the sender gets a 422
//! saying why, and nothing is posted.
//!
//! The contract is `wit/transform/` (the `transformer` world): one exported
//! function from a request (method, path, query, headers, body) to
//! `ok(some(payload))`, `ok(none)` (drop) or `err(message)` (refuse). The
//! payload is the JSON an incoming-webhook sender would post; the server
//! checks it exactly as it checks a sender's, so a transform can do no more
//! than a sender could. The component runs with nothing granted: no files,
//! environment, network or clock beyond WASI's, a memory cap and a deadline.

// wit-bindgen reads the WIT files at compile time and writes the Rust types
// (`Request`), the `Guest` trait to implement and the export glue. In a crate
// of your own, copy `wit/transform/` into it and point `path` at the copy.
mod bindings {
    // The generated export glue takes the request record's fields flattened.
    #![allow(clippy::too_many_arguments)]
    wit_bindgen::generate!({
        world: "transformer",
        path: "../../wit/transform",
    });
}

use bindings::{Guest, Request};
use serde_json::{Map, Value, json};

/// Uptime Kuma's heartbeat statuses.
const DOWN: i64 = 0;
const UP: i64 = 1;
const PENDING: i64 = 2;
const MAINTENANCE: i64 = 3;

/// Mattermost's attachment colours for bad and good news.
const RED: &str = "#d24b4e";
const GREEN: &str = "#3db887";

struct UptimeKuma;

impl Guest for UptimeKuma {
    fn transform(request: Request) -> Result<Option<String>, String> {
        // Everything but the body is ignored here; a transform may also look
        // at `request.headers` (lower-case names), `request.query`, ….
        let payload = shape(&request.body)?;
        // `Value`'s `Display` writes JSON text; the host parses it back and
        // checks it as any incoming payload.
        Ok(payload.map(|p| p.to_string()))
    }
}

// Registers `UptimeKuma` as the component's `transform` export.
bindings::export!(UptimeKuma with_types_in bindings);

/// The post for one notification, `None` to drop it, or why it is refused.
/// Plain Rust, so it is unit-tested natively below.
fn shape(body: &[u8]) -> Result<Option<Value>, String> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the body is not JSON ({e}); is this Uptime Kuma?"))?;
    let Some(notification) = body.as_object() else {
        return Err("the body is not a JSON object; is this Uptime Kuma?".into());
    };
    let msg = text(notification.get("msg"));
    let heartbeat = match notification.get("heartbeat") {
        Some(Value::Object(heartbeat)) => heartbeat,
        // The "Test" button sends no heartbeat: show its message as it is.
        Some(Value::Null) | None if !msg.is_empty() => {
            return Ok(Some(json!({"username": "Uptime Kuma", "text": msg})));
        }
        _ => return Err("no `heartbeat` and no `msg`: not an Uptime Kuma notification".into()),
    };
    let monitor = notification
        .get("monitor")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let name = match text(monitor.get("name")) {
        name if name.is_empty() => "A monitor".to_string(),
        name => name,
    };
    let status = heartbeat.get("status").and_then(Value::as_i64);
    let (title, color, mut fields) = match status {
        Some(DOWN) => (
            format!(":red_circle: {name} is down"),
            RED,
            vec![field("Error", text(heartbeat.get("msg")), false)],
        ),
        Some(UP) => {
            let ping = match heartbeat.get("ping").and_then(Value::as_f64) {
                Some(ms) => format!("{ms} ms"),
                None => String::new(),
            };
            (
                format!(":large_green_circle: {name} is up"),
                GREEN,
                vec![field("Response time", ping, true)],
            )
        }
        // Not news: a down or an up follows.
        Some(PENDING) | Some(MAINTENANCE) => return Ok(None),
        _ => {
            return Err(format!(
                "unknown heartbeat status {:?}",
                heartbeat.get("status")
            ));
        }
    };
    fields.push(field("Monitor type", text(monitor.get("type")), true));
    // Uptime Kuma sends both the server's UTC time and the local time with
    // its zone; the local one reads better in a channel.
    let when = match (
        text(heartbeat.get("localDateTime")),
        text(heartbeat.get("timezone")),
    ) {
        (local, zone) if !local.is_empty() => format!("{local} ({zone})"),
        _ => text(heartbeat.get("time")),
    };
    fields.push(field("When", when, true));
    // Fields with nothing to say are left out rather than shown empty.
    fields.retain(|f| f["value"].as_str().is_some_and(|v| !v.is_empty()));

    let mut attachment = Map::new();
    attachment.insert("fallback".into(), json!(msg.clone()));
    attachment.insert("color".into(), json!(color));
    attachment.insert("title".into(), json!(title));
    let url = text(monitor.get("url"));
    // Only web monitors have a URL worth linking ("https://" for a ping
    // monitor's empty one is a placeholder).
    if url.starts_with("http://") || url.starts_with("https://") {
        attachment.insert("title_link".into(), json!(url));
    }
    attachment.insert("fields".into(), Value::Array(fields));
    Ok(Some(json!({
        "username": "Uptime Kuma",
        "attachments": [attachment],
    })))
}

/// A member as text: strings as they are, numbers written out, else empty.
fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn field(title: &str, value: String, short: bool) -> Value {
    json!({"title": title, "value": value, "short": short})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Vec<u8> {
        let path = format!("{}/samples/{name}.json", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn a_monitor_going_down_is_a_red_attachment_with_the_error() {
        let post = shape(&sample("down")).unwrap().unwrap();
        let attachment = &post["attachments"][0];
        assert_eq!(attachment["color"], RED);
        assert_eq!(attachment["title"], ":red_circle: Billing API is down");
        assert_eq!(
            attachment["title_link"],
            "https://billing.example.com/health"
        );
        assert_eq!(
            attachment["fields"][0]["value"],
            "connect ECONNREFUSED 10.0.4.12:443"
        );
        assert_eq!(
            attachment["fields"][2]["value"],
            "2026-12-07 21:31:05 (Europe/Paris)"
        );
    }

    #[test]
    fn a_monitor_coming_back_is_green_with_its_response_time() {
        let post = shape(&sample("up")).unwrap().unwrap();
        let attachment = &post["attachments"][0];
        assert_eq!(attachment["color"], GREEN);
        assert_eq!(
            attachment["fields"][0],
            field("Response time", "48 ms".into(), true)
        );
    }

    #[test]
    fn pending_and_maintenance_are_dropped_and_the_test_button_is_text() {
        assert_eq!(shape(&sample("pending")).unwrap(), None);
        let maintenance = br#"{"heartbeat": {"status": 3}, "monitor": {"name": "x"}, "msg": "m"}"#;
        assert_eq!(shape(maintenance).unwrap(), None);
        let test = shape(&sample("test")).unwrap().unwrap();
        assert_eq!(test["text"], "Billing alerts Testing");
    }

    #[test]
    fn what_is_not_uptime_kuma_is_refused_saying_why() {
        assert!(shape(b"status=down").unwrap_err().contains("not JSON"));
        assert!(shape(b"[1]").unwrap_err().contains("not a JSON object"));
        assert!(
            shape(br#"{"heartbeat": {"status": 9}}"#)
                .unwrap_err()
                .contains("status")
        );
    }

    #[test]
    fn a_senders_text_stays_text() {
        // A monitor name with JSON in it is just a name.
        let body = br#"{"heartbeat": {"status": 0}, "monitor": {"name": "x\", \"channel\": \"town-square"}}"#;
        let post = shape(body).unwrap().unwrap();
        assert!(post.get("channel").is_none());
        assert!(
            post["attachments"][0]["title"]
                .as_str()
                .unwrap()
                .contains("\"channel\"")
        );
    }
}
