//! Mattermost ids: 26 characters of lowercase base32 over 128 random bits.
//! Randomness comes from WASI (getrandom), so a host can fix it in tests.

const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// A fresh id, as Mattermost's `NewId`.
pub fn new_id() -> String {
    encode(&random_bytes())
}

/// An id derived from `seed` and `index` (SHA-256, first 128 bits): the same
/// inputs always give the same id, so an effect keyed by it happens once.
pub fn derived(seed: &str, index: usize) -> String {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&derived_bytes(seed, index)[..16]);
    encode(&bytes)
}

fn derived_bytes(seed: &str, index: usize) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(format!("switchboard-derived-id\0{seed}\0{index}").as_bytes()).into()
}

/// An id that carries a tag only the holder of `key` can make: 8 bytes (random, or derived
/// from `seed` and `index` like [`derived`]) then the first 8 bytes of their HMAC-SHA256
/// under `key`. A webhook's posts are tagged with the hook's secret id, so the hook can
/// later prove they are its own with nothing stored per post.
pub fn tagged(key: &str, seed: Option<(&str, usize)>) -> String {
    let mut bytes = [0u8; 16];
    match seed {
        Some((seed, index)) => bytes[..8].copy_from_slice(&derived_bytes(seed, index)[..8]),
        None => bytes[..8].copy_from_slice(&random_bytes()[..8]),
    }
    let tag = tag_of(key, &bytes[..8]);
    bytes[8..].copy_from_slice(&tag);
    encode(&bytes)
}

/// Whether `id` was made by [`tagged`] with `key`.
pub fn has_tag(id: &str, key: &str) -> bool {
    match decode(id) {
        Some(bytes) => constant_time_eq(&bytes[8..], &tag_of(key, &bytes[..8])),
        None => false,
    }
}

fn tag_of(key: &str, body: &[u8]) -> [u8; 8] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(b"switchboard-tagged-id\0");
    mac.update(body);
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&mac.finalize().into_bytes()[..8]);
    tag
}

/// Comparison without an early exit, so a tag's bytes cannot be guessed one by one from
/// answer times.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 16 random bytes from WASI. A host without randomness is broken beyond repair; fall back
/// to the clock rather than trap, so a call still completes.
fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_le_bytes();
    }
    bytes
}

/// The 16 bytes behind an id [`encode`] wrote, or `None` for anything else.
fn decode(id: &str) -> Option<[u8; 16]> {
    if id.len() != 26 {
        return None;
    }
    let mut value: u128 = 0;
    for (i, c) in id.bytes().enumerate() {
        let digit = ALPHABET.iter().position(|a| *a == c)? as u128;
        // The last group holds only the top 3 bits.
        if i == 25 && digit > 7 {
            return None;
        }
        value |= digit << (5 * i);
    }
    Some(value.to_be_bytes())
}

/// A fresh Standard Webhooks secret: `whsec_` and 24 random bytes in base64.
pub fn new_webhook_secret() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 24];
    if getrandom::fill(&mut bytes).is_err() {
        bytes[..16].copy_from_slice(&new_id().as_bytes()[..16]);
    }
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn encode(bytes: &[u8; 16]) -> String {
    let value = u128::from_be_bytes(*bytes);
    // 26 groups of 5 bits; the last group holds the top 3 bits.
    (0..26)
        .map(|i| ALPHABET[((value >> (5 * i)) & 0x1f) as usize] as char)
        .collect()
}

/// A fresh secret for Slack-style request signatures: 32 hex digits (128
/// random bits), the form Slack's signing secrets take.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // As for ids: never trap for want of randomness.
        return new_id();
    }
    hex::encode(bytes)
}

/// `IsValidId`: exactly 26 ASCII letters or digits.
pub fn is_valid(id: &str) -> bool {
    id.len() == 26 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_and_distinct() {
        let a = new_id();
        let b = new_id();
        assert!(is_valid(&a), "{a}");
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
    }

    #[test]
    fn tagged_ids_prove_their_key() {
        let hook = "secrethookid0000000000000a";
        let id = tagged(hook, None);
        assert!(is_valid(&id), "{id}");
        assert!(has_tag(&id, hook));
        assert!(!has_tag(&id, "anotherhook000000000000000"));
        assert!(!has_tag(&new_id(), hook), "an ordinary id carries no tag");
        assert!(!has_tag("not-an-id", hook));
        assert_ne!(tagged(hook, None), tagged(hook, None));
        let a = tagged(hook, Some(("seed", 0)));
        assert_eq!(
            a,
            tagged(hook, Some(("seed", 0))),
            "derived: the same every time"
        );
        assert_ne!(a, tagged(hook, Some(("seed", 1))));
        assert!(has_tag(&a, hook));
        for _ in 0..100 {
            let bytes = random_bytes();
            assert_eq!(decode(&encode(&bytes)), Some(bytes));
        }
    }

    #[test]
    fn validity() {
        assert!(is_valid("abcdefghijklmnopqrstuvwxyz"));
        assert!(!is_valid("abcdefghijklmnopqrstuvwxy"));
        assert!(!is_valid("abcdefghijklmnopqrstuvwxy-"));
    }
}
