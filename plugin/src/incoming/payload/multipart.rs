// A small `multipart/form-data` reader (RFC 7578) for webhook senders that post form fields:
// it yields the named text fields and skips files, following Go's `mime/multipart` framing.

use super::media_type;

/// The `(name, value)` pairs of the body's text fields, in order. Parts without a form-data
/// name are skipped and file parts (with a `filename`) are ignored, as Go's `ReadForm` does.
pub(super) fn form_values(body: &[u8], boundary: &str) -> Result<Vec<(String, String)>, String> {
    if boundary.is_empty() {
        return Err("multipart: empty boundary".to_owned());
    }
    let dash = [b"--", boundary.as_bytes()].concat();
    let mut values = Vec::new();
    let Some((nl, mut at)) = first_delimiter(body, &dash)? else {
        return Ok(values);
    };
    loop {
        let (headers, content_start) = headers(body, at)?;
        let (content_end, after_dash) =
            content_end(body, content_start, nl, &dash).ok_or("multipart: NextPart: EOF")?;
        if let Some(name) = field_name(&headers) {
            let content = String::from_utf8_lossy(&body[content_start..content_end]);
            values.push((name, content.into_owned()));
        }
        match delimiter_kind(&body[after_dash..], nl) {
            Some(Delimiter::Next(len)) => at = after_dash + len,
            Some(Delimiter::Close) => return Ok(values),
            None => return Err("multipart: expecting a new Part".to_owned()),
        }
    }
}

enum Delimiter {
    /// Another part follows, after this many bytes of the delimiter line.
    Next(usize),
    Close,
}

/// What the bytes just after a `--boundary` say: LWSP and a line break before another part,
/// or `--` for the close delimiter.
fn delimiter_kind(rest: &[u8], nl: &[u8]) -> Option<Delimiter> {
    if let Some(after) = rest.strip_prefix(b"--") {
        let after = skip_lwsp(after);
        return (after.is_empty() || after.starts_with(b"\n") || after.starts_with(b"\r\n"))
            .then_some(Delimiter::Close);
    }
    let after = skip_lwsp(rest);
    after
        .starts_with(nl)
        .then(|| Delimiter::Next(rest.len() - after.len() + nl.len()))
}

/// Skips the preamble up to the first delimiter line, which also fixes the line ending:
/// senders that use bare LF throughout are accepted, as Go accepts them. `None` means the
/// close delimiter came first: an empty form.
fn first_delimiter(body: &[u8], dash: &[u8]) -> Result<Option<(&'static [u8], usize)>, String> {
    let mut at = 0;
    while at < body.len() {
        let line_end = find(body, b"\n", at).map_or(body.len(), |i| i + 1);
        if let Some(rest) = body[at..line_end].strip_prefix(dash) {
            match delimiter_kind(rest, b"\r\n") {
                Some(Delimiter::Close) => return Ok(None),
                Some(Delimiter::Next(_)) => return Ok(Some((b"\r\n", line_end))),
                None if skip_lwsp(rest) == b"\n" => return Ok(Some((b"\n", line_end))),
                None => {}
            }
        }
        at = line_end;
    }
    Err("multipart: NextPart: EOF".to_owned())
}

/// The part's header lines (folded continuations joined), and where its content starts.
fn headers(body: &[u8], mut at: usize) -> Result<(Vec<(String, String)>, usize), String> {
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let Some(end) = find(body, b"\n", at) else {
            return Err("multipart: unexpected EOF in part headers".to_owned());
        };
        let raw = &body[at..end];
        let line = String::from_utf8_lossy(raw.strip_suffix(b"\r").unwrap_or(raw));
        at = end + 1;
        if line.is_empty() {
            return Ok((headers, at));
        }
        if line.starts_with([' ', '\t'])
            && let Some((_, value)) = headers.last_mut()
        {
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed MIME header line: {line}"));
        };
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
            return Err(format!("malformed MIME header line: {line}"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
}

/// Where the part's content ends and where the bytes after its closing `--boundary` begin.
/// A boundary counts only when followed by `--`, LWSP or a line break, so content may
/// contain the boundary string with other text after it.
fn content_end(body: &[u8], start: usize, nl: &[u8], dash: &[u8]) -> Option<(usize, usize)> {
    let is_delimiter = |after: usize| match body.get(after) {
        None | Some(b' ' | b'\t' | b'\r' | b'\n') => true,
        Some(b'-') => body.get(after + 1) == Some(&b'-'),
        _ => false,
    };
    // An empty part may have its delimiter straight after the headers.
    if body[start..].starts_with(dash) && is_delimiter(start + dash.len()) {
        return Some((start, start + dash.len()));
    }
    let nl_dash = [nl, dash].concat();
    let mut from = start;
    while let Some(i) = find(body, &nl_dash, from) {
        if is_delimiter(i + nl_dash.len()) {
            return Some((i, i + nl_dash.len()));
        }
        from = i + 1;
    }
    None
}

/// The form field name of a `Content-Disposition: form-data` text part.
fn field_name(headers: &[(String, String)]) -> Option<String> {
    let (_, disposition) = headers
        .iter()
        .rev()
        .find(|(name, _)| name == "content-disposition")?;
    let disposition = media_type::parse(disposition).ok()?;
    if disposition.essence != "form-data"
        || disposition.param("filename").is_some_and(|f| !f.is_empty())
    {
        return None;
    }
    disposition
        .param("name")
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

fn skip_lwsp(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &s[n..]
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(body: &str) -> Result<Vec<(String, String)>, String> {
        form_values(body.as_bytes(), "XyZ")
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_text_fields() {
        let crlf = "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nline one\r\nline two\r\n--XyZ\r\nContent-Disposition: form-data; name=username\r\nContent-Type: text/plain\r\n\r\nbot\r\n--XyZ--\r\nepilogue";
        assert_eq!(
            values(crlf).unwrap(),
            pairs(&[("text", "line one\r\nline two"), ("username", "bot")])
        );
        let lf = "--XyZ \n content-disposition: form-data; name=\"text\"\n\nhi\n--XyZ--";
        // A leading space makes that line a continuation of nothing: malformed.
        assert!(values(lf).is_err());
        let lf = "--XyZ\ncontent-disposition: form-data; name=\"text\"\n\nhi\n--XyZ--\n";
        assert_eq!(values(lf).unwrap(), pairs(&[("text", "hi")]));
    }

    #[test]
    fn skips_files_and_unnamed_parts() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\ndata\r\n--XyZ\r\nContent-Disposition: attachment; name=\"x\"\r\n\r\nx\r\n--XyZ\r\nX-Other: 1\r\n\r\ny\r\n--XyZ\r\nContent-Disposition: form-data;\r\n name=\"text\"\r\n\r\n\r\n--XyZ--";
        assert_eq!(values(body).unwrap(), pairs(&[("text", "")]));
    }

    #[test]
    fn boundary_text_inside_content_is_content() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\na\r\n--XyZW\r\nb\r\n--XyZ--\r\n";
        assert_eq!(
            values(body).unwrap(),
            pairs(&[("text", "a\r\n--XyZW\r\nb")])
        );
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let cases = [
            "",
            "no boundary at all",
            "--XyZ\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nunterminated",
            "--XyZ\r\nContent-Disposition: form-data; name=\"text\"\r\n",
            "--XyZ\r\nbad header line\r\n\r\nx\r\n--XyZ--",
            "--XyZ\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nx\r\n--XyZ junk\r\n",
        ];
        for body in cases {
            assert!(values(body).is_err(), "{body:?}");
        }
        assert!(form_values(b"--\r\n--", "").is_err());
    }

    #[test]
    fn close_delimiter_first_is_an_empty_form() {
        assert_eq!(values("--XyZ--\r\n").unwrap(), vec![]);
        assert_eq!(values("--XyZ--").unwrap(), vec![]);
    }
}
