//! Secrets at rest: bearer tokens are kept as SHA-256 digests (looked up by
//! digest), and the plugin's kv values are sealed with ChaCha20-Poly1305
//! under a key from `config.json`, so the database file alone reveals neither.

use super::StoreError;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

/// Starts every sealed kv value: a version byte after a NUL, which no JSON or
/// text value the plugin writes begins with. Values without it are legacy
/// plaintext, sealed by [`seal_legacy_values`] on open.
const SEALED: &[u8; 4] = b"\0sb1";

/// The digest a token is stored and looked up as (64 hex digits). Tokens are
/// 128 random bits, so an unsalted fast hash is enough: there is nothing to
/// guess from.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Seals and opens kv values. The AEAD's associated data is the key name, so
/// a value copied under another key does not open.
pub struct Cipher {
    key: LessSafeKey,
}

impl Cipher {
    /// The cipher for `SqlSettings.AtRestEncryptKey` (any string; its SHA-256
    /// is the 256-bit key).
    pub fn new(at_rest_key: &str) -> Cipher {
        let key = Sha256::digest(at_rest_key.as_bytes());
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key)
            .expect("a SHA-256 digest is a valid ChaCha20-Poly1305 key");
        Cipher {
            key: LessSafeKey::new(unbound),
        }
    }

    pub fn seal(&self, name: &str, value: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut sealed = Vec::with_capacity(SEALED.len() + NONCE_LEN + value.len() + 16);
        sealed.extend_from_slice(SEALED);
        sealed.extend_from_slice(&nonce);
        let mut body = value.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut body,
            )
            .expect("sealing cannot fail for in-memory values");
        sealed.extend_from_slice(&body);
        sealed
    }

    /// The plaintext of a stored value; legacy plaintext passes through.
    pub fn open(&self, name: &str, stored: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let Some(rest) = stored.strip_prefix(SEALED.as_slice()) else {
            return Ok(stored);
        };
        if rest.len() < NONCE_LEN {
            return Err(unreadable(name));
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| unreadable(name))?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut body)
            .map_err(|_| unreadable(name))?;
        Ok(plain.to_vec())
    }
}

impl Cipher {
    /// Opens a value [`Cipher::seal`] made; unlike [`Cipher::open`], anything
    /// else (plaintext, altered, another name or key) is `None`.
    pub fn open_sealed(&self, name: &str, sealed: Vec<u8>) -> Option<Vec<u8>> {
        if !is_sealed(&sealed) {
            return None;
        }
        self.open(name, sealed).ok()
    }
}

fn unreadable(name: &str) -> StoreError {
    StoreError::Db(format!(
        "kv value {name} does not decrypt: was SqlSettings.AtRestEncryptKey changed?"
    ))
}

pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(SEALED)
}

/// Seals kv values written before encryption at rest, and replaces tokens
/// stored in the clear by their digests, in one transaction. Runs on every
/// open; does nothing once done.
pub fn seal_legacy_values(conn: &mut Connection, cipher: Option<&Cipher>) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut tokens = tx.prepare("SELECT token FROM tokens WHERE length(token) <> 64")?;
        let plain: Vec<String> = tokens
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for token in plain {
            tx.execute(
                "UPDATE tokens SET token = ?2 WHERE token = ?1",
                params![token, token_digest(&token)],
            )?;
        }
    }
    if let Some(cipher) = cipher {
        let mut values = tx.prepare("SELECT key, value FROM kv")?;
        let legacy: Vec<(String, Vec<u8>)> = values
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<(String, Vec<u8>)>>>()?
            .into_iter()
            .filter(|(_, value)| !is_sealed(value))
            .collect();
        for (key, value) in legacy {
            tx.execute(
                "UPDATE kv SET value = ?2 WHERE key = ?1",
                params![key, cipher.seal(&key, &value)],
            )?;
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_are_bound_to_key_and_name() {
        let cipher = Cipher::new("k1");
        let sealed = cipher.seal("hook:1", b"secret-token");
        assert!(is_sealed(&sealed));
        assert!(
            !sealed
                .windows(b"secret-token".len())
                .any(|w| w == b"secret-token")
        );
        assert_eq!(
            cipher.open("hook:1", sealed.clone()).unwrap(),
            b"secret-token"
        );
        assert!(cipher.open("hook:2", sealed.clone()).is_err());
        assert!(Cipher::new("k2").open("hook:1", sealed).is_err());
        // Two seals of one value differ (fresh nonce each time).
        assert_ne!(cipher.seal("a", b"v"), cipher.seal("a", b"v"));
        assert_eq!(cipher.open("a", b"legacy".to_vec()).unwrap(), b"legacy");
        assert_eq!(cipher.open_sealed("a", b"legacy".to_vec()), None);
        let sealed = cipher.seal("a", b"v");
        assert_eq!(cipher.open_sealed("a", sealed.clone()).unwrap(), b"v");
        assert_eq!(cipher.open_sealed("b", sealed), None);
    }
}
