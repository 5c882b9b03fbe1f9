//! `kv`: the plugin's own durable keys in the shim's SQLite file. Keys may
//! expire (0.3.1): expired ones read as absent, and `crate::sweeper` deletes
//! them in the background.

use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::kv::Host;
use crate::runtime::bindings::types::Error;

/// Keys longer than this are refused: they are ids and prefixes, not data.
const MAX_KEY_BYTES: usize = 512;

fn granted(grants: crate::runtime::Grants) -> Result<(), Error> {
    if grants.kv {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "the plugin's manifest does not request the `kv` permission".into(),
        ))
    }
}

fn check_key(grants: crate::runtime::Grants, key: &str) -> Result<(), Error> {
    granted(grants)?;
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::Invalid(format!(
            "kv keys are 1 to {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

impl Host for CallState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        check_key(self.grants, &key)?;
        Ok(self.app.store.kv_get(&key)?)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        check_key(self.grants, &key)?;
        let write = self.blocking(move |app| app.store.kv_set(&key, &value));
        Ok(write.await?)
    }

    async fn delete(&mut self, key: String) -> Result<(), Error> {
        check_key(self.grants, &key)?;
        let write = self.blocking(move |app| app.store.kv_delete(&key));
        Ok(write.await?)
    }

    async fn list_keys(
        &mut self,
        prefix: String,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<String>, Error> {
        granted(self.grants)?;
        Ok(self.app.store.kv_list(&prefix, offset, limit)?)
    }

    async fn compare_and_set(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, Error> {
        check_key(self.grants, &key)?;
        Ok(self
            .app
            .store
            .kv_compare_and_set(&key, expected.as_deref(), new.as_deref())?)
    }

    async fn set_with_expiry(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_seconds: u64,
    ) -> Result<(), Error> {
        check_key(self.grants, &key)?;
        let write =
            self.blocking(move |app| app.store.kv_set_with_expiry(&key, &value, ttl_seconds));
        Ok(write.await?)
    }

    async fn compare_and_set_with_expiry(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_seconds: u64,
    ) -> Result<bool, Error> {
        check_key(self.grants, &key)?;
        let write = self.blocking(move |app| {
            app.store.kv_compare_and_set_with_expiry(
                &key,
                expected.as_deref(),
                new.as_deref(),
                ttl_seconds,
            )
        });
        Ok(write.await?)
    }
}
