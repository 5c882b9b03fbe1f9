//! `sealing`: authenticated encryption for values the plugin hands to clients
//! (action cookies), under a key derived from the server's at-rest key.

use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::sealing::Host;
use crate::runtime::bindings::types::Error;
use crate::store::secrets::Cipher;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A key of its own, so a sealed cookie is never a valid kv value and the
/// other way round, though both come from `SqlSettings.AtRestEncryptKey`.
fn cipher(state: &CallState) -> Cipher {
    let config = state.app.config();
    Cipher::new(&format!(
        "switchboard sealing\0{}",
        config.sql_settings.at_rest_encrypt_key
    ))
}

impl Host for CallState {
    async fn seal(&mut self, purpose: String, plaintext: Vec<u8>) -> String {
        STANDARD.encode(cipher(self).seal(&purpose, &plaintext))
    }

    async fn open(&mut self, purpose: String, sealed: String) -> Result<Vec<u8>, Error> {
        let invalid = || Error::Invalid(format!("not a value sealed for {purpose}"));
        let bytes = STANDARD.decode(sealed.trim()).map_err(|_| invalid())?;
        cipher(self)
            .open_sealed(&purpose, bytes)
            .ok_or_else(invalid)
    }
}
