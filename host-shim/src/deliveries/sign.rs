//! Request signatures the host adds at send time, so every attempt (a retry
//! hours later too) carries a fresh timestamp: Slack's and Standard Webhooks'.

use crate::store::deliveries::StoredSigning;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// Slack's: `X-Slack-Request-Timestamp: <unix seconds>` and
/// `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">`.
pub fn slack(secret: &str, timestamp_secs: i64, body: &[u8]) -> Vec<(String, String)> {
    let mut mac = mac(secret.as_bytes());
    mac.update(format!("v0:{timestamp_secs}:").as_bytes());
    mac.update(body);
    vec![
        (
            "X-Slack-Request-Timestamp".to_string(),
            timestamp_secs.to_string(),
        ),
        (
            "X-Slack-Signature".to_string(),
            format!("v0={}", hex::encode(mac.finalize().into_bytes())),
        ),
    ]
}

/// One Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of
/// `<id>.<timestamp>.<body>`, keyed by the base64-decoded part of a
/// `whsec_` secret. `None` for a secret that is not base64.
pub fn standard_webhooks_signature(
    secret: &str,
    id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> Option<String> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .ok()?;
    let mut mac = mac(&key);
    mac.update(format!("{id}.{timestamp_secs}.").as_bytes());
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The three Standard Webhooks headers; one signature per secret,
/// space-separated, as the spec has it for rotations.
pub fn standard_webhooks(
    secrets: &[String],
    id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    let signatures: Vec<String> = secrets
        .iter()
        .filter_map(|s| standard_webhooks_signature(s, id, timestamp_secs, body))
        .collect();
    if signatures.is_empty() {
        return Vec::new();
    }
    vec![
        ("webhook-timestamp".to_string(), timestamp_secs.to_string()),
        ("webhook-signature".to_string(), signatures.join(" ")),
    ]
}

/// Every header the job's signing asks for, at `timestamp_secs`.
pub fn headers(
    signing: &[StoredSigning],
    delivery_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in signing {
        match s {
            StoredSigning::Slack(secret) if !secret.is_empty() => {
                out.extend(slack(secret, timestamp_secs, body))
            }
            StoredSigning::Slack(_) => {}
            StoredSigning::StandardWebhooks(secrets) => out.extend(standard_webhooks(
                secrets,
                delivery_id,
                timestamp_secs,
                body,
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_matches_its_documented_example() {
        // The worked example from Slack's "Verifying requests" guide.
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let headers = slack(secret, 1531420618, body.as_bytes());
        assert_eq!(headers[0].1, "1531420618");
        assert_eq!(
            headers[1].1,
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
    }

    /// The published test vector of the Standard Webhooks / Svix libraries
    /// (svix-webhooks `TestWebhookSign`, used across the verifier suites).
    #[test]
    fn standard_webhooks_matches_the_published_vector() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            standard_webhooks_signature(secret, id, 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        // During a rotation both secrets sign, space-separated.
        let other = format!("whsec_{}", STANDARD.encode(b"another secret of the hook"));
        let headers = standard_webhooks(&[other, secret.to_string()], id, 1614265330, body);
        let signature = &headers[1].1;
        let parts: Vec<&str> = signature.split(' ').collect();
        assert_eq!(parts.len(), 2, "{signature}");
        assert_eq!(parts[1], "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(
            headers[0],
            ("webhook-timestamp".into(), "1614265330".into())
        );
        assert!(standard_webhooks_signature("whsec_!!", id, 1, body).is_none());
    }
}
