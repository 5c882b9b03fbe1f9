//! Who a post mentions, as Mattermost's standard mention parser finds it:
//! `@username` of a channel member, and `@channel`/`@all`/`@here`.
//! Words are split and trimmed by Mattermost's rules; code is not searched.

use std::collections::BTreeSet;

/// A channel member as the parser sees them.
pub struct Member<'a> {
    pub id: &'a str,
    pub username: &'a str,
    /// Has a live connection (`@here` reaches only these).
    pub online: bool,
}

/// What a text mentions.
#[derive(Debug, Default, PartialEq)]
pub struct Mentions {
    pub users: BTreeSet<String>,
}

/// Finds the members `texts` mention. `channel_wide` says whether
/// `@channel`, `@all` and `@here` count (the author holds
/// `use_channel_mentions` and the post is no header or purpose change).
pub fn find(texts: &[&str], members: &[Member], channel_wide: bool) -> Mentions {
    let mut found = Mentions::default();
    for text in texts {
        for word in words(&strip_code(text)) {
            check_word(word, members, channel_wide, &mut found);
        }
    }
    found
}

/// Splits as Mattermost does: on anything that cannot be part of an
/// at-mention or an emoji name.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || ":.-_@".contains(c)))
        .filter(|w| !w.is_empty())
}

fn check_word(word: &str, members: &[Member], channel_wide: bool, found: &mut Mentions) {
    // `:word:` is an emoji.
    if word.len() > 1 && word.starts_with(':') && word.ends_with(':') {
        return;
    }
    let word = word.trim_start_matches([':', '.', '-', '_']);
    if mention(word, members, channel_wide, found) {
        return;
    }
    // "@alice." at the end of a sentence: drop trailing separators one by one.
    let mut shorter = word;
    while let Some(rest) = shorter.strip_suffix(['.', '-', ':', '_']) {
        shorter = rest;
        if mention(shorter, members, channel_wide, found) {
            return;
        }
    }
    // "@alice:@bob" and the like: try the pieces.
    if !word.starts_with('@') && word.contains(['.', '-', ':']) {
        for piece in word.split(['.', '-', ':']).filter(|p| !p.is_empty()) {
            mention(piece, members, channel_wide, found);
        }
    }
}

/// Whether `word` is a mention keyword; records whom it mentions.
fn mention(word: &str, members: &[Member], channel_wide: bool, found: &mut Mentions) -> bool {
    let lower = word.to_lowercase();
    let everyone = match lower.as_str() {
        "@channel" | "@all" => Some(false),
        "@here" => Some(true),
        _ => None,
    };
    if let Some(online_only) = everyone {
        if !channel_wide {
            return false;
        }
        let mut any = false;
        for m in members.iter().filter(|m| m.online || !online_only) {
            found.users.insert(m.id.to_string());
            any = true;
        }
        return any;
    }
    let Some(name) = lower.strip_prefix('@') else {
        return false;
    };
    let mut any = false;
    for m in members.iter().filter(|m| m.username.to_lowercase() == name) {
        found.users.insert(m.id.to_string());
        any = true;
    }
    any
}

/// The text without fenced code blocks and inline code spans, which
/// Mattermost's Markdown parse never hands to the mention parser.
fn strip_code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            out.push('\n');
            continue;
        }
        if in_fence {
            out.push('\n');
            continue;
        }
        let mut in_span = false;
        for c in line.chars() {
            if c == '`' {
                in_span = !in_span;
                out.push(' ');
            } else if !in_span {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Vec<Member<'static>> {
        vec![
            Member {
                id: "a",
                username: "alice",
                online: true,
            },
            Member {
                id: "b",
                username: "bob.smith",
                online: false,
            },
        ]
    }

    fn ids(texts: &[&str], channel_wide: bool) -> Vec<String> {
        find(texts, &members(), channel_wide)
            .users
            .into_iter()
            .collect()
    }

    #[test]
    fn usernames_are_found_with_mattermost_word_rules() {
        assert_eq!(ids(&["hi @Alice, and @bob.smith."], false), ["a", "b"]);
        assert_eq!(ids(&["(@alice)"], false), ["a"]);
        assert_eq!(
            ids(&["email alice@example.com"], false),
            Vec::<String>::new()
        );
        assert_eq!(ids(&["@alice_"], false), ["a"]);
        assert_eq!(ids(&["@carol"], false), Vec::<String>::new());
    }

    #[test]
    fn code_is_not_searched() {
        assert_eq!(
            ids(&["`@alice` and\n```\n@bob.smith\n```"], false),
            Vec::<String>::new()
        );
    }

    #[test]
    fn channel_wide_mentions_need_permission_and_here_needs_presence() {
        assert_eq!(ids(&["@channel"], false), Vec::<String>::new());
        assert_eq!(ids(&["@all"], true), ["a", "b"]);
        assert_eq!(ids(&["@here"], true), ["a"]);
        assert_eq!(ids(&[":smile:", "attachment for @bob.smith"], true), ["b"]);
    }
}
