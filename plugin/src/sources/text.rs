//! Putting sender-provided text into a post safely: no mention notifies anyone, titles
//! lose their Markdown, long bodies and lists are cut with a visible marker.

/// U+2060 WORD JOINER: invisible, and not a word character, so `@\u{2060}channel` reads as
/// `@channel` but Mattermost's mention parser sees `@` and `channel` apart. After `<` it
/// keeps `<!channel>` and `<@ID>` from being translated as Slack references.
const JOINER: char = '\u{2060}';

/// Sender text with every `@` and Slack-reference `<` defused; Markdown is kept.
pub fn neutralize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        let defuse = match c {
            '@' => true,
            '<' => matches!(chars.peek(), Some('!' | '@' | '#')),
            _ => false,
        };
        if defuse {
            out.push(JOINER);
        }
    }
    out
}

/// A title or name as literal text inside a line: Markdown's inline punctuation
/// backslash-escaped (`#` and `>` only matter at a line's start, where no title goes), line
/// breaks folded, mentions neutralized.
pub fn plain(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' | '\n' => escaped.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '~' | '|' | '<' => {
                escaped.push('\\');
                escaped.push(c);
            }
            _ => escaped.push(c),
        }
    }
    neutralize(&escaped)
}

/// Marks where a body was cut.
pub const TRIMMED: &str = "… *(trimmed)*";

/// A Markdown body as a quote of at most `max` characters, with [`TRIMMED`] when cut;
/// empty for an empty body.
pub fn quoted(body: &str, max: usize) -> String {
    let body = body.trim();
    if body.is_empty() {
        return String::new();
    }
    let mut cut: String = body.chars().take(max).collect();
    if cut.len() < body.len() {
        cut = cut.trim_end().to_owned();
        cut.push_str(TRIMMED);
    }
    neutralize(&cut)
        .lines()
        .map(|line| format!("> {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first line of a commit message or the like.
pub fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim()
}

/// `[label](url)`, the label escaped; the label alone when there is no URL.
pub fn link(label: &str, url: &str) -> String {
    if url.is_empty() {
        plain(label)
    } else {
        format!("[{}]({})", plain(label), url_part(url))
    }
}

/// One line of a push's commit list: the short id (a link when the sender gives the commit's
/// URL), the message's first line and the author.
pub fn commit_line(sha: &str, url: &str, message: &str, author: &str) -> String {
    let sha = if url.is_empty() {
        code(sha)
    } else {
        format!("[{}]({})", code(sha), url_part(url))
    };
    format!("- {sha} {} — {}", plain(first_line(message)), plain(author))
}

/// A URL as the target of a Markdown link: spaces and parentheses encoded.
pub fn url_part(url: &str) -> String {
    url.replace(' ', "%20")
        .replace('(', "%28")
        .replace(')', "%29")
}

/// At most `max` list lines, then `and N more` for the rest of `total` (a sender may list
/// fewer items than it counts).
pub fn capped(lines: Vec<String>, total: usize, max: usize) -> Vec<String> {
    let more = total.saturating_sub(lines.len().min(max));
    let mut out: Vec<String> = lines.into_iter().take(max).collect();
    if more > 0 {
        out.push(format!("- and {more} more"));
    }
    out
}

/// Code (a `sha`, a branch) in backticks, with a fence longer than any run inside it.
pub fn code(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!(
        "{fence}{pad}{}{pad}{fence}",
        text.replace(['\n', '\r'], " ")
    )
}

/// How much of a sender's body (a description, a comment) a post quotes.
pub const BODY_CHARS: usize = 500;

/// A head line with the body quoted under it (trimmed to `BODY_CHARS`), or the head alone.
pub fn with_body(head: String, body: &str) -> String {
    let quote = quoted(body, BODY_CHARS);
    if quote.is_empty() {
        head
    } else {
        format!("{head}\n{quote}")
    }
}

/// `first` unless it is empty.
pub fn or<'a>(first: &'a str, second: &'a str) -> &'a str {
    if first.is_empty() { second } else { first }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_and_slack_references_are_defused() {
        assert_eq!(neutralize("hi @channel"), "hi @\u{2060}channel");
        assert_eq!(
            neutralize("<!here> <@U1> <#C1|x> a<b"),
            "<\u{2060}!here> <\u{2060}@\u{2060}U1> <\u{2060}#C1|x> a<b"
        );
    }

    #[test]
    fn titles_lose_markdown_and_bodies_are_trimmed() {
        assert_eq!(
            plain("Fix *all* [x](y)\n@all"),
            "Fix \\*all\\* \\[x\\]\\(y\\) @\u{2060}all"
        );
        assert_eq!(quoted("abcdef", 3), "> abc… *(trimmed)*");
        assert_eq!(quoted("a\nb", 10), "> a\n> b");
        assert_eq!(quoted("  ", 10), "");
        assert_eq!(
            capped(vec!["- a".into(), "- b".into(), "- c".into()], 3, 2),
            ["- a", "- b", "- and 1 more"]
        );
        assert_eq!(capped(vec!["- a".into()], 30, 5), ["- a", "- and 29 more"]);
        assert_eq!(code("main"), "`main`");
        assert_eq!(code("a`b"), "``a`b``");
    }
}
