//! `sealing`: authenticated encryption for values the plugin hands to clients
//! (action cookies); the key and the cipher live in `app::sealing`.

use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::sealing::Host;
use crate::runtime::bindings::types::Error;

impl Host for CallState {
    async fn seal(&mut self, purpose: String, plaintext: Vec<u8>) -> String {
        self.app.seal_for_client(&purpose, &plaintext)
    }

    async fn open(&mut self, purpose: String, sealed: String) -> Result<Vec<u8>, Error> {
        self.app
            .open_from_client(&purpose, &sealed)
            .ok_or_else(|| Error::Invalid(format!("not a value sealed for {purpose}")))
    }
}
