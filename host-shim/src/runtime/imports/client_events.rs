//! `client-events`: events to one user's connections that no post causes
//! (`open_dialog`), through the same event plumbing as posts.

use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::client_events::Host;
use crate::runtime::bindings::types::Error;

/// The events a plugin may send. A closed list: a plugin must not be able to
/// fake `posted` or `hello` to a client.
const ALLOWED: &[&str] = &["open_dialog"];

impl Host for CallState {
    async fn publish_to_user(
        &mut self,
        user_id: String,
        event: String,
        data: String,
    ) -> Result<(), Error> {
        if !ALLOWED.contains(&event.as_str()) {
            return Err(Error::Invalid(format!(
                "event {event:?} is not one a plugin may send"
            )));
        }
        let data: serde_json::Value = match serde_json::from_str(&data) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => return Err(Error::Invalid("event data is not a JSON object".into())),
        };
        self.app.store.user(&user_id)?;
        self.app.events.to_user(&user_id, &event, data);
        Ok(())
    }
}
