//! Jira Cloud's webhooks (system webhooks and those an app registers). The event is the
//! body's `webhookEvent` (`jira:issue_created`, `comment_created`, `worklog_created`); with a
//! secret, Jira signs the raw body as `X-Hub-Signature: sha256=<hex HMAC-SHA256>`. Jira
//! sends no header that names the event, so a request is recognized by its body.

use super::text::{link, or, plain, with_body};
use super::{Inbound, Message, Source, hmac_hex_matches, str_at};
use serde_json::Value;

pub const SOURCE: Source = Source {
    name: "jira",
    display_name: "Jira Cloud",
    username: "Jira",
    icon_url: "",
    required_header: None,
    signature_header: "X-Hub-Signature",
    events: &[
        "jira:issue_created",
        "jira:issue_updated",
        "jira:issue_deleted",
        "comment_created",
        "worklog_created",
    ],
    event: |inbound| str_at(inbound.json, "/webhookEvent").to_owned(),
    verify: |inbound, secret| {
        hmac_hex_matches(
            secret,
            inbound.body,
            inbound.header("X-Hub-Signature"),
            "sha256=",
        )
    },
    render,
    recognizes: |inbound| !str_at(inbound.json, "/webhookEvent").is_empty(),
};

/// Changed fields listed for an update; the rest are counted.
const CHANGES_LISTED: usize = 5;
/// A changed field's old and new value are cut at this many characters.
const VALUE_CHARS: usize = 80;

fn render(event: &str, inbound: &Inbound) -> Option<Message> {
    let json = inbound.json;
    let user = plain(or(
        str_at(json, "/user/displayName"),
        str_at(json, "/user/name"),
    ));
    let site = site(json);
    match event {
        "jira:issue_created" => {
            let (issue, thread) = issue(json, &site)?;
            let mut text = format!("{user} created {} {issue}", kind(json));
            let details = details(json);
            if !details.is_empty() {
                text.push('\n');
                text.push_str(&details);
            }
            Some(threaded(
                with_body(text, str_at(json, "/issue/fields/description")),
                thread,
            ))
        }
        "jira:issue_updated" => {
            let (issue, thread) = issue(json, &site)?;
            // Jira also sends an update with no changed field for a comment or a worklog,
            // which their own events post.
            let items: Vec<&Value> = json
                .pointer("/changelog/items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .collect();
            if items.is_empty() {
                return None;
            }
            let mut text = format!("{user} updated {} {issue}", kind(json));
            for item in items.iter().take(CHANGES_LISTED) {
                text.push_str("\n- ");
                text.push_str(&change(item));
            }
            if items.len() > CHANGES_LISTED {
                text.push_str(&format!("\n- and {} more", items.len() - CHANGES_LISTED));
            }
            Some(threaded(text, thread))
        }
        "jira:issue_deleted" => {
            let key = str_at(json, "/issue/key");
            let summary = str_at(json, "/issue/fields/summary");
            let (_, thread) = issue(json, &site)?;
            Some(threaded(
                format!(
                    "{user} deleted {} {}",
                    kind(json),
                    plain(&format!("{key} {summary}"))
                ),
                thread,
            ))
        }
        "comment_created" => {
            let (issue, thread) = issue(json, &site)?;
            let author = plain(or(
                str_at(json, "/comment/author/displayName"),
                str_at(json, "/user/displayName"),
            ));
            let key = str_at(json, "/issue/key");
            let comment_id = str_at(json, "/comment/id");
            let url = if site.is_empty() || key.is_empty() {
                String::new()
            } else {
                format!("{site}/browse/{key}?focusedCommentId={comment_id}")
            };
            Some(threaded(
                with_body(
                    format!("{author} {} on {issue}", link("commented", &url)),
                    str_at(json, "/comment/body"),
                ),
                thread,
            ))
        }
        "worklog_created" => {
            let worklog = json.get("worklog")?;
            let author = plain(or(
                str_at(worklog, "/author/displayName"),
                str_at(worklog, "/updateAuthor/displayName"),
            ));
            let spent = str_at(worklog, "/timeSpent");
            let issue_id = or(str_at(worklog, "/issueId"), str_at(json, "/issue/id"));
            let on = match issue(json, &site) {
                Some((issue, _)) => issue,
                None => format!("issue {}", plain(issue_id)),
            };
            let text = format!("{author} logged **{}** of work on {on}", plain(spent));
            let site_key = if site.is_empty() {
                site_of(str_at(worklog, "/self"))
            } else {
                site.clone()
            };
            Some(threaded(
                with_body(text, str_at(worklog, "/comment")),
                thread_key(&site_key, issue_id),
            ))
        }
        _ => None,
    }
}

/// `[ED-1 Summary](…/browse/ED-1)` and the issue's thread. Threads go by the issue's id,
/// not its key: a worklog names only the id, and a moved issue keeps it.
fn issue(json: &Value, site: &str) -> Option<(String, String)> {
    let key = str_at(json, "/issue/key");
    let id = str_at(json, "/issue/id");
    if key.is_empty() && id.is_empty() {
        return None;
    }
    let summary = str_at(json, "/issue/fields/summary");
    let url = if site.is_empty() || key.is_empty() {
        String::new()
    } else {
        format!("{site}/browse/{key}")
    };
    let label = if summary.is_empty() {
        key.to_owned()
    } else {
        format!("{key} {summary}")
    };
    Some((link(&label, &url), thread_key(site, or(id, key))))
}

fn thread_key(site: &str, id: &str) -> String {
    let host = site.split("://").nth(1).unwrap_or(site);
    format!("issue/{host}/{id}")
}

/// The site's base URL from the issue's REST address (`https://x.atlassian.net/rest/…`).
fn site(json: &Value) -> String {
    let rest = or(str_at(json, "/issue/self"), str_at(json, "/comment/self"));
    site_of(rest)
}

fn site_of(rest: &str) -> String {
    rest.split_once("/rest/")
        .map(|(base, _)| base.to_owned())
        .unwrap_or_default()
}

/// `bug`, `story`: the issue type in lower case, or `issue`.
fn kind(json: &Value) -> String {
    let name = str_at(json, "/issue/fields/issuetype/name");
    if name.is_empty() {
        "issue".to_owned()
    } else {
        plain(&name.to_lowercase())
    }
}

/// `Status: To Do · Priority: High · Assignee: Ana Lima` from what the issue has.
fn details(json: &Value) -> String {
    [
        ("Status", "/issue/fields/status/name"),
        ("Priority", "/issue/fields/priority/name"),
        ("Assignee", "/issue/fields/assignee/displayName"),
    ]
    .into_iter()
    .filter_map(|(label, at)| {
        let value = str_at(json, at);
        (!value.is_empty()).then(|| format!("{label}: **{}**", plain(value)))
    })
    .collect::<Vec<_>>()
    .join(" · ")
}

/// One changelog item: `**status**: To Do → In Progress`.
fn change(item: &Value) -> String {
    let field = plain(str_at(item, "/field"));
    let value = |at: &str| {
        let full = str_at(item, at);
        let mut cut: String = full.chars().take(VALUE_CHARS).collect();
        if cut.len() < full.len() {
            cut.push('…');
        }
        plain(&cut)
    };
    let (from, to) = (value("/fromString"), value("/toString"));
    match (from.is_empty(), to.is_empty()) {
        (true, true) => format!("**{field}** changed"),
        (true, false) => format!("**{field}** set to {to}"),
        (false, true) => format!("**{field}** cleared (was {from})"),
        (false, false) => format!("**{field}**: {from} → {to}"),
    }
}

fn threaded(text: String, thread: String) -> Message {
    Message {
        text,
        thread: Some(thread),
        ..Message::default()
    }
}
