//! PagerDuty's v3 webhook subscriptions. The event is the body's `event.event_type`
//! (`incident.triggered`); with a secret, PagerDuty signs the raw body as
//! `X-PagerDuty-Signature: v1=<hex HMAC-SHA256>`, several comma-separated while a secret is
//! being rotated, any one of which may match.

use super::text::{link, neutralize, plain, quoted};
use super::{Inbound, Message, Source, hmac_hex_matches, str_at};
use crate::slack::attachment::{Attachment, AttachmentField};
use serde_json::Value;

pub const SOURCE: Source = Source {
    name: "pagerduty",
    display_name: "PagerDuty",
    username: "PagerDuty",
    icon_url: "",
    required_header: None,
    signature_header: "X-PagerDuty-Signature",
    events: &[
        "incident.triggered",
        "incident.acknowledged",
        "incident.resolved",
        "incident.escalated",
        "incident.reassigned",
        "incident.annotated",
    ],
    event: |inbound| str_at(inbound.json, "/event/event_type").to_owned(),
    verify: |inbound, secret| {
        inbound
            .header("X-PagerDuty-Signature")
            .into_iter()
            .flat_map(|sent| sent.split(','))
            .any(|one| hmac_hex_matches(secret, inbound.body, Some(one), "v1="))
    },
    render,
    recognizes: |inbound| !str_at(inbound.json, "/event/event_type").is_empty(),
};

const TRIGGERED: &str = "#D0021B";
const ACKNOWLEDGED: &str = "#F5A623";
const RESOLVED: &str = "#2EB67D";
const NOTE_CHARS: usize = 500;

fn render(event: &str, inbound: &Inbound) -> Option<Message> {
    let json = inbound.json;
    let data = json.pointer("/event/data")?;
    // Who did it, when a person did (a service or an integration is named elsewhere).
    let agent = {
        let name = str_at(json, "/event/agent/summary");
        if name.is_empty() || str_at(json, "/event/agent/type") != "user_reference" {
            String::new()
        } else {
            link(name, str_at(json, "/event/agent/html_url"))
        }
    };
    let by = |verb: &str| {
        if agent.is_empty() {
            format!("**{verb}:**")
        } else {
            format!("**{verb}** by {agent}:")
        }
    };
    if event == "incident.annotated" {
        let incident = data.get("incident")?;
        let id = str_at(incident, "/id");
        let title = link(str_at(incident, "/summary"), str_at(incident, "/html_url"));
        let head = if agent.is_empty() {
            format!(":memo: Note added to {title}")
        } else {
            format!(":memo: {agent} added a note to {title}")
        };
        let quote = quoted(str_at(data, "/content"), NOTE_CHARS);
        let text = if quote.is_empty() {
            head
        } else {
            format!("{head}\n{quote}")
        };
        return Some(Message {
            text,
            thread: Some(format!("incident/{id}")),
            ..Message::default()
        });
    }
    let (icon, state, color) = match event {
        "incident.triggered" => (":rotating_light:", by("Triggered"), TRIGGERED),
        "incident.acknowledged" => (":eyes:", by("Acknowledged"), ACKNOWLEDGED),
        "incident.resolved" => (":white_check_mark:", by("Resolved"), RESOLVED),
        "incident.escalated" => (":arrow_double_up:", by("Escalated"), TRIGGERED),
        "incident.reassigned" => (":busts_in_silhouette:", by("Reassigned"), ACKNOWLEDGED),
        _ => return None,
    };
    let id = str_at(data, "/id");
    let number = data.get("number").and_then(Value::as_u64);
    let title = str_at(data, "/title");
    let label = match number {
        Some(n) => format!("#{n} {title}"),
        None => title.to_owned(),
    };
    let incident = link(&label, str_at(data, "/html_url"));
    let mut text = format!("{icon} {state} {incident}");
    let service = str_at(data, "/service/summary");
    if !service.is_empty() {
        text.push_str(&format!(
            " on {}",
            link(service, str_at(data, "/service/html_url"))
        ));
    }
    let assignees: Vec<String> = data
        .get("assignees")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| link(str_at(a, "/summary"), str_at(a, "/html_url")))
        .collect();
    let mut fields = Vec::new();
    let mut field = |title: &str, value: String| {
        if !value.is_empty() {
            fields.push(AttachmentField {
                title: title.to_owned(),
                value: Value::String(value),
                short: true,
            });
        }
    };
    field("Urgency", plain(str_at(data, "/urgency")));
    field("Priority", plain(str_at(data, "/priority/summary")));
    field("Assigned to", assignees.join(", "));
    field(
        "Escalation policy",
        plain(str_at(data, "/escalation_policy/summary")),
    );
    let status = str_at(data, "/status");
    let attachment = Attachment {
        fallback: format!("[{}] {}", status.to_uppercase(), neutralize(title)),
        color: color.to_owned(),
        fields,
        footer: plain(&format!("Incident {id}")),
        ..Attachment::default()
    };
    Some(Message {
        text,
        attachments: vec![attachment],
        thread: Some(format!("incident/{id}")),
    })
}
