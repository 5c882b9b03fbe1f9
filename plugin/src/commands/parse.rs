//! Reading a command line: the trigger and its text (spec §5.2), and the
//! `@user` and `~channel` mentions in the text that the request reports (§5.3).

/// A command line split at its first Unicode whitespace character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine<'a> {
    /// Lower-cased, with its `/` (`/Deploy` ⇒ `/deploy`).
    pub trigger: String,
    /// Everything after that one whitespace character, as typed.
    pub text: &'a str,
}

/// Splits at the first whitespace character, whatever its width: after a
/// multi-byte space such as U+00A0 the text starts on the next character,
/// where Mattermost leaves the space's second byte behind.
pub fn split(command: &str) -> CommandLine<'_> {
    match command.char_indices().find(|(_, c)| c.is_whitespace()) {
        Some((at, space)) => CommandLine {
            trigger: command[..at].to_lowercase(),
            text: &command[at + space.len_utf8()..],
        },
        None => CommandLine {
            trigger: command.to_lowercase(),
            text: "",
        },
    }
}

/// Candidate usernames of the `@name` mentions in `text`, lower-cased, each
/// once, in order: `@` not preceded by a letter, digit or `_`, then an ASCII
/// letter or digit, then letters, digits, `.`, `-`, `_` and `:`.
pub fn at_mentions(text: &str) -> Vec<String> {
    let first = |b: u8| b.is_ascii_alphanumeric();
    mentions(text, b'@', first, |b| {
        b.is_ascii_alphanumeric() || b".-_:".contains(&b)
    })
    .into_iter()
    .map(|m| m.to_ascii_lowercase())
    .filter(|m| m.len() <= 64)
    .fold(Vec::new(), dedup)
}

/// Channel names of the `~name` mentions in `text`, each once, in order.
pub fn channel_mentions(text: &str) -> Vec<String> {
    let name = |b: u8| b.is_ascii_alphanumeric() || b"-_".contains(&b);
    mentions(text, b'~', name, name)
        .into_iter()
        .fold(Vec::new(), dedup)
}

fn dedup(mut seen: Vec<String>, name: String) -> Vec<String> {
    if !seen.contains(&name) {
        seen.push(name);
    }
    seen
}

/// Words after `sigil` that start at a non-word boundary (`\B` in Go's
/// regexp: the byte before the sigil is not a word byte), made of a `first`
/// byte and then `continues` bytes.
fn mentions(
    text: &str,
    sigil: u8,
    first: impl Fn(u8) -> bool,
    continues: impl Fn(u8) -> bool,
) -> Vec<String> {
    let bytes = text.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != sigil || (at > 0 && is_word(bytes[at - 1])) {
            at += 1;
            continue;
        }
        let start = at + 1;
        if !bytes.get(start).is_some_and(|&b| first(b)) {
            at += 1;
            continue;
        }
        let mut end = start + 1;
        while end < bytes.len() && continues(bytes[end]) {
            end += 1;
        }
        // Every byte in the run is ASCII, so these are char boundaries.
        found.push(text[start..end].to_string());
        at = end;
    }
    found
}

/// The shorter names Mattermost tries when `@name` matches no user: trailing
/// `.`, `-` and `_` removed one at a time (`@bob.` ⇒ `bob`).
pub fn trimmed_candidates(name: &str) -> impl Iterator<Item = &str> {
    let mut current = name;
    std::iter::from_fn(move || {
        let last = current.bytes().last()?;
        if !b".-_".contains(&last) {
            return None;
        }
        current = &current[..current.len() - 1];
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_at_the_first_whitespace_of_any_width() {
        let cases: &[(&str, &str, &str)] = &[
            ("/deploy staging", "/deploy", "staging"),
            ("/Deploy Staging", "/deploy", "Staging"),
            ("/cmd  x", "/cmd", " x"),
            ("/cmd\nline", "/cmd", "line"),
            ("/cmd\tx y", "/cmd", "x y"),
            ("/cmd", "/cmd", ""),
            ("/cmd ", "/cmd", ""),
            // NBSP, ideographic space, em space: no stray byte is left.
            ("/cmd\u{a0}text", "/cmd", "text"),
            ("/cmd\u{3000}text", "/cmd", "text"),
            ("/cmd\u{2003}\u{2003}x", "/cmd", "\u{2003}x"),
            ("/CAFÉ ok", "/café", "ok"),
        ];
        for (line, trigger, text) in cases {
            let got = split(line);
            assert_eq!(
                (got.trigger.as_str(), got.text),
                (*trigger, *text),
                "{line:?}"
            );
        }
    }

    #[test]
    fn at_mentions_follow_mattermosts_pattern() {
        let cases: &[(&str, &[&str])] = &[
            ("hi @bob and @Alice.", &["bob", "alice."]),
            ("mail a@b.com", &[]),
            ("(@bob) @bob", &["bob"]),
            ("@_x @9lives @a:remote", &["9lives", "a:remote"]),
            ("@ alone @", &[]),
            ("héé@bob", &["bob"]),
        ];
        for (text, want) in cases {
            assert_eq!(at_mentions(text), *want, "{text}");
        }
    }

    #[test]
    fn channel_mentions_follow_mattermosts_pattern() {
        let cases: &[(&str, &[&str])] = &[
            (
                "see ~town-square and ~off_topic.",
                &["town-square", "off_topic"],
            ),
            ("a~b ~ ~x.y ~x ~-dash", &["x", "-dash"]),
        ];
        for (text, want) in cases {
            assert_eq!(channel_mentions(text), *want, "{text}");
        }
    }

    #[test]
    fn trimming_candidates() {
        assert_eq!(
            trimmed_candidates("bob._").collect::<Vec<_>>(),
            ["bob.", "bob"]
        );
        assert_eq!(trimmed_candidates("bob").count(), 0);
    }
}
