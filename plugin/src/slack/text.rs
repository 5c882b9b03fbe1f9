// Slack markup to Mattermost markdown: announcements, user and channel references, and
// `<url|label>` links, applied where Mattermost applies them (spec §6.1 and §6.2).

use serde_json::Value;

use super::attachment::Attachment;

/// Steps A and B of Slack text processing, plus the labelled forms real senders use and
/// Mattermost leaves raw (which its link rules would then garble into `[x](!channel)`):
///
/// | Slack | Mattermost |
/// |---|---|
/// | `<!channel>`, `<!here>`, `<!all>` and their `<…\|label>` forms | `@channel`, `@here`, `@all` |
/// | `<!everyone>`, `<!everyone\|label>` | `@all` |
/// | `<!subteam^ID\|@handle>` | `@handle` |
/// | `<@ID>` | `@username` for a known user, else unchanged |
/// | `<@ID\|name>` | `@username` for a known user, else `@name` |
/// | `<#ID\|name>` | `~name` |
///
/// Run it before the link rules, which would otherwise take the labelled forms for links.
pub fn announcements_and_mentions(
    text: &str,
    username_of: &dyn Fn(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        // A reference ends at the first `>`; a `<` or a line break first means this `<` opens
        // nothing, and scanning resumes there, which keeps the pass linear.
        if let Some(end) = after.find(['<', '>', '\n'])
            && after[end..].starts_with('>')
            && let Some(replacement) = translate_reference(&after[..end], username_of)
        {
            out.push_str(&replacement);
            rest = &after[end + 1..];
            continue;
        }
        out.push('<');
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The Mattermost text for the inside of one `<…>`, or `None` to leave it as written.
fn translate_reference(
    inner: &str,
    username_of: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let (target, label) = match inner.split_once('|') {
        Some((target, label)) => (target, Some(label)),
        None => (inner, None),
    };
    match target {
        "!channel" | "!here" | "!all" => return Some(format!("@{}", &target[1..])),
        "!everyone" => return Some("@all".to_owned()),
        _ => {}
    }
    let label = label.filter(|l| !l.is_empty());
    if let Some(id) = target.strip_prefix('@') {
        if !is_id(id) {
            return None;
        }
        return match username_of(id) {
            Some(username) => Some(format!("@{username}")),
            None => label.map(|l| format!("@{}", l.trim_start_matches('@'))),
        };
    }
    if let Some(id) = target.strip_prefix("!subteam^") {
        return label
            .filter(|_| is_id(id))
            .map(|l| format!("@{}", l.trim_start_matches('@')));
    }
    if let Some(id) = target.strip_prefix('#') {
        return label
            .filter(|_| is_id(id))
            .map(|l| format!("~{}", l.trim_start_matches('#')));
    }
    None
}

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Step C, for webhook and outgoing-webhook `text`: Mattermost's
/// `<([^\n<|>]+)\|([^|\n>]+)>` → `[$2]($1)`, so neither part may span lines.
pub fn links_strict(text: &str) -> String {
    links(text, Rule::Strict)
}

/// Step C′, for attachment text and command responses: Mattermost's
/// `<([^<|]+)\|([^>]+)>` → `[$2]($1)`; the label may hold `|` and line breaks.
pub fn links_lenient(text: &str) -> String {
    links(text, Rule::Lenient)
}

#[derive(Clone, Copy)]
enum Rule {
    Strict,
    Lenient,
}

impl Rule {
    fn ends_url(self, b: u8) -> bool {
        match self {
            Rule::Strict => matches!(b, b'\n' | b'<' | b'|' | b'>'),
            Rule::Lenient => matches!(b, b'<' | b'|'),
        }
    }

    fn ends_label(self, b: u8) -> bool {
        match self {
            Rule::Strict => matches!(b, b'|' | b'\n' | b'>'),
            Rule::Lenient => b == b'>',
        }
    }
}

// Both character classes exclude the delimiter that follows them, so greedy matching never
// backtracks: each part is the longest run up to its delimiter, found with plain scans. All
// delimiters are ASCII, so every index used to slice is a char boundary.
fn links(text: &str, rule: Rule) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    // Where the lenient label's run ends; cached so repeated failures stay linear.
    let mut label_stop: Option<usize> = None;
    while let Some(offset) = text[at..].find('<') {
        let open = at + offset;
        at = open + 1;
        let bar = scan(bytes, open + 1, |b| rule.ends_url(b));
        if bar == open + 1 || bytes.get(bar) != Some(&b'|') {
            continue;
        }
        let close = match label_stop {
            Some(stop) if stop > bar => stop,
            _ => {
                let stop = scan(bytes, bar + 1, |b| rule.ends_label(b));
                label_stop = Some(stop);
                stop
            }
        };
        if close == bar + 1 || bytes.get(close) != Some(&b'>') {
            continue;
        }
        out.push_str(&text[copied..open]);
        push_link(&mut out, &text[open + 1..bar], &text[bar + 1..close]);
        copied = close + 1;
        at = copied;
    }
    out.push_str(&text[copied..]);
    out
}

fn scan(bytes: &[u8], from: usize, stop: impl Fn(u8) -> bool) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| stop(b))
        .map_or(bytes.len(), |p| from + p)
}

/// Writes `[label](url)`. People type `<url | label>` with spaces around the bar; those are
/// dropped unless nothing would be left of a part.
fn push_link(out: &mut String, url: &str, label: &str) {
    let url = match url.trim_end_matches(' ') {
        "" => url,
        trimmed => trimmed,
    };
    let label = match label.trim_start_matches(' ') {
        "" => label,
        trimmed => trimmed,
    };
    out.push('[');
    out.push_str(label);
    out.push_str("](");
    out.push_str(url);
    out.push(')');
}

/// Step 2 of attachment processing: announcements and mentions in `pretext`, `text`, `title`
/// and every string field value.
pub fn translate_attachments(
    attachments: &mut [Attachment],
    username_of: &dyn Fn(&str) -> Option<String>,
) {
    for a in attachments {
        for s in [&mut a.pretext, &mut a.text, &mut a.title] {
            *s = announcements_and_mentions(s, username_of);
        }
        for field in &mut a.fields {
            if let Value::String(s) = &mut field.value {
                *s = announcements_and_mentions(s, username_of);
            }
        }
    }
}

/// Step 3 of attachment processing: lenient links in `text`, `pretext` and every string field
/// value. Alone, it is what a command response with `skip_slack_parsing` gets.
pub fn link_attachments(attachments: &mut [Attachment]) {
    for a in attachments {
        for s in [&mut a.text, &mut a.pretext] {
            *s = links_lenient(s);
        }
        for field in &mut a.fields {
            if let Value::String(s) = &mut field.value {
                *s = links_lenient(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::attachment::AttachmentField;
    use serde_json::json;

    fn known(id: &str) -> Option<String> {
        (id == "U123").then(|| "bob".to_owned())
    }

    #[test]
    fn announcements_and_mentions_table() {
        let cases = [
            ("<!channel> <!here> <!all>", "@channel @here @all"),
            ("hi <!channel>, <!channel>!", "hi @channel, @channel!"),
            (
                "<!here|here> <!channel|@channel> <!all|all>",
                "@here @channel @all",
            ),
            ("<!everyone> <!everyone|everyone>", "@all @all"),
            ("<!CHANNEL> <!chan>", "<!CHANNEL> <!chan>"),
            ("ping <@U123>", "ping @bob"),
            ("ping <@U999>", "ping <@U999>"),
            (
                "<@U123|robert> <@U999|alice> <@U999|@carol>",
                "@bob @alice @carol",
            ),
            ("<@U999|>", "<@U999|>"),
            ("<@U-1> <@> <@U123 >", "<@U-1> <@> <@U123 >"),
            ("<!subteam^S01|@devs> <!subteam^S01|ops>", "@devs @ops"),
            (
                "<!subteam^S01> <!subteam^|@x>",
                "<!subteam^S01> <!subteam^|@x>",
            ),
            ("see <#C01|general>", "see ~general"),
            ("<#C01> <#|general>", "<#C01> <#|general>"),
            ("<http://x|label> a < b", "<http://x|label> a < b"),
            ("<<!here>> <!here\n>", "<@here> <!here\n>"),
            ("é<@U123>ü", "é@bobü"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(announcements_and_mentions(input, &known), want, "{input:?}");
        }
    }

    #[test]
    fn mentions_run_before_links_so_labels_are_not_links() {
        let text = announcements_and_mentions("<!channel|x> <#C1|dev> <http://a|b>", &known);
        assert_eq!(links_strict(&text), "@channel ~dev [b](http://a)");
    }

    #[test]
    fn strict_links_table() {
        let cases = [
            ("<http://x|label>", "[label](http://x)"),
            (
                "a <http://x|one> b <http://y|two> c",
                "a [one](http://x) b [two](http://y) c",
            ),
            ("<http://x>", "<http://x>"),
            ("<|label>", "<|label>"),
            ("<http://x|>", "<http://x|>"),
            ("<http://x|a|b>", "<http://x|a|b>"),
            ("<http://x|line\nbreak>", "<http://x|line\nbreak>"),
            ("<http://x\n|label>", "<http://x\n|label>"),
            ("<a<http://x|label>", "<a[label](http://x)"),
            ("<http://x|a<b>", "[a<b](http://x)"),
            ("<http://x | Label>", "[Label](http://x)"),
            ("<http://x  |  Two words >", "[Two words ](http://x)"),
            ("< | x>", "[x]( )"),
            ("<é|ü>", "[ü](é)"),
            ("<<<|>>>", "<<<|>>>"),
        ];
        for (input, want) in cases {
            assert_eq!(links_strict(input), want, "{input:?}");
        }
    }

    #[test]
    fn lenient_links_table() {
        let cases = [
            ("<http://x|label>", "[label](http://x)"),
            ("<http://x|a|b>", "[a|b](http://x)"),
            ("<http://x|line\nbreak>", "[line\nbreak](http://x)"),
            ("<http://x\n|label>", "[label](http://x\n)"),
            ("<a>b|c>", "[c](a>b)"),
            ("<http://x|>", "<http://x|>"),
            ("<http://x|a<b>", "[a<b](http://x)"),
            ("<http://x | Label>", "[Label](http://x)"),
            ("<a|b> and <c|d>", "[b](a) and [d](c)"),
            ("<a|b", "<a|b"),
            ("<a|<a|<a|", "<a|<a|<a|"),
        ];
        for (input, want) in cases {
            assert_eq!(links_lenient(input), want, "{input:?}");
        }
    }

    #[test]
    fn link_scans_stay_linear_on_hostile_input() {
        let hostile = "<a|".repeat(100_000);
        assert_eq!(links_lenient(&hostile), hostile);
        assert_eq!(links_strict(&hostile), hostile);
        let brackets = "<".repeat(100_000);
        assert_eq!(announcements_and_mentions(&brackets, &known), brackets);
    }

    #[test]
    fn attachments_translate_then_link() {
        let mut atts = vec![Attachment {
            pretext: "<!here> <http://p|P>".into(),
            text: "<@U123> <http://t|T\nx>".into(),
            title: "<!channel> <http://x|X>".into(),
            fallback: "<!channel>".into(),
            fields: vec![
                AttachmentField {
                    value: json!("<!all> <http://v|V>"),
                    ..Default::default()
                },
                AttachmentField::default(),
            ],
            ..Default::default()
        }];
        translate_attachments(&mut atts, &known);
        link_attachments(&mut atts);
        let a = &atts[0];
        assert_eq!(a.pretext, "@here [P](http://p)");
        assert_eq!(a.text, "@bob [T\nx](http://t)");
        // Titles get mentions but no links; fallbacks get neither.
        assert_eq!(a.title, "@channel <http://x|X>");
        assert_eq!(a.fallback, "<!channel>");
        assert_eq!(a.fields[0].value, json!("@all [V](http://v)"));
        assert_eq!(a.fields[1].value, Value::Null);
    }
}
