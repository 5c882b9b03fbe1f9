//! Values the plugin hands to clients sealed (action cookies): authenticated
//! encryption under a key derived from the server's at-rest key.

use super::App;
use crate::store::secrets::Cipher;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

impl App {
    /// A key of its own, so a sealed cookie is never a valid kv value and the
    /// other way round, though both come from `SqlSettings.AtRestEncryptKey`.
    fn client_cipher(&self) -> Cipher {
        let config = self.config();
        Cipher::new(&format!(
            "switchboard sealing\0{}",
            config.sql_settings.at_rest_encrypt_key
        ))
    }

    /// `plaintext` sealed for `purpose`, as base64 text a client can carry.
    pub fn seal_for_client(&self, purpose: &str, plaintext: &[u8]) -> String {
        STANDARD.encode(self.client_cipher().seal(purpose, plaintext))
    }

    /// What `seal_for_client` sealed for the same purpose; `None` for anything
    /// else (altered, sealed for another purpose, or not base64).
    pub fn open_from_client(&self, purpose: &str, sealed: &str) -> Option<Vec<u8>> {
        let bytes = STANDARD.decode(sealed.trim()).ok()?;
        self.client_cipher().open_sealed(purpose, bytes)
    }
}
