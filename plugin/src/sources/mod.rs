//! Built-in sources (our extension, issue 24): senders whose own webhook payloads a hook
//! accepts at `POST /hooks/{id}/{source}`, with no translation layer in between.
//!
//! Every sender is one file with the same shape, a [`Source`]: how its events are named,
//! how it signs a request, and a table from events to posts. Adding a sender is copying one
//! of these files, adding it to [`SOURCES`], and writing a fixture per listed event under
//! `fixtures/<source>/`. Delivery (hook, channel, limits, threads) is `incoming::from_source`.

pub mod alertmanager;
pub mod azure_devops;
pub mod bitbucket;
pub mod gitea;
pub mod github;
pub mod gitlab;
pub mod grafana;
pub mod jira;
pub mod json;
pub mod pagerduty;
pub mod sentry;
pub mod text;

use crate::slack::attachment::Attachment;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

/// What a source sees of one request: the sender's headers, raw body and decoded JSON.
pub struct Inbound<'a> {
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub json: &'a Value,
}

impl Inbound<'_> {
    /// First header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a source makes of one event: the post, and the thing it is about.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    /// Markdown; sender-provided parts already escaped and neutralized (`text`).
    pub text: String,
    pub attachments: Vec<Attachment>,
    /// The thing the event is about (`pr/owner/repo#12`), whose first post later events
    /// about it reply to; `None` for events that stand alone.
    pub thread: Option<String>,
}

/// A post about an event that stands alone.
fn standalone(text: String) -> Option<Message> {
    Some(Message {
        text,
        ..Message::default()
    })
}

/// A post about `thread`: the first starts its thread, later ones reply in it.
fn threaded(text: String, thread: String) -> Option<Message> {
    Some(Message {
        text,
        thread: Some(thread),
        ..Message::default()
    })
}

/// One sender. Plain data and functions, so the registry is a constant table.
pub struct Source {
    /// The URL segment: `/hooks/{id}/github`.
    pub name: &'static str,
    pub display_name: &'static str,
    /// The post's username and icon unless the hook sets its own.
    pub username: &'static str,
    pub icon_url: &'static str,
    /// A header every request of this sender carries; its absence means a wrong URL.
    pub required_header: Option<&'static str>,
    /// The header [`Source::verify`] reads, for messages and the listing.
    pub signature_header: &'static str,
    /// The events the table posts, as [`Source::event`] names them.
    pub events: &'static [&'static str],
    /// The event's name: `push`, `pull_request.opened`.
    pub event: fn(&Inbound) -> String,
    /// Whether the request is signed with this secret (constant time).
    pub verify: fn(&Inbound, &[u8]) -> bool,
    /// The post for an event; `None` for an event the table has no post for.
    pub render: fn(&str, &Inbound) -> Option<Message>,
    /// Whether a request to a hook whose `source` is this one is the sender's own (and not
    /// a Slack-format payload sent to the same URL).
    pub recognizes: fn(&Inbound) -> bool,
}

/// Every built-in source, in the order the listing shows them.
pub const SOURCES: &[&Source] = &[
    &github::SOURCE,
    &gitlab::SOURCE,
    &gitea::SOURCE,
    &bitbucket::SOURCE,
    &azure_devops::SOURCE,
    &alertmanager::SOURCE,
    &grafana::SOURCE,
    &jira::SOURCE,
    &pagerduty::SOURCE,
    &sentry::SOURCE,
    &json::SOURCE,
];

pub fn find(name: &str) -> Option<&'static Source> {
    SOURCES.iter().copied().find(|s| s.name == name)
}

/// `GET /api/v4/hooks/incoming/sources`: one entry per source.
#[derive(Serialize)]
pub struct Listed {
    pub name: &'static str,
    pub display_name: &'static str,
    pub events: &'static [&'static str],
    pub event_header: Option<&'static str>,
    pub signature_header: &'static str,
}

pub fn listing() -> Vec<Listed> {
    SOURCES
        .iter()
        .map(|s| Listed {
            name: s.name,
            display_name: s.display_name,
            events: s.events,
            event_header: s.required_header,
            signature_header: s.signature_header,
        })
        .collect()
}

/// The body as JSON. Senders that post forms (GitHub's default content type) put the
/// document in the `payload` field.
pub fn decode_body(content_type: Option<&str>, body: &[u8]) -> Result<Value, String> {
    let is_form = content_type.is_some_and(|ct| {
        ct.split(';').next().is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if is_form && body.first() != Some(&b'{') {
        let payload = url::form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| "the form has no payload field".to_owned())?;
        return serde_json::from_str(&payload).map_err(|e| e.to_string());
    }
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// Whether a hook's `source_events` let `event` post. A pattern is a glob (`*` for any
/// run of characters) matching the whole name, or its part before the first `.`
/// (`pull_request` covers `pull_request.opened`); `!pattern` excludes. With no positive
/// pattern every event is in, minus the excluded ones.
pub fn selected(filters: &[String], event: &str) -> bool {
    let matches = |pattern: &str| {
        glob(pattern, event)
            || event
                .split_once('.')
                .is_some_and(|(kind, _)| glob(pattern, kind))
    };
    let (excluded, included): (Vec<&String>, Vec<&String>) =
        filters.iter().partition(|f| f.starts_with('!'));
    if excluded.iter().any(|f| matches(&f[1..])) {
        return false;
    }
    included.is_empty() || included.iter().any(|f| matches(f))
}

/// `*` matches any run of characters (dots included); everything else matches itself.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(after) = name.strip_prefix(head) else {
                return false;
            };
            (0..=after.len())
                .filter(|i| after.is_char_boundary(*i))
                .any(|i| glob(rest, &after[i..]))
        }
    }
}

/// Checks a filter pattern when a hook is saved.
pub fn valid_pattern(pattern: &str) -> bool {
    let bare = pattern.strip_prefix('!').unwrap_or(pattern);
    !bare.is_empty()
        && pattern.len() <= 64
        && bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-*".contains(&b))
}

/// An HMAC-SHA256 of the body, sent as hex after `prefix` (`sha256=`), checked in
/// constant time (`verify_slice`).
pub fn hmac_hex_matches(secret: &[u8], body: &[u8], sent: Option<&str>, prefix: &str) -> bool {
    let Some(hex_mac) = sent.and_then(|s| s.trim().strip_prefix(prefix)) else {
        return false;
    };
    let Ok(bytes) = hex::decode(hex_mac) else {
        return false;
    };
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

/// Whether two byte strings are equal, without an early exit.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An `Authorization` header carrying the secret: `Bearer <secret>`, or `Basic` credentials
/// whose password (or, with no `:`, whole value) is the secret.
pub fn authorization_matches(secret: &[u8], sent: Option<&str>) -> bool {
    use base64::Engine;
    let Some((scheme, value)) = sent.and_then(|s| s.trim().split_once(' ')) else {
        return false;
    };
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return same_secret(value.as_bytes(), secret);
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value) else {
            return false;
        };
        let password = match decoded.iter().position(|b| *b == b':') {
            Some(colon) => &decoded[colon + 1..],
            None => &decoded[..],
        };
        return same_secret(password, secret);
    }
    false
}

#[cfg(test)]
mod tests;

/// The string at a JSON pointer (`/pull_request/title`), or `""`.
pub fn str_at<'a>(json: &'a Value, pointer: &str) -> &'a str {
    json.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}
