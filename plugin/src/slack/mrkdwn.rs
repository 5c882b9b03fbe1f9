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
            // Markdown's escapes (from rendered blocks) are kept, with what they escape.
            b'\\' => {
                i += 2;
                continue;
            }
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

/// Slack's `<!date^…>` tokens as the reader sees them: the sender's fallback text, or the
/// time in UTC when there is none (the reader's time zone is not known here).
pub fn dates(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("<!date^") {
        out.push_str(&rest[..open]);
        let after = &rest[open + "<!date^".len()..];
        let Some(end) = after
            .find(['<', '>', '\n'])
            .filter(|e| after[*e..].starts_with('>'))
        else {
            out.push_str("<!date^");
            rest = after;
            continue;
        };
        let (spec, fallback) = match after[..end].split_once('|') {
            Some((spec, fallback)) => (spec, Some(fallback)),
            None => (&after[..end], None),
        };
        let timestamp = spec.split('^').next().and_then(|t| t.parse::<i64>().ok());
        match (fallback, timestamp) {
            (Some(fallback), _) => out.push_str(fallback),
            (None, Some(t)) => out.push_str(&utc_minutes(t)),
            (None, None) => out.push_str(&rest[open..open + "<!date^".len() + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A Unix time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_minutes(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (the proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
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
            ("\\*escaped\\* *b*", "\\*escaped\\* **b**"),
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
    fn dates_show_their_fallback_or_utc() {
        let cases = [
            (
                "<!date^1392734382^{date_num} {time_secs}|2014-02-18 6:39:42 AM PST> ok",
                "2014-02-18 6:39:42 AM PST ok",
            ),
            ("at <!date^1700000000^{time}>", "at 2023-11-14 22:13 UTC"),
            ("<!date^1700000000^{date}^https://x.test|Nov 14>", "Nov 14"),
            ("<!date^soon^{date}>", "<!date^soon^{date}>"),
            ("<!date^1 unclosed", "<!date^1 unclosed"),
            ("<!here> stays", "<!here> stays"),
        ];
        for (input, want) in cases {
            assert_eq!(dates(input), want, "input {input:?}");
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc_minutes(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_minutes(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_minutes(-1), "1969-12-31 23:59 UTC");
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
