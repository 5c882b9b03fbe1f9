//! Sentry's integration webhooks (an internal integration's webhook URL). The event is the
//! `Sentry-Hook-Resource` header plus the body's `action` (`issue.created`,
//! `metric_alert.critical`); the integration's client secret signs the raw body as
//! `Sentry-Hook-Signature: <hex HMAC-SHA256>`.

use super::text::{code, link, neutralize, or, plain};
use super::{Inbound, Message, Source, hmac_hex_matches, str_at};
use crate::slack::attachment::Attachment;

pub const SOURCE: Source = Source {
    name: "sentry",
    display_name: "Sentry",
    username: "Sentry",
    icon_url: "",
    required_header: Some("Sentry-Hook-Resource"),
    signature_header: "Sentry-Hook-Signature",
    events: &[
        "issue.created",
        "issue.resolved",
        "issue.assigned",
        "event_alert.triggered",
        "metric_alert.critical",
        "metric_alert.warning",
        "metric_alert.resolved",
    ],
    event: |inbound| {
        let resource = inbound.header("Sentry-Hook-Resource").unwrap_or("").trim();
        let action = str_at(inbound.json, "/action");
        if action.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}.{action}")
        }
    },
    verify: |inbound, secret| {
        hmac_hex_matches(
            secret,
            inbound.body,
            inbound.header("Sentry-Hook-Signature"),
            "",
        )
    },
    render,
    recognizes: |inbound| inbound.header("Sentry-Hook-Resource").is_some(),
};

const CRITICAL: &str = "#D0021B";
const WARNING: &str = "#F5A623";
const RESOLVED: &str = "#2EB67D";
const DESCRIPTION_CHARS: usize = 500;

fn render(event: &str, inbound: &Inbound) -> Option<Message> {
    let json = inbound.json;
    // A person, or Sentry itself when a rule or the system acted.
    let actor = match str_at(json, "/actor/type") {
        "user" if !str_at(json, "/actor/name").is_empty() => {
            format!("**{}**", plain(str_at(json, "/actor/name")))
        }
        _ => "Sentry".to_owned(),
    };
    match event {
        "issue.created" | "issue.resolved" | "issue.assigned" => {
            let issue = json.pointer("/data/issue")?;
            let id = str_at(issue, "/id");
            let label = format!("{} {}", str_at(issue, "/shortId"), str_at(issue, "/title"));
            let linked = link(label.trim(), str_at(issue, "/web_url"));
            let text = match event {
                "issue.created" => {
                    let mut text = format!(
                        ":warning: New {} issue in {}: {linked}",
                        plain(or(str_at(issue, "/level"), "error")),
                        code(or(
                            str_at(issue, "/project/slug"),
                            str_at(issue, "/project/name")
                        )),
                    );
                    let culprit = str_at(issue, "/culprit");
                    if !culprit.is_empty() {
                        text.push('\n');
                        text.push_str(&code(culprit));
                    }
                    text
                }
                "issue.resolved" => format!(":white_check_mark: {actor} resolved {linked}"),
                _ => {
                    let assignee = str_at(issue, "/assignedTo/name");
                    let to = match str_at(issue, "/assignedTo/type") {
                        "team" => format!("team **{}**", plain(assignee)),
                        _ if assignee.is_empty() => "someone".to_owned(),
                        _ => format!("**{}**", plain(assignee)),
                    };
                    format!("{actor} assigned {linked} to {to}")
                }
            };
            Some(Message {
                text,
                thread: Some(format!("issue/{id}")),
                ..Message::default()
            })
        }
        "event_alert.triggered" => {
            let event = json.pointer("/data/event")?;
            let rule = str_at(json, "/data/triggered_rule");
            let title = link(str_at(event, "/title"), str_at(event, "/web_url"));
            let mut text = format!(
                ":bell: Alert rule **{}** triggered: {title}",
                plain(or(rule, "(unnamed)"))
            );
            let details: Vec<String> = [
                ("culprit", str_at(event, "/culprit"), true),
                ("level", str_at(event, "/level"), false),
                ("environment", str_at(event, "/environment"), false),
            ]
            .into_iter()
            .filter(|(_, value, _)| !value.is_empty())
            .map(|(name, value, as_code)| {
                if as_code {
                    code(value)
                } else {
                    format!("{name} **{}**", plain(value))
                }
            })
            .collect();
            if !details.is_empty() {
                text.push('\n');
                text.push_str(&details.join(" · "));
            }
            let issue_id = str_at(event, "/issue_id");
            Some(Message {
                text,
                thread: (!issue_id.is_empty()).then(|| format!("issue/{issue_id}")),
                ..Message::default()
            })
        }
        "metric_alert.critical" | "metric_alert.warning" | "metric_alert.resolved" => {
            let data = json.get("data")?;
            let (icon, state, color) = match event {
                "metric_alert.critical" => (":red_circle:", "critical", CRITICAL),
                "metric_alert.warning" => (":large_orange_circle:", "warning", WARNING),
                _ => (":white_check_mark:", "resolved", RESOLVED),
            };
            let rule = or(
                str_at(data, "/metric_alert/alert_rule/name"),
                str_at(data, "/metric_alert/title"),
            );
            let rule_id = str_at(data, "/metric_alert/alert_rule/id");
            let title = or(str_at(data, "/description_title"), rule);
            let description = str_at(data, "/description_text");
            let mut shown: String = description.chars().take(DESCRIPTION_CHARS).collect();
            if shown.len() < description.len() {
                shown.push_str(super::text::TRIMMED);
            }
            let attachment = Attachment {
                fallback: neutralize(title),
                color: color.to_owned(),
                title: neutralize(title),
                title_link: super::text::url_part(str_at(data, "/web_url")),
                text: neutralize(&shown),
                ..Attachment::default()
            };
            Some(Message {
                text: format!("{icon} Metric alert **{}**: {state}", plain(rule)),
                attachments: vec![attachment],
                thread: (!rule_id.is_empty()).then(|| format!("metric_alert/{rule_id}")),
            })
        }
        _ => None,
    }
}
