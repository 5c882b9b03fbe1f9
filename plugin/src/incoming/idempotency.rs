//! `Idempotency-Key` on `POST /hooks/{id}`: a retried request creates nothing new for 24 hours.
//! The key fixes the post ids, so a retry (even one racing the first) finds the posts made.

use serde::{Deserialize, Serialize};

use crate::api::{ApiError, Request};
use crate::host::Host;

/// How long a key keeps meaning the same request.
pub const WINDOW_MILLIS: i64 = 24 * 60 * 60 * 1000;
/// The record's expiry in the host's kv: the window.
const TTL_SECONDS: u64 = (WINDOW_MILLIS / 1000) as u64;
const MAX_KEY_LEN: usize = 255;

#[derive(Serialize, Deserialize)]
struct Record {
    /// When the key was first seen; part of the seed, so a key reused after the window
    /// makes new posts.
    at: i64,
}

/// The post-id seed for this request at `now`: `None` without the header, else one derived
/// from the hook, the key and when the key was first seen.
pub fn seed(
    host: &dyn Host,
    req: &Request,
    hook_id: &str,
    now: i64,
) -> Result<Option<String>, ApiError> {
    let Some(key) = req.header("idempotency-key") else {
        return Ok(None);
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::new(
            400,
            "web.incoming_webhook.idempotency_key.app_error",
            "The Idempotency-Key header must be 1 to 255 visible ASCII characters.",
        ));
    }
    let kv_key = record_key(hook_id, key);
    let store_error = |e: crate::host::HostError| ApiError::host("app.plugin.kv.app_error", &e);
    // Two tries: a lost race means another request just wrote the record we want.
    for _ in 0..2 {
        let old = host.kv_get(&kv_key).map_err(store_error)?;
        let current = old
            .as_deref()
            .and_then(|raw| serde_json::from_slice::<Record>(raw).ok())
            .filter(|r| now - r.at < WINDOW_MILLIS);
        if let Some(record) = current {
            return Ok(Some(seed_of(hook_id, key, record.at)));
        }
        let fresh = serde_json::to_vec(&Record { at: now }).unwrap_or_default();
        // The record is worth nothing after the window: the host drops it then.
        if host
            .kv_compare_and_set_with_expiry(&kv_key, old.as_deref(), Some(&fresh), TTL_SECONDS)
            .map_err(store_error)?
        {
            return Ok(Some(seed_of(hook_id, key, now)));
        }
    }
    Err(ApiError::new(
        409,
        "web.incoming_webhook.idempotency_conflict.app_error",
        "Another request with this Idempotency-Key is being handled; retry it.",
    ))
}

/// The kv key: the sender's key is hashed, so any characters and lengths fit.
fn record_key(hook_id: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("incoming_idempotency/{hook_id}/{hex}")
}

fn seed_of(hook_id: &str, key: &str, at: i64) -> String {
    format!("incoming-idempotency\0{hook_id}\0{key}\0{at}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    fn request(key: Option<&str>) -> Request {
        let mut req = Request::default();
        if let Some(key) = key {
            req.headers.push(("Idempotency-Key".into(), key.into()));
        }
        req
    }

    #[test]
    fn one_key_one_seed_within_the_window() {
        let host = FakeHost::default();
        let at = |key: Option<&str>, hook: &str, now: i64| seed(&host, &request(key), hook, now);
        assert_eq!(at(None, "h", 1).unwrap(), None);
        let first = at(Some("abc"), "h", 1).unwrap().unwrap();
        let again = at(Some("abc"), "h", WINDOW_MILLIS).unwrap().unwrap();
        assert_eq!(first, again);
        assert_ne!(first, at(Some("abc"), "h2", 2).unwrap().unwrap());
        assert_ne!(first, at(Some("abd"), "h", 2).unwrap().unwrap());
        let later = at(Some("abc"), "h", 1 + WINDOW_MILLIS).unwrap().unwrap();
        assert_ne!(first, later, "a key reused after 24 hours is a new request");
    }

    #[test]
    fn the_record_expires_with_the_window() {
        let host = FakeHost::default();
        seed(&host, &request(Some("abc")), "h", 1).unwrap();
        let ttl = host.kv_ttl.borrow();
        let (key, seconds) = ttl.iter().next().expect("an expiring record");
        assert!(key.starts_with("incoming_idempotency/h/"), "{key}");
        assert_eq!(*seconds, 24 * 60 * 60);
    }

    #[test]
    fn bad_keys_are_refused() {
        let host = FakeHost::default();
        for bad in ["", "has space", &"x".repeat(256), "é"] {
            let err = seed(&host, &request(Some(bad)), "h", 1).unwrap_err();
            assert_eq!(err.status, 400, "{bad:?}");
            assert_eq!(err.id, "web.incoming_webhook.idempotency_key.app_error");
        }
    }
}
