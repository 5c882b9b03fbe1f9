//! Typed records in the host's key-value store. Every feature keeps its
//! definitions here under its own key prefix, as JSON.

use crate::api::ApiError;
use crate::host::Host;
use serde::{Serialize, de::DeserializeOwned};

/// A collection of JSON records under `prefix`, keyed by id.
pub struct Collection {
    prefix: &'static str,
}

/// How many keys one `list` call asks the host for.
const PAGE: u32 = 1000;

impl Collection {
    pub const fn new(prefix: &'static str) -> Collection {
        Collection { prefix }
    }

    fn key(&self, id: &str) -> String {
        format!("{}{}", self.prefix, id)
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        host: &dyn Host,
        id: &str,
    ) -> Result<Option<T>, ApiError> {
        let Some(bytes) = host.kv_get(&self.key(id)).map_err(|e| storage_error(&e))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            ApiError::new(
                500,
                "app.plugin.kv.decode.app_error",
                "Stored record is corrupt.",
            )
            .with_detail(e.to_string())
        })
    }

    pub fn put<T: Serialize>(&self, host: &dyn Host, id: &str, value: &T) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec(value).map_err(|e| {
            ApiError::new(
                500,
                "app.plugin.kv.encode.app_error",
                "Could not encode record.",
            )
            .with_detail(e.to_string())
        })?;
        host.kv_set(&self.key(id), &bytes)
            .map_err(|e| storage_error(&e))
    }

    pub fn delete(&self, host: &dyn Host, id: &str) -> Result<(), ApiError> {
        host.kv_delete(&self.key(id)).map_err(|e| storage_error(&e))
    }

    /// Every record, in key order. Records that fail to decode are skipped and
    /// logged rather than failing the whole listing.
    pub fn all<T: DeserializeOwned>(&self, host: &dyn Host) -> Result<Vec<T>, ApiError> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let keys = host
                .kv_list(self.prefix, offset, PAGE)
                .map_err(|e| storage_error(&e))?;
            let n = keys.len() as u32;
            for key in keys {
                let id = &key[self.prefix.len()..];
                match self.get::<T>(host, id) {
                    Ok(Some(v)) => out.push(v),
                    Ok(None) => {}
                    Err(e) => host.log(
                        crate::host::Level::Warn,
                        &format!("skipping unreadable record {key}: {}", e.detailed_error),
                    ),
                }
            }
            if n < PAGE {
                return Ok(out);
            }
            offset += n;
        }
    }
}

fn storage_error(err: &crate::host::HostError) -> ApiError {
    ApiError::new(500, "app.plugin.kv.app_error", "The plugin store failed.")
        .with_detail(err.detail().to_string())
}
