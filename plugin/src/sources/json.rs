//! Any JSON document: a readable post of it, pretty-printed in a code block and cut with
//! a marker when long. For senders no other source knows. The secret, if set, is checked
//! against the `Authorization` header (bearer or basic).

use super::{Inbound, Message, Source, authorization_matches};

pub const SOURCE: Source = Source {
    name: "json",
    display_name: "Any JSON",
    username: "webhook",
    icon_url: "",
    required_header: None,
    signature_header: "Authorization",
    events: &["document"],
    event: |_| "document".to_owned(),
    verify: |inbound, secret| authorization_matches(secret, inbound.header("Authorization")),
    render,
    recognizes: |_| true,
};

/// How much of the pretty-printed document a post shows.
const SHOWN_CHARS: usize = 3000;

fn render(_event: &str, inbound: &Inbound) -> Option<Message> {
    let pretty = serde_json::to_string_pretty(inbound.json).unwrap_or_default();
    let total = pretty.chars().count();
    let mut shown: String = pretty.chars().take(SHOWN_CHARS).collect();
    let marker = if total > SHOWN_CHARS {
        shown.push('\n');
        format!("\n… *(truncated: {} more characters)*", total - SHOWN_CHARS)
    } else {
        String::new()
    };
    // A fence longer than any run of backticks inside, so no string can close it.
    let longest = shown.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let body = super::text::neutralize(shown.trim_end());
    Some(Message {
        text: format!("{fence}json\n{body}\n{fence}{marker}"),
        ..Message::default()
    })
}
