//! Prometheus Alertmanager's webhook receiver (payload version 4): one request per alert
//! group, firing or resolved, with several alerts. The event is the group's `status`; the
//! secret is checked against the `Authorization` header (`http_config`: bearer or basic).

use super::text::{neutralize, or, plain, url_part};
use super::{Inbound, Message, Source, authorization_matches, str_at};
use crate::slack::attachment::{Attachment, AttachmentField};
use serde_json::{Map, Value};

pub const SOURCE: Source = Source {
    name: "alertmanager",
    display_name: "Prometheus Alertmanager",
    username: "Alertmanager",
    icon_url: "",
    required_header: None,
    signature_header: "Authorization",
    events: &["firing", "resolved"],
    event: |inbound| str_at(inbound.json, "/status").to_owned(),
    verify: |inbound, secret| authorization_matches(secret, inbound.header("Authorization")),
    render,
    recognizes: |inbound| {
        inbound.json.get("groupKey").is_some() && inbound.json.get("alerts").is_some()
    },
};

const FIRING: &str = "#D0021B";
const RESOLVED: &str = "#2EB67D";
/// Alerts shown as attachments; the rest are counted.
const ALERTS_SHOWN: usize = 10;
const TEXT_CHARS: usize = 500;
/// Labels that say which alert it is or who it is for, shown first, in this order.
const KEY_LABELS: &[&str] = &["severity", "instance", "job", "namespace", "service"];
const FIELDS_SHOWN: usize = 6;

/// Also Grafana's (`grafana`), whose payload extends this one.
pub(super) fn render(event: &str, inbound: &Inbound) -> Option<Message> {
    let json = inbound.json;
    let (icon, state) = match event {
        "firing" => (":fire:", "Firing"),
        "resolved" => (":white_check_mark:", "Resolved"),
        _ => return None,
    };
    let alerts: &[Value] = json
        .get("alerts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let group = labels_text(json.get("groupLabels"));
    let group = if group.is_empty() {
        "alerts".to_owned()
    } else {
        group
    };
    let truncated = json
        .get("truncatedAlerts")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let total = alerts.len() as u64 + truncated;
    let count = if total == 1 {
        "1 alert".to_owned()
    } else {
        format!("{total} alerts")
    };
    let mut text = format!(
        "{icon} **{state}: {}** ({count}, receiver {})",
        plain(&group),
        super::text::code(str_at(json, "/receiver"))
    );
    let hidden = total.saturating_sub(ALERTS_SHOWN.min(alerts.len()) as u64);
    if hidden > 0 {
        text.push_str(&format!("\n…and {hidden} more alerts not shown."));
    }
    let external = str_at(json, "/externalURL").trim_end_matches('/');
    let attachments = alerts
        .iter()
        .take(ALERTS_SHOWN)
        .map(|alert| attachment(alert, external))
        .collect();
    Some(Message {
        text,
        attachments,
        thread: Some(format!("group/{}", str_at(json, "/groupKey"))),
    })
}

fn attachment(alert: &Value, external: &str) -> Attachment {
    let status = str_at(alert, "/status");
    let labels = alert.get("labels").and_then(Value::as_object);
    let label = |name: &str| {
        labels
            .and_then(|l| l.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let annotation = |name: &str| str_at(alert, &format!("/annotations/{name}"));
    let title = if label("alertname").is_empty() {
        "Alert".to_owned()
    } else {
        label("alertname").to_owned()
    };
    let summary = [annotation("summary"), annotation("description")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let mut text: String = summary.chars().take(TEXT_CHARS).collect();
    if text.len() < summary.len() {
        text.push_str(super::text::TRIMMED);
    }
    let mut text = neutralize(&text);
    // Grafana names its links on the alert itself (`dashboardURL`, `panelURL`, `silenceURL`).
    let mut links = Vec::new();
    let dashboard = or(str_at(alert, "/dashboardURL"), annotation("dashboard_url"));
    for (label_text, url) in [
        ("Runbook", annotation("runbook_url")),
        ("Dashboard", dashboard),
        ("Panel", str_at(alert, "/panelURL")),
    ] {
        if !url.is_empty() {
            links.push(format!("[{label_text}]({})", url_part(url)));
        }
    }
    let silence = str_at(alert, "/silenceURL");
    if status == "firing" && !silence.is_empty() {
        links.push(format!("[Silence]({})", url_part(silence)));
    } else if status == "firing" && !external.is_empty() {
        links.push(format!("[Silence]({})", silence_url(external, labels)));
    }
    if !links.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&links.join(" · "));
    }
    let mut fields: Vec<AttachmentField> = Vec::new();
    let mut names: Vec<&str> = KEY_LABELS
        .iter()
        .copied()
        .filter(|n| !label(n).is_empty())
        .collect();
    if let Some(labels) = labels {
        names.extend(
            labels
                .keys()
                .map(String::as_str)
                .filter(|n| *n != "alertname" && !KEY_LABELS.contains(n)),
        );
    }
    for name in names.into_iter().take(FIELDS_SHOWN) {
        fields.push(AttachmentField {
            title: neutralize(name),
            value: Value::String(neutralize(label(name))),
            short: true,
        });
    }
    let (color, footer) = if status == "resolved" {
        (RESOLVED, format!("Resolved {}", str_at(alert, "/endsAt")))
    } else {
        (
            FIRING,
            format!("Firing since {}", str_at(alert, "/startsAt")),
        )
    };
    Attachment {
        fallback: format!("[{}] {}", status.to_uppercase(), neutralize(&title)),
        color: color.to_owned(),
        title: neutralize(&title),
        title_link: url_part(str_at(alert, "/generatorURL")),
        text,
        fields,
        footer: neutralize(&footer),
        ..Attachment::default()
    }
}

/// Alertmanager's new-silence page with the alert's labels as its matchers.
fn silence_url(external: &str, labels: Option<&Map<String, Value>>) -> String {
    let matchers: Vec<String> = labels
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            v.as_str()
                .map(|v| format!("{k}=\"{}\"", v.replace('"', "\\\"")))
        })
        .collect();
    let filter = format!("{{{}}}", matchers.join(","));
    let encoded: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
    format!("{external}/#/silences/new?filter={encoded}")
}

/// `a, b` from a label set's values, in key order.
fn labels_text(labels: Option<&Value>) -> String {
    labels
        .and_then(Value::as_object)
        .map(|l| {
            l.values()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
