//! `channels`: lookups, direct channels, membership and header/purpose edits.

use super::channel_to_wit;
use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::channels::Host;
use crate::runtime::bindings::types::{Channel, Error};

impl Host for CallState {
    async fn get(&mut self, id: String) -> Result<Channel, Error> {
        Ok(channel_to_wit(self.app.store.channel(&id)?))
    }

    async fn get_by_name(&mut self, team_id: String, name: String) -> Result<Channel, Error> {
        Ok(channel_to_wit(
            self.app.store.channel_by_name(&team_id, &name)?,
        ))
    }

    async fn get_or_create_direct(
        &mut self,
        user_a: String,
        user_b: String,
    ) -> Result<Channel, Error> {
        Ok(channel_to_wit(
            self.app.store.direct_channel(&user_a, &user_b)?,
        ))
    }

    async fn is_member(&mut self, channel_id: String, user_id: String) -> Result<bool, Error> {
        Ok(self.app.store.is_channel_member(&channel_id, &user_id)?)
    }

    async fn add_member(&mut self, channel_id: String, user_id: String) -> Result<(), Error> {
        self.app.store.channel(&channel_id)?;
        self.app.store.user(&user_id)?;
        let write = self.blocking(move |app| app.store.add_channel_member(&channel_id, &user_id));
        Ok(write.await?)
    }

    async fn remove_member(&mut self, channel_id: String, user_id: String) -> Result<(), Error> {
        Ok(self
            .app
            .store
            .remove_channel_member(&channel_id, &user_id)?)
    }

    async fn patch(
        &mut self,
        channel_id: String,
        header: Option<String>,
        purpose: Option<String>,
    ) -> Result<Channel, Error> {
        let mut channel = self.app.store.channel(&channel_id)?;
        if let Some(header) = header {
            channel.header = header;
        }
        if let Some(purpose) = purpose {
            channel.purpose = purpose;
        }
        let write = self.blocking(move |app| app.store.update_channel(&channel));
        write.await?;
        Ok(channel_to_wit(self.app.store.channel(&channel_id)?))
    }

    async fn list_public(&mut self, team_id: String) -> Result<Vec<Channel>, Error> {
        Ok(self
            .app
            .store
            .public_channels(&team_id)?
            .into_iter()
            .map(channel_to_wit)
            .collect())
    }
}
