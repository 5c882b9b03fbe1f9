//! What every call to an integration shares: Go's form encoding (keys sorted,
//! `+` for spaces). Signatures are the host's (`egress.signing`), made when
//! it sends.

/// Go's `url.Values.Encode`: keys sorted (stable, so repeated keys keep their
/// order), each key and value query-escaped.
pub fn form_body(mut pairs: Vec<(String, String)>) -> String {
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Go's `url.QueryEscape`: unreserved bytes stay, space becomes `+`, every
/// other byte `%XX` in upper case.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_matches_go() {
        let pairs = vec![
            ("text".to_string(), "deploy staging & more".to_string()),
            ("b".to_string(), "1".to_string()),
            ("a".to_string(), "x*~/é".to_string()),
            ("b".to_string(), "2".to_string()),
        ];
        assert_eq!(
            form_body(pairs),
            "a=x%2A~%2F%C3%A9&b=1&b=2&text=deploy+staging+%26+more"
        );
    }
}
