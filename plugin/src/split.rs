// Long webhook messages become several posts (spec §3.8): text in parts of at most the post
// size, cut where a reader would, and attachments spread so each post's props fit.

use std::fmt;

use serde_json::{Map, Number, Value};

use crate::slack::attachment::Attachment;

/// One post to create: its message and the attachments for its `attachments` prop. Every
/// part carries the same base props, type and priority.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Part {
    pub message: String,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitError {
    /// `web.incoming_webhook.split_props_length.app_error` (400).
    PropsTooLong,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("post props are too long to split")
    }
}

impl std::error::Error for SplitError {}

/// Splits a post into parts of at most `max_runes` runes of text (Mattermost: 16383) whose
/// props JSON, with Go's escaping, stays within `props_budget_runes` (Mattermost: 760000).
///
/// Unlike Mattermost, text is cut at a line break, else a space, in the last fifth of the
/// window (the separator itself is dropped), and a part never ends inside a code fence: the
/// fence is closed at the end of the part and reopened, with its info string, in the next.
/// An `attachments` key in `base_props` is ignored: the parts carry their own.
pub fn split_post(
    message: &str,
    base_props: &Map<String, Value>,
    attachments: Vec<Attachment>,
    max_runes: usize,
    props_budget_runes: usize,
) -> Result<Vec<Part>, SplitError> {
    let base: Map<String, Value> = base_props
        .iter()
        .filter(|(k, _)| *k != "attachments")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let base_runes = object_runes(&base);
    if base_runes > props_budget_runes {
        return Err(SplitError::PropsTooLong);
    }
    // Props of a part with attachments a₁…aₖ: base + `,"attachments":[a₁,…,aₖ]`, so
    // fixed + Σ(|aᵢ| + 1), with no comma when the base is `{}`.
    let fixed = base_runes + r#""attachments":[]"#.len() + usize::from(!base.is_empty()) - 1;
    let mut parts: Vec<Part> = split_text(message, max_runes)
        .into_iter()
        .map(|message| Part {
            message,
            attachments: Vec::new(),
        })
        .collect();
    let mut used = 0;
    for mut attachment in attachments {
        let size = attachment_runes(&attachment) + 1;
        if fixed + used + size <= props_budget_runes {
            push_attachment(&mut parts, attachment);
            used += size;
            continue;
        }
        if parts.last().is_some_and(|p| !p.attachments.is_empty()) {
            parts.push(Part::default());
        }
        let over = (fixed + size).saturating_sub(props_budget_runes);
        truncate_text(&mut attachment, over)?;
        used = attachment_runes(&attachment) + 1;
        push_attachment(&mut parts, attachment);
    }
    Ok(parts)
}

fn push_attachment(parts: &mut Vec<Part>, attachment: Attachment) {
    match parts.last_mut() {
        Some(part) => part.attachments.push(attachment),
        None => parts.push(Part {
            message: String::new(),
            attachments: vec![attachment],
        }),
    }
}

/// Drops characters from the end of the attachment's text until its JSON is `over` runes
/// shorter. Mattermost counts characters instead, so text full of `<` or `"` fails there.
fn truncate_text(attachment: &mut Attachment, over: usize) -> Result<(), SplitError> {
    let mut saved = 0;
    while saved < over {
        let c = attachment.text.pop().ok_or(SplitError::PropsTooLong)?;
        saved += char_runes(c);
    }
    Ok(())
}

fn attachment_runes(attachment: &Attachment) -> usize {
    // Attachments hold only strings, numbers from JSON and JSON values: nothing that fails.
    let value = serde_json::to_value(attachment).expect("attachments always serialize");
    go_json_runes(&value)
}

/// Runes in Go's `json.Marshal` of the value: `<`, `>`, `&`, U+2028 and U+2029 are written as
/// `\uXXXX`, floats in Go's shortest form. This is what Mattermost's props limits count.
pub fn go_json_runes(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(n) => number_runes(n),
        Value::String(s) => string_runes(s),
        Value::Array(items) => {
            2 + items.len().saturating_sub(1) + items.iter().map(go_json_runes).sum::<usize>()
        }
        Value::Object(obj) => object_runes(obj),
    }
}

fn object_runes(obj: &Map<String, Value>) -> usize {
    let members: usize = obj
        .iter()
        .map(|(k, v)| string_runes(k) + 1 + go_json_runes(v))
        .sum();
    2 + obj.len().saturating_sub(1) + members
}

fn string_runes(s: &str) -> usize {
    2 + s.chars().map(char_runes).sum::<usize>()
}

fn char_runes(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => 6,
        _ => 1,
    }
}

/// Go writes floats with `%f` between 1e-6 and 1e21 and with a trimmed exponent outside.
fn number_runes(n: &Number) -> usize {
    if n.is_i64() || n.is_u64() {
        return n.to_string().len();
    }
    let f = n.as_f64().unwrap_or_default();
    let sign = usize::from(f < 0.0);
    let abs = f.abs();
    // Rust's `{:e}` gives the same shortest digits as Go, as `d.ddd` `e` exponent.
    let sci = format!("{abs:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let width = if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        match usize::try_from(exponent) {
            // 123.45 or 12300
            Ok(e) => (e + 1).max(digits) + usize::from(digits > e + 1),
            // 0.00123
            Err(_) => 1 + exponent.unsigned_abs() as usize + digits,
        }
    } else {
        let exponent_digits = exponent.unsigned_abs().to_string().len();
        // Go pads positive exponents to two digits (1e+21) but trims negative ones (1e-7).
        let exponent_digits = if exponent > 0 {
            exponent_digits.max(2)
        } else {
            exponent_digits
        };
        digits + usize::from(digits > 1) + 2 + exponent_digits
    };
    sign + width
}

/// A code fence that is open at some point of the text.
struct Fence {
    /// The opening line as written, info string included, to reopen it verbatim.
    line: String,
    marker: char,
    len: usize,
}

impl Fence {
    fn reopen_runes(&self) -> usize {
        self.line.chars().count() + 1
    }

    fn close_runes(&self) -> usize {
        self.len + 1
    }
}

/// The text parts: each at most `max_runes` runes; at least one, possibly empty.
fn split_text(message: &str, max_runes: usize) -> Vec<String> {
    let max = max_runes.max(1);
    let chars: Vec<char> = message.chars().collect();
    if chars.len() <= max {
        return vec![message.to_owned()];
    }
    let fences = FenceMap::new(&chars);
    let mut parts = Vec::new();
    let mut start = 0;
    let mut reopen: Option<&Fence> = None;
    while start < chars.len() {
        let room = max - reopen.map_or(0, Fence::reopen_runes);
        if chars.len() - start <= room {
            parts.push(assemble(reopen, &chars[start..], None));
            break;
        }
        // Reserve room for closing the fence the cut lands in; a shorter window may land in
        // another fence, so repeat until the reserve covers it. Fences too long to repeat
        // within half a post are left as Mattermost leaves them.
        let mut reserve = 0;
        let (end, next, close) = loop {
            let (end, next) = choose_cut(&chars, start, room - reserve);
            let close = fences
                .open_at(end)
                .filter(|f| f.reopen_runes() + f.close_runes() <= max / 2);
            match close {
                Some(f) if f.close_runes() > reserve => reserve = f.close_runes(),
                _ => break (end, next, close),
            }
        };
        parts.push(assemble(reopen, &chars[start..end], close));
        reopen = close;
        start = next;
    }
    parts
}

/// Where to end this part and where the next one starts: at the last line break, else the
/// last whitespace, among the final fifth of the window (the character just past it counts,
/// since cutting there leaves the part full); otherwise exactly at the window's end.
fn choose_cut(chars: &[char], start: usize, room: usize) -> (usize, usize) {
    let window_end = start + room;
    let near_end = start + (room - room / 5).max(1)..=window_end;
    let last = |pred: fn(&char) -> bool| near_end.clone().rev().find(|&i| pred(&chars[i]));
    match last(|c| *c == '\n').or_else(|| last(|c| c.is_whitespace())) {
        Some(i) => (i, i + 1),
        None => (window_end, window_end),
    }
}

fn assemble(reopen: Option<&Fence>, body: &[char], close: Option<&Fence>) -> String {
    let mut part = String::new();
    if let Some(fence) = reopen {
        part.push_str(&fence.line);
        part.push('\n');
    }
    part.extend(body);
    if let Some(fence) = close {
        part.push('\n');
        part.extend(std::iter::repeat_n(fence.marker, fence.len));
    }
    part
}

/// Which fence, if any, is open at each point of the text: the fence lines found in one pass,
/// CommonMark style (up to three spaces, three or more backticks or tildes; a closing line
/// uses the same marker, at least as long, and nothing else).
struct FenceMap {
    fences: Vec<Fence>,
    /// `(line start, index into fences)`, `None` where a fence closes.
    changes: Vec<(usize, Option<usize>)>,
}

impl FenceMap {
    fn new(chars: &[char]) -> Self {
        let mut map = FenceMap {
            fences: Vec::new(),
            changes: Vec::new(),
        };
        let mut open: Option<usize> = None;
        let mut start = 0;
        for line in chars.split(|c| *c == '\n') {
            let line_start = start;
            start += line.len() + 1;
            let Some((marker, len, rest)) = fence_marker(line) else {
                continue;
            };
            match open {
                None if marker == '~' || !rest.contains(&'`') => {
                    let text: String = line.iter().collect();
                    map.fences.push(Fence {
                        line: text.trim_end_matches('\r').to_owned(),
                        marker,
                        len,
                    });
                    open = Some(map.fences.len() - 1);
                    map.changes.push((line_start, open));
                }
                Some(i) => {
                    let fence = &map.fences[i];
                    if marker == fence.marker
                        && len >= fence.len
                        && rest.iter().all(|c| c.is_whitespace())
                    {
                        open = None;
                        map.changes.push((line_start, None));
                    }
                }
                None => {}
            }
        }
        map
    }

    /// The fence open just before `end`, counting every fence line that starts before it.
    fn open_at(&self, end: usize) -> Option<&Fence> {
        let before = self
            .changes
            .partition_point(|(line_start, _)| *line_start < end);
        let (_, open) = self.changes.get(before.checked_sub(1)?)?;
        open.map(|i| &self.fences[i])
    }
}

/// `(marker, run length, rest of the line)` when the line opens or could close a fence.
fn fence_marker(line: &[char]) -> Option<(char, usize, &[char])> {
    let indent = line.iter().take(4).take_while(|c| **c == ' ').count();
    if indent > 3 {
        return None;
    }
    let marker = *line.get(indent).filter(|c| matches!(c, '`' | '~'))?;
    let len = line[indent..].iter().take_while(|c| **c == marker).count();
    (len >= 3).then(|| (marker, len, &line[indent + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(message: &str, max: usize) -> Vec<String> {
        let parts = split_post(message, &Map::new(), vec![], max, 760_000).unwrap();
        parts.into_iter().map(|p| p.message).collect()
    }

    fn runes(s: &str) -> usize {
        s.chars().count()
    }

    #[test]
    fn mattermost_sizes_still_hold_for_uncuttable_text() {
        let cases = [
            (0, vec![0]),
            (1, vec![1]),
            (16383, vec![16383]),
            (16384, vec![16383, 1]),
            (32767, vec![16383, 16383, 1]),
        ];
        for (len, want) in cases {
            let got: Vec<usize> = texts(&"a".repeat(len), 16383)
                .iter()
                .map(|p| runes(p))
                .collect();
            assert_eq!(got, want, "{len}");
        }
    }

    #[test]
    fn multibyte_text_is_cut_between_characters() {
        let message = "é😀".repeat(10);
        let parts = texts(&message, 7);
        assert_eq!(parts.concat(), message);
        assert!(parts.iter().all(|p| runes(p) <= 7));
        assert_eq!(runes(&parts[0]), 7);
    }

    #[test]
    fn cuts_at_line_breaks_then_spaces_near_the_end() {
        let cases: &[(&str, usize, &[&str])] = &[
            // The line break in the last fifth wins over a later space.
            ("aaaaaaaa\nbb cc dd", 10, &["aaaaaaaa", "bb cc dd"]),
            // A break too early in the window is ignored in favour of a late space.
            ("a\nbbbbbbb cccc", 10, &["a\nbbbbbbb", "cccc"]),
            // The character just past the window may be the separator.
            ("aaaaaaaaaa bbb", 10, &["aaaaaaaaaa", "bbb"]),
            // No separator in the last fifth: hard cut.
            ("aa bbbbbbbbbbbb", 10, &["aa bbbbbbb", "bbbbb"]),
            ("aaaaaaaaa\n", 9, &["aaaaaaaaa"]),
        ];
        for (message, max, want) in cases {
            assert_eq!(texts(message, *max), *want, "{message:?}");
        }
    }

    #[test]
    fn code_fences_are_closed_and_reopened() {
        let code: String = (0..12).map(|i| format!("x = {i:02};\n")).collect();
        let message = format!("intro\n```rust\n{code}```\noutro");
        let parts = texts(&message, 60);
        assert!(parts.len() > 2, "{parts:?}");
        for (i, part) in parts.iter().enumerate() {
            assert!(runes(part) <= 60, "{part:?}");
            // Every part has balanced fences, so no part renders half a code block.
            assert_eq!(part.matches("```").count() % 2, 0, "{part:?}");
            if i > 0 && i + 1 < parts.len() {
                assert!(part.starts_with("```rust\n"), "{part:?}");
            }
        }
        assert!(parts[0].starts_with("intro\n```rust\n") && parts[0].ends_with(";\n```"));
        assert!(parts.last().unwrap().ends_with("```\noutro"));
        // Without the added fence lines and the dropped line breaks, nothing is lost.
        let unwrapped: Vec<&str> = parts
            .iter()
            .map(|p| p.trim_start_matches("```rust\n").trim_end_matches("\n```"))
            .collect();
        assert_eq!(unwrapped.join("\n"), message);
    }

    #[test]
    fn longer_fences_close_with_their_own_marker() {
        let message = format!("~~~~ sh\n{}~~~~", "echo hi\n".repeat(10));
        let parts = texts(&message, 40);
        assert!(parts[0].ends_with("\n~~~~"), "{parts:?}");
        assert!(parts[1].starts_with("~~~~ sh\n"), "{parts:?}");
        assert!(parts.iter().all(|p| runes(p) <= 40));
    }

    #[test]
    fn fence_lines_follow_commonmark() {
        let cases: &[(&str, Option<(char, usize)>)] = &[
            ("```", Some(('`', 3))),
            ("   ````go", Some(('`', 4))),
            ("    ```", None),
            ("``", None),
            ("~~~", Some(('~', 3))),
            ("text ```", None),
        ];
        for (line, want) in cases {
            let chars: Vec<char> = line.chars().collect();
            assert_eq!(
                fence_marker(&chars).map(|(m, l, _)| (m, l)),
                *want,
                "{line:?}"
            );
        }
        // An inline run of backticks with backticks after it is not an opening fence.
        let chars: Vec<char> = "```a`b\ncode".chars().collect();
        assert!(FenceMap::new(&chars).open_at(chars.len()).is_none());
    }

    #[test]
    fn go_json_runes_table() {
        let cases = [
            (json!(null), "null"),
            (json!(false), "false"),
            (json!("a<b>&c"), r#""a\u003cb\u003e\u0026c""#),
            (json!("q\"\\\n\u{1}\u{2028}é"), r#""q\"\\\n\u0001\u2028é""#),
            (json!(12345), "12345"),
            (json!(-7), "-7"),
            (json!(1.5), "1.5"),
            (json!(1.0), "1"),
            (json!(100.0), "100"),
            (json!(0.001), "0.001"),
            (json!(-0.25), "-0.25"),
            (json!(1e21), "1e+21"),
            (json!(1.5e300), "1.5e+300"),
            (json!(1e-7), "1e-7"),
            (json!(-2.5e-10), "-2.5e-10"),
            (json!(0.0), "0"),
            (json!([]), "[]"),
            (json!([1, "x"]), r#"[1,"x"]"#),
            (json!({}), "{}"),
            (json!({"a": 1, "b": [true]}), r#"{"a":1,"b":[true]}"#),
        ];
        for (value, go) in cases {
            assert_eq!(go_json_runes(&value), runes(go), "{value}");
        }
    }

    fn attachment(text: &str) -> Attachment {
        Attachment {
            text: text.to_owned(),
            ..Default::default()
        }
    }

    fn props_runes(base: &Map<String, Value>, attachments: &[Attachment]) -> usize {
        let mut props = base.clone();
        props.insert(
            "attachments".into(),
            serde_json::to_value(attachments).unwrap(),
        );
        go_json_runes(&Value::Object(props))
    }

    #[test]
    fn attachments_fill_the_last_part_then_new_ones() {
        let base = json!({"from_webhook": "true"})
            .as_object()
            .cloned()
            .unwrap();
        let one = props_runes(&base, &[attachment("x")]);
        let two = props_runes(&base, &[attachment("x"), attachment("y")]);
        // Two fit exactly; the third starts a part with an empty message.
        let atts = vec![attachment("x"), attachment("y"), attachment("z")];
        let parts = split_post(&"m".repeat(5), &base, atts, 3, two).unwrap();
        let shape: Vec<(String, usize)> = parts
            .iter()
            .map(|p| (p.message.clone(), p.attachments.len()))
            .collect();
        assert_eq!(shape, [("mmm".into(), 0), ("mm".into(), 2), ("".into(), 1)]);
        assert!(one < two);
        // The size formula matches the real props JSON, with or without base props.
        for base in [Map::new(), base] {
            let atts = vec![attachment("a<b"), attachment("ü")];
            let exact = props_runes(&base, &atts);
            assert_eq!(
                split_post("", &base, atts.clone(), 10, exact)
                    .unwrap()
                    .len(),
                1
            );
            assert_eq!(split_post("", &base, atts, 10, exact - 1).unwrap().len(), 2);
        }
    }

    #[test]
    fn a_lone_attachment_too_big_is_truncated_or_refused() {
        let base = Map::new();
        let budget = props_runes(&base, &[attachment("abc")]);
        let parts = split_post("hi", &base, vec![attachment("abcdef")], 100, budget).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].attachments[0].text, "abc");
        // `<` weighs six runes, so dropping one `<` is enough where Mattermost would drop six.
        let parts = split_post("", &base, vec![attachment("abc<")], 100, budget + 2).unwrap();
        assert_eq!(parts[0].attachments[0].text, "abc");
        let too_big = Attachment {
            title: "t".repeat(100),
            ..attachment("abc")
        };
        assert_eq!(
            split_post("", &base, vec![too_big], 100, budget),
            Err(SplitError::PropsTooLong)
        );
    }

    #[test]
    fn base_props_over_budget_are_refused() {
        let base = json!({"k": "<<<<"}).as_object().cloned().unwrap();
        let size = go_json_runes(&Value::Object(base.clone()));
        assert_eq!(size, 32);
        assert!(split_post("x", &base, vec![], 10, size).is_ok());
        assert_eq!(
            split_post("x", &base, vec![], 10, size - 1),
            Err(SplitError::PropsTooLong)
        );
        // The base's own `attachments` key does not count: parts carry their own.
        let mut with_attachments = base.clone();
        with_attachments.insert("attachments".into(), json!(["x".repeat(50)]));
        assert!(split_post("x", &with_attachments, vec![], 10, size).is_ok());
    }
}
