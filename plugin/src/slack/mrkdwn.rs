// Slack's mrkdwn emphasis to Markdown, and plain text made inert for Markdown. References and
// `<url|label>` links are left for `text.rs`, which runs after this on every post's text.

/// `*bold*` → `**bold**` and `~strike~` → `~~strike~~` (`_italic_` reads the same in both).
/// Code spans, code blocks and `<…>` references are copied as written. A marker pairs with the
/// first closer on its line, as Slack's renderer does; the scan is linear on any input.
pub fn to_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in split_keeping_code_blocks(text).into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match line {
            Piece::Verbatim(s) => out.push_str(s),
            Piece::Line(s) => convert_line(s, &mut out),
        }
    }
    out
}

enum Piece<'a> {
    Verbatim(&'a str),
    Line(&'a str),
}

/// Lines of `text`, with each fenced block (from a line holding ```` ``` ```` to the next
/// such fence) kept whole and untouched.
fn split_keeping_code_blocks(text: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = text;
    loop {
        let Some(open) = rest.find("```") else {
            pieces.extend(rest.split('\n').map(Piece::Line));
            return pieces;
        };
        let close = rest[open + 3..].find("```").map(|c| open + 3 + c + 3);
        let Some(close) = close else {
            pieces.extend(rest.split('\n').map(Piece::Line));
            return pieces;
        };
        // The fence's own line starts at the last line break before it.
        let start = rest[..open].rfind('\n').map_or(0, |n| n + 1);
        let end = rest[close..].find('\n').map_or(rest.len(), |n| close + n);
        if start > 0 {
            pieces.extend(rest[..start - 1].split('\n').map(Piece::Line));
        }
        pieces.push(Piece::Verbatim(&rest[start..end]));
        if end == rest.len() {
            return pieces;
        }
        rest = &rest[end + 1..];
    }
}

fn convert_line(line: &str, out: &mut String) {
    let bytes = line.as_bytes();
    // Once a marker finds no closer, no later marker of that kind on this line can.
    let mut no_closer = [false; 2];
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'`' => {
                if let Some(end) = line[i + 1..].find('`') {
                    i += end + 2;
                    continue;
                }
            }
            b'<' => {
                if let Some(end) = line[i + 1..].find(['<', '>'])
                    && bytes[i + 1 + end] == b'>'
                {
                    i += end + 2;
                    continue;
                }
            }
            marker @ (b'*' | b'~') => {
                let kind = usize::from(marker == b'~');
                if !no_closer[kind] && opens(bytes, i) {
                    match closer(bytes, i, marker) {
                        Some(close) => {
                            out.push_str(&line[copied..i]);
                            let doubled = if marker == b'*' { "**" } else { "~~" };
                            out.push_str(doubled);
                            convert_line(&line[i + 1..close], out);
                            out.push_str(doubled);
                            i = close + 1;
                            copied = i;
                            continue;
                        }
                        None => no_closer[kind] = true,
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&line[copied..]);
}

/// A marker opens emphasis after the start or a non-word character, before a non-space;
/// a doubled marker is already Markdown and is left alone.
fn opens(bytes: &[u8], i: usize) -> bool {
    let before_ok = i == 0 || (!is_word(bytes[i - 1]) && bytes[i - 1] != bytes[i]);
    let after_ok = bytes
        .get(i + 1)
        .is_some_and(|b| !b.is_ascii_whitespace() && *b != bytes[i]);
    before_ok && after_ok
}

/// The first matching marker after a non-space and before the end or a non-word character.
fn closer(bytes: &[u8], open: usize, marker: u8) -> Option<usize> {
    (open + 2..bytes.len()).find(|&j| {
        bytes[j] == marker
            && !bytes[j - 1].is_ascii_whitespace()
            && bytes.get(j + 1).is_none_or(|b| !is_word(*b))
    })
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Slack's `plain_text`, shown exactly as written: Markdown's markers are backslash-escaped,
/// `&`, `<` and `>` become entities (so no later pass reads a reference or HTML into it), and
/// line starts that would open a heading, list or quote are escaped too.
pub fn escape_plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let mut rest = line;
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && line[digits..].starts_with(['.', ')']) {
            out.push_str(&line[..digits]);
            out.push('\\');
            rest = &line[digits..];
        } else if line.starts_with(['-', '+', '#']) {
            out.push('\\');
        }
        for c in rest.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '\\' | '`' | '*' | '_' | '~' | '[' | ']' | '|' => {
                    out.push('\\');
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emphasis_table() {
        let cases = [
            ("*bold*", "**bold**"),
            ("_italic_ stays", "_italic_ stays"),
            ("~gone~", "~~gone~~"),
            ("a *b* and *c*", "a **b** and **c**"),
            ("*Message*\nService down", "**Message**\nService down"),
            (
                "*bold with ~strike~ inside*",
                "**bold with ~~strike~~ inside**",
            ),
            ("2*3*4", "2*3*4"),
            ("* not a list item*", "* not a list item*"),
            ("*open only", "*open only"),
            ("a * b * c", "a * b * c"),
            ("**already**", "**already**"),
            ("`*code*` and *b*", "`*code*` and **b**"),
            (
                "<https://x.test/*a*|*label*> *b*",
                "<https://x.test/*a*|*label*> **b**",
            ),
            ("*across\nlines*", "*across\nlines*"),
            ("(*in parens*)", "(**in parens**)"),
        ];
        for (input, want) in cases {
            assert_eq!(to_markdown(input), want, "input {input:?}");
        }
    }

    #[test]
    fn code_blocks_are_kept_whole() {
        let input = "before *b*\n```\n*not bold*\n~no~\n```\nafter ~s~";
        assert_eq!(
            to_markdown(input),
            "before **b**\n```\n*not bold*\n~no~\n```\nafter ~~s~~"
        );
        assert_eq!(to_markdown("```*a*```"), "```*a*```");
        assert_eq!(to_markdown("``` unclosed *b*"), "``` unclosed **b**");
    }

    #[test]
    fn hostile_input_stays_linear() {
        let input = "*a ".repeat(20_000) + &"~b ".repeat(20_000);
        let out = to_markdown(&input);
        assert_eq!(out.len(), input.len());
    }

    #[test]
    fn plain_text_is_inert() {
        let cases = [
            ("Uptime Kuma Alert", "Uptime Kuma Alert"),
            ("a *b* _c_ ~d~ `e`", "a \\*b\\* \\_c\\_ \\~d\\~ \\`e\\`"),
            ("<!here> & <b>", "&lt;!here&gt; &amp; &lt;b&gt;"),
            ("# not a heading", "\\# not a heading"),
            ("- not a list\n1. nor this", "\\- not a list\n1\\. nor this"),
            ("[x](javascript:alert(1))", "\\[x\\](javascript:alert(1))"),
            ("2024 was fine", "2024 was fine"),
        ];
        for (input, want) in cases {
            assert_eq!(escape_plain(input), want, "input {input:?}");
        }
    }
}
