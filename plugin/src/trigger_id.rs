//! Trigger ids (spec §8.1): the long, signed form integrations receive and hand
//! back to open a dialog, and the 26-character client form the user's client sees.
//!
//! Mattermost signs with an ECDSA P-256 key; the host offers no key import, so
//! the signature here is an HMAC-SHA256 under a secret the plugin keeps in kv.
//! The layout is Mattermost's: base64 of `clientId:userId:unixMillis:` followed
//! by the base64 signature, so integrations that only pass it along see no change.

use crate::api::ApiError;
use crate::host::Host;
use crate::ids;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Where the signing secret lives in the plugin's kv.
const SECRET_KEY: &str = "trigger_id/secret";

/// A freshly issued trigger id in both forms.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerId {
    /// The 26-character id returned to the invoking client.
    pub client_id: String,
    /// The signed form sent to the integration.
    pub signed: String,
}

/// What a valid signed trigger id says.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub client_id: String,
    pub user_id: String,
    pub issued_at_millis: i64,
}

/// Issues a trigger id for `user_id` at `now_millis`.
pub fn generate(host: &dyn Host, user_id: &str) -> Result<TriggerId, ApiError> {
    let secret = secret(host)?;
    let client_id = ids::new_id();
    let payload = format!("{client_id}:{user_id}:{}:", host.now_millis());
    let signature = STANDARD.encode(sign(&secret, payload.as_bytes()));
    Ok(TriggerId {
        signed: STANDARD.encode(format!("{payload}{signature}")),
        client_id,
    })
}

/// Checks a signed trigger id: layout, age (at most `lifetime_secs`, the
/// `OutgoingIntegrationRequestsTimeout`) and signature, with Mattermost's ids.
pub fn decode(host: &dyn Host, signed: &str, lifetime_secs: u32) -> Result<Decoded, ApiError> {
    let fail = |what: &str, message: &str| {
        ApiError::new(
            400,
            &format!("interactive_message.decode_trigger_id.{what}"),
            message,
        )
    };
    let bytes = STANDARD.decode(signed).map_err(|_| {
        fail(
            "base64_decode_failed",
            "Failed to decode base64 for trigger ID.",
        )
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let parts: Vec<&str> = text.split(':').collect();
    let [client_id, user_id, millis, signature] = parts.as_slice() else {
        return Err(fail("missing_data", "Trigger ID missing required data."));
    };
    let issued_at_millis: i64 = millis
        .parse()
        .map_err(|_| fail("missing_data", "Trigger ID missing required data."))?;
    if host.now_millis() - issued_at_millis > i64::from(lifetime_secs) * 1000 {
        return Err(fail("expired", "Trigger ID expired."));
    }
    let signature = STANDARD.decode(signature).map_err(|_| {
        fail(
            "base64_decode_failed_signature",
            "Failed to decode base64 for the signature of the trigger ID.",
        )
    })?;
    // An ECDSA signature that does not parse is Mattermost's
    // `signature_decode_failed`; an HMAC of the wrong length is the same case.
    if signature.len() != 32 {
        return Err(fail(
            "signature_decode_failed",
            "Failed to decode the signature of the trigger ID.",
        ));
    }
    let payload = format!("{client_id}:{user_id}:{millis}:");
    let mut mac = mac(&secret(host)?);
    mac.update(payload.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| fail("verify_signature_failed", "Signature verification failed."))?;
    Ok(Decoded {
        client_id: client_id.to_string(),
        user_id: user_id.to_string(),
        issued_at_millis,
    })
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

fn sign(secret: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut mac = mac(secret);
    mac.update(payload);
    mac.finalize().into_bytes().to_vec()
}

/// The signing secret, created on first use. Compare-and-set makes concurrent
/// first uses agree on one secret: the loser reads the winner's.
fn secret(host: &dyn Host) -> Result<Vec<u8>, ApiError> {
    let storage = |e: crate::host::HostError| {
        ApiError::new(500, "app.plugin.kv.app_error", "The plugin store failed.")
            .with_detail(e.detail().to_string())
    };
    if let Some(secret) = host.kv_get(SECRET_KEY).map_err(storage)? {
        return Ok(secret);
    }
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh).map_err(|e| {
        ApiError::new(
            500,
            "app.plugin.random.app_error",
            "No randomness available.",
        )
        .with_detail(e.to_string())
    })?;
    if host
        .kv_compare_and_set(SECRET_KEY, None, Some(&fresh))
        .map_err(storage)?
    {
        return Ok(fresh.to_vec());
    }
    host.kv_get(SECRET_KEY)
        .map_err(storage)?
        .ok_or_else(|| ApiError::new(500, "app.plugin.kv.app_error", "The plugin store failed."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn round_trip_and_layout() {
        let host = FakeHost::default();
        let id = generate(&host, "user1").unwrap();
        assert!(ids::is_valid(&id.client_id));
        let raw = String::from_utf8(STANDARD.decode(&id.signed).unwrap()).unwrap();
        let parts: Vec<&str> = raw.split(':').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!((parts[0], parts[1]), (id.client_id.as_str(), "user1"));
        assert_eq!(STANDARD.decode(parts[3]).unwrap().len(), 32);
        let decoded = decode(&host, &id.signed, 30).unwrap();
        assert_eq!(decoded.client_id, id.client_id);
        assert_eq!(decoded.user_id, "user1");
    }

    #[test]
    fn the_secret_is_made_once() {
        let host = FakeHost::default();
        let a = secret(&host).unwrap();
        assert_eq!(secret(&host).unwrap(), a);
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn failures_have_mattermosts_ids() {
        let host = FakeHost::default();
        let good = generate(&host, "u").unwrap().signed;
        let raw = String::from_utf8(STANDARD.decode(&good).unwrap()).unwrap();
        let (payload, _) = raw.rsplit_once(':').unwrap();
        let forged = STANDARD.encode(format!("{payload}:{}", STANDARD.encode([0u8; 32])));
        let old = {
            let parts: Vec<&str> = raw.split(':').collect();
            let payload = format!("{}:{}:1000:", parts[0], parts[1]);
            let sig = STANDARD.encode(sign(&secret(&host).unwrap(), payload.as_bytes()));
            STANDARD.encode(format!("{payload}{sig}"))
        };
        let cases = [
            ("%%%".to_string(), "base64_decode_failed"),
            (STANDARD.encode("a:b:c"), "missing_data"),
            (STANDARD.encode("a:b:notanumber:sig"), "missing_data"),
            (old, "expired"),
            (
                STANDARD.encode(format!("{payload}:***")),
                "base64_decode_failed_signature",
            ),
            (
                STANDARD.encode(format!("{payload}:{}", STANDARD.encode([1u8; 5]))),
                "signature_decode_failed",
            ),
            (forged, "verify_signature_failed"),
        ];
        for (input, what) in cases {
            let err = decode(&host, &input, 30).unwrap_err();
            assert_eq!(
                err.id,
                format!("interactive_message.decode_trigger_id.{what}"),
                "{input}"
            );
            assert_eq!(err.status, 400);
        }
    }
}
