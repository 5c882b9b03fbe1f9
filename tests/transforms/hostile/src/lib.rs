//! A transform component for the tests, built against `wit/transform/`. The
//! query's `mode=…`, else the request path's last segment, picks what it does:
//!
//! - `ok`: posts `{"text": …}` naming the method, path, query, the
//!   `x-test` header and the body, so a test sees what reached it;
//! - `drop`: answers `ok(none)`; `err`: answers `err("refused by the test transform")`;
//! - `trap`: panics (an `unreachable` trap); `loop`: spins forever;
//! - `memory`: allocates until it exhausts its memory;
//! - `text`: answers text that is not JSON;
//! - `probe`: posts what of the host it can see (environment, arguments,
//!   the filesystem root), for the sandbox tests.

mod bindings {
    // The generated export glue takes the request record's fields flattened.
    #![allow(clippy::too_many_arguments)]
    wit_bindgen::generate!({
        world: "transformer",
        path: "../../../wit/transform",
        pub_export_macro: true,
    });
}

use bindings::{Guest, Request};

struct Hostile;

impl Guest for Hostile {
    fn transform(request: Request) -> Result<Option<String>, String> {
        let from_query = request
            .query
            .split('&')
            .find_map(|pair| pair.strip_prefix("mode="));
        let mode = from_query
            .or_else(|| request.path.rsplit('/').next())
            .unwrap_or("")
            .to_string();
        match mode.as_str() {
            "ok" => {
                let header = request
                    .headers
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("x-test"))
                    .map(|(_, value)| value.as_str())
                    .unwrap_or("");
                let text = format!(
                    "{} {}?{} x-test={} body={}",
                    request.method,
                    request.path,
                    request.query,
                    header,
                    String::from_utf8_lossy(&request.body)
                );
                Ok(Some(json_text_payload(&text)))
            }
            "drop" => Ok(None),
            "err" => Err("refused by the test transform".into()),
            "trap" => panic!("the test transform traps"),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    // Touch every page so nothing is left lazily unmapped.
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "text" => Ok(Some("this is not JSON".into())),
            "probe" => {
                let env = std::env::vars().count();
                let args = std::env::args().count();
                let root = match std::fs::read_dir("/") {
                    Ok(_) => "readable",
                    Err(_) => "denied",
                };
                let tmp = match std::fs::write("/tmp/switchboard-probe", b"x") {
                    Ok(()) => "written",
                    Err(_) => "denied",
                };
                Ok(Some(json_text_payload(&format!(
                    "env={env} args={args} root={root} write={tmp}"
                ))))
            }
            other => Err(format!("unknown mode {other:?}")),
        }
    }
}

/// `{"text": text}` with `text` escaped as JSON requires (no serde here, to
/// keep the component small).
fn json_text_payload(text: &str) -> String {
    let mut out = String::from("{\"text\":\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push_str("\"}");
    out
}

bindings::export!(Hostile with_types_in bindings);
