// `Content-Type` and `Content-Disposition` parsing with the strictness of Go's
// `mime.ParseMediaType`, whose refusals Mattermost reports as form-parse errors.

/// A media type (or disposition), lower-cased, with its parameters (names lower-cased).
#[derive(Debug, PartialEq)]
pub(super) struct MediaType {
    pub essence: String,
    params: Vec<(String, String)>,
}

impl MediaType {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub(super) fn parse(header: &str) -> Result<MediaType, String> {
    let (base, mut rest) = header.split_at(header.find(';').unwrap_or(header.len()));
    let essence = base.trim().to_ascii_lowercase();
    check_essence(&essence)?;
    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let Some((name, value, after)) = parameter(rest) else {
            // Go tolerates trailing semicolons and nothing else.
            if rest.trim() == ";" {
                break;
            }
            return Err("mime: invalid media parameter".to_owned());
        };
        match params.iter().find(|(n, _)| *n == name) {
            Some((_, earlier)) if *earlier != value => {
                return Err("mime: duplicate parameter name".to_owned());
            }
            Some(_) => {}
            None => params.push((name, value)),
        }
        rest = after;
    }
    Ok(MediaType { essence, params })
}

/// `type` or `type/subtype`, each a token, and nothing after.
fn check_essence(essence: &str) -> Result<(), String> {
    let (main, rest) = token(essence);
    if main.is_empty() {
        return Err("mime: no media type".to_owned());
    }
    if rest.is_empty() {
        return Ok(());
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Err("mime: expected slash after first token".to_owned());
    };
    let (sub, rest) = token(rest);
    if sub.is_empty() {
        return Err("mime: expected token after slash".to_owned());
    }
    if !rest.is_empty() {
        return Err("mime: unexpected content after media subtype".to_owned());
    }
    Ok(())
}

/// `; name = value` at the start of `s`; `None` when it is not one.
fn parameter(s: &str) -> Option<(String, String, &str)> {
    let s = s.trim_start().strip_prefix(';')?.trim_start();
    let (name, s) = token(s);
    if name.is_empty() {
        return None;
    }
    let s = s.trim_start().strip_prefix('=')?.trim_start();
    let (value, after) = value(s)?;
    Some((name.to_ascii_lowercase(), value, after))
}

fn value(s: &str) -> Option<(String, &str)> {
    let Some(quoted) = s.strip_prefix('"') else {
        let (value, after) = token(s);
        return (!value.is_empty()).then(|| (value.to_owned(), after));
    };
    let mut out = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &quoted[i + 1..])),
            '\r' | '\n' => return None,
            '\\' if quoted[i + 1..].starts_with(is_tspecial) => {
                if let Some((_, escaped)) = chars.next() {
                    out.push(escaped);
                }
            }
            c => out.push(c),
        }
    }
    None
}

fn token(s: &str) -> (&str, &str) {
    s.split_at(s.find(|c| !is_token_char(c)).unwrap_or(s.len()))
}

fn is_token_char(c: char) -> bool {
    c > ' ' && c < '\x7f' && !is_tspecial(c)
}

fn is_tspecial(c: char) -> bool {
    "()<>@,;:\\\"/[]?=".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_table() {
        type Params = &'static [(&'static str, &'static str)];
        let cases: &[(&str, Option<(&str, Params)>)] = &[
            ("application/json", Some(("application/json", &[]))),
            ("Application/JSON", Some(("application/json", &[]))),
            (" text/plain ", Some(("text/plain", &[]))),
            ("text", Some(("text", &[]))),
            ("mimetype/wrong", Some(("mimetype/wrong", &[]))),
            (
                "application/json; charset=utf-8",
                Some(("application/json", &[("charset", "utf-8")])),
            ),
            (
                "application/json;charset=UTF-8",
                Some(("application/json", &[("charset", "UTF-8")])),
            ),
            ("application/json;", Some(("application/json", &[]))),
            (
                "application/json; charset=utf-8;",
                Some(("application/json", &[])),
            ),
            (
                "multipart/form-data; BOUNDARY=\"a b\\\"c\"",
                Some(("multipart/form-data", &[("boundary", "a b\"c")])),
            ),
            ("a/b; x=1; x=1", Some(("a/b", &[("x", "1")]))),
            ("form-data; name=\"\"", Some(("form-data", &[("name", "")]))),
            ("application/x-www-form-urlencoded wrongtext", None),
            ("application/json; charset", None),
            ("application/json; charset=", None),
            ("application/json; =utf-8", None),
            ("application/json; charset=\"utf-8", None),
            ("application/json charset=utf-8", None),
            ("a/b; x=1; x=2", None),
            ("/json", None),
            ("application/", None),
            ("", None),
            ("   ", None),
            ("applicätion/json", None),
        ];
        for (header, want) in cases {
            let got = parse(header).ok();
            match want {
                None => assert_eq!(got, None, "{header:?}"),
                Some((essence, params)) => {
                    let got = got.unwrap_or_else(|| panic!("{header:?} failed"));
                    assert_eq!(got.essence, *essence, "{header:?}");
                    for (name, value) in *params {
                        assert_eq!(got.param(name), Some(*value), "{header:?}");
                    }
                }
            }
        }
    }
}
