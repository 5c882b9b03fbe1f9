//! Capture (issue 25): each incoming hook keeps its last [`KEEP`] requests, secrets redacted,
//! for `GET /api/v4/hooks/incoming/{id}/samples` and for previews.
//!
//! Layout: one kv record per request under `incoming_sample/{hook}/{key}`, where the key
//! starts with the time counted down from `i64::MAX`, so a prefix listing reads newest
//! first. Cost per request: one write (with an expiry, so an idle hook's samples go away),
//! one listing of the keys past [`KEEP`], and once full one delete.

use crate::api::Request;
use crate::host::Host;
use serde::{Deserialize, Serialize};

/// Requests kept per hook.
pub const KEEP: u32 = 20;
/// The body kept of each, in bytes.
pub const BODY_CAP: usize = 1024 * 1024;
/// A sample's life when the hook gets no more requests.
const TTL_SECONDS: u64 = 30 * 24 * 3600;
const REDACTED: &str = "[redacted]";

fn prefix(hook_id: &str) -> String {
    format!("incoming_sample/{hook_id}/")
}

/// One recorded request and what the hook did with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sample {
    pub id: String,
    pub create_at: i64,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    /// The body as text (invalid UTF-8 replaced), cut at [`BODY_CAP`].
    pub body: String,
    pub body_truncated: bool,
    pub status: u16,
    pub post_ids: Vec<String>,
    /// The error the sender was answered (`id: detail`), if any.
    pub error: Option<String>,
}

/// Whether a header's value is a credential: authorization, cookies, tokens, signatures,
/// secrets and keys.
fn secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["authorization", "cookie"].contains(&name.as_str())
        || name == "proxy-authorization"
        || [
            "token",
            "signature",
            "secret",
            "api-key",
            "apikey",
            "password",
        ]
        .iter()
        .any(|word| name.contains(word))
}

/// The query with credential-looking parameters' values redacted.
fn redacted_query(query: &str) -> String {
    url::form_urlencoded::parse(query.as_bytes())
        .fold(
            url::form_urlencoded::Serializer::new(String::new()),
            |mut out, (k, v)| {
                let value = if secret_header(&k) || k.eq_ignore_ascii_case("key") {
                    REDACTED.into()
                } else {
                    v
                };
                out.append_pair(&k, &value);
                out
            },
        )
        .finish()
}

impl Sample {
    pub fn of(req: &Request, now: i64) -> Sample {
        let headers = req
            .headers
            .iter()
            .map(|(name, value)| {
                let value = if secret_header(name) {
                    REDACTED.to_owned()
                } else {
                    value.clone()
                };
                (name.to_ascii_lowercase(), value)
            })
            .collect();
        let cut = req.body.len().min(BODY_CAP);
        Sample {
            create_at: now,
            method: req.method.clone(),
            path: req.path.clone(),
            query: redacted_query(&req.query),
            headers,
            body: String::from_utf8_lossy(&req.body[..cut]).into_owned(),
            body_truncated: cut < req.body.len(),
            ..Sample::default()
        }
    }
}

/// Records a request to the hook and drops what is past the last [`KEEP`]. Best effort: a
/// failed write never fails the sender's request.
pub fn record(host: &dyn Host, hook_id: &str, mut sample: Sample) {
    let countdown = i64::MAX - sample.create_at.max(0);
    // The random tail keeps two requests in the same millisecond apart.
    sample.id = format!("{countdown:019}{}", &crate::ids::new_id()[..6]);
    let prefix = prefix(hook_id);
    let Ok(value) = serde_json::to_vec(&sample) else {
        return;
    };
    if host
        .kv_set_with_expiry(&format!("{prefix}{}", sample.id), &value, TTL_SECONDS)
        .is_err()
    {
        return;
    }
    if let Ok(old) = host.kv_list(&prefix, KEEP, 100) {
        for key in old {
            let _ = host.kv_delete(&key);
        }
    }
}

/// The hook's samples, newest first.
pub fn list(host: &dyn Host, hook_id: &str) -> Vec<Sample> {
    let prefix = prefix(hook_id);
    host.kv_list(&prefix, 0, KEEP)
        .unwrap_or_default()
        .iter()
        .filter_map(|key| host.kv_get(key).ok().flatten())
        .filter_map(|value| serde_json::from_slice(&value).ok())
        .collect()
}

/// One sample by id.
pub fn get(host: &dyn Host, hook_id: &str, id: &str) -> Option<Sample> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let value = host.kv_get(&format!("{}{id}", prefix(hook_id))).ok()??;
    serde_json::from_slice(&value).ok()
}

/// Drops a deleted hook's samples.
pub fn forget(host: &dyn Host, hook_id: &str) {
    let prefix = prefix(hook_id);
    while let Ok(keys) = host.kv_list(&prefix, 0, 100) {
        if keys.is_empty() || keys.iter().any(|k| host.kv_delete(k).is_err()) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    fn request(n: usize) -> Request {
        Request {
            method: "POST".into(),
            path: "/hooks/h".into(),
            query: "token=abc&env=prod".into(),
            headers: vec![
                ("Authorization".into(), "Bearer s3cret".into()),
                ("X-Hub-Signature-256".into(), "sha256=ff".into()),
                ("X-Gitlab-Token".into(), "tok".into()),
                ("Cookie".into(), "a=b".into()),
                ("X-Request".into(), format!("{n}")),
            ],
            body: br#"{"n": 1}"#.to_vec(),
            ..Request::default()
        }
    }

    #[test]
    fn the_last_twenty_newest_first_redacted() {
        let host = FakeHost::default();
        for n in 0..25 {
            record(&host, "h", Sample::of(&request(n), 1_000 + n as i64));
        }
        record(&host, "other", Sample::of(&request(99), 5));
        let samples = list(&host, "h");
        assert_eq!(samples.len(), 20);
        assert_eq!(samples[0].create_at, 1_024);
        assert_eq!(samples[19].create_at, 1_005);
        assert_eq!(
            host.kv_list("incoming_sample/h/", 0, 100).unwrap().len(),
            20
        );
        let text = serde_json::to_string(&samples).unwrap();
        for secret in ["s3cret", "sha256=ff", "tok\"", "a=b", "abc"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("env=prod"));
        assert_eq!(get(&host, "h", &samples[3].id), Some(samples[3].clone()));
        forget(&host, "h");
        assert!(list(&host, "h").is_empty());
        assert_eq!(list(&host, "other").len(), 1);
    }

    #[test]
    fn the_body_is_capped() {
        let mut req = request(0);
        req.body = vec![b'x'; BODY_CAP + 10];
        let sample = Sample::of(&req, 1);
        assert_eq!(sample.body.len(), BODY_CAP);
        assert!(sample.body_truncated);
    }
}
