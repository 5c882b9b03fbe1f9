//! Mattermost ids: 26 characters of lowercase base32 over 128 random bits.
//! Randomness comes from WASI (getrandom), so a host can fix it in tests.

const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// A fresh id, as Mattermost's `NewId`.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    // A host without randomness is broken beyond repair; fall back to the clock
    // rather than trap so a call still completes.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_le_bytes();
    }
    encode(&bytes)
}

/// An id derived from `seed` and `index` (SHA-256, first 128 bits): the same
/// inputs always give the same id, so an effect keyed by it happens once.
pub fn derived(seed: &str, index: usize) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("switchboard-derived-id\0{seed}\0{index}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    encode(&bytes)
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
    fn validity() {
        assert!(is_valid("abcdefghijklmnopqrstuvwxyz"));
        assert!(!is_valid("abcdefghijklmnopqrstuvwxy"));
        assert!(!is_valid("abcdefghijklmnopqrstuvwxy-"));
    }
}
