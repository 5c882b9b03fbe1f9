//! What the plugin needs from its host, as one trait. The component implements
//! it over the WIT imports; native tests implement it in memory.

pub use crate::glue::exports::switchboard::plugin::commands::CommandCall;
pub use crate::glue::exports::switchboard::plugin::delivery_results::{Attempt, DeliveryResult};
pub use crate::glue::switchboard::plugin::deliveries::Job;
pub use crate::glue::switchboard::plugin::egress::{
    EgressError, OutboundRequest, OutboundResponse, Signing,
};
pub use crate::glue::switchboard::plugin::log::Level;
pub use crate::glue::switchboard::plugin::settings::ServerSettings;
pub use crate::glue::switchboard::plugin::types::{
    AppError, Channel, ChannelType, Error as HostError, Header, PermissionScope, Post, Team, User,
};

/// The host's capabilities, grouped as the WIT interfaces are. Time and
/// randomness come from WASI, so they are not here.
pub trait Host {
    fn settings(&self) -> ServerSettings;
    fn log(&self, level: Level, message: &str);

    fn create_post(&self, post: Post) -> Result<Post, HostError>;
    fn create_ephemeral(&self, user_id: &str, post: Post) -> Result<Post, HostError>;
    fn post(&self, id: &str) -> Result<Post, HostError>;
    fn update_post(&self, post: Post) -> Result<Post, HostError>;
    /// Has the host run the post hook (outgoing webhooks) for a stored post
    /// after this call.
    fn notify_posted(&self, id: &str) -> Result<(), HostError>;
    /// A notice from the server's system bot to one user, in their DM.
    fn notify_user(&self, user_id: &str, post: Post) -> Result<Post, HostError>;

    fn channel(&self, id: &str) -> Result<Channel, HostError>;
    fn channel_by_name(&self, team_id: &str, name: &str) -> Result<Channel, HostError>;
    fn direct_channel(&self, user_a: &str, user_b: &str) -> Result<Channel, HostError>;
    fn is_channel_member(&self, channel_id: &str, user_id: &str) -> Result<bool, HostError>;
    fn add_channel_member(&self, channel_id: &str, user_id: &str) -> Result<(), HostError>;
    fn remove_channel_member(&self, channel_id: &str, user_id: &str) -> Result<(), HostError>;
    fn patch_channel(
        &self,
        channel_id: &str,
        header: Option<&str>,
        purpose: Option<&str>,
    ) -> Result<Channel, HostError>;
    fn public_channels(&self, team_id: &str) -> Result<Vec<Channel>, HostError>;

    fn user(&self, id: &str) -> Result<User, HostError>;
    fn user_by_username(&self, username: &str) -> Result<User, HostError>;
    fn has_permission(
        &self,
        user_id: &str,
        permission: &str,
        scope: &PermissionScope,
    ) -> Result<bool, HostError>;

    fn team(&self, id: &str) -> Result<Team, HostError>;
    fn team_by_name(&self, name: &str) -> Result<Team, HostError>;
    fn is_team_member(&self, team_id: &str, user_id: &str) -> Result<bool, HostError>;

    fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, HostError>;
    fn kv_set(&self, key: &str, value: &[u8]) -> Result<(), HostError>;
    fn kv_delete(&self, key: &str) -> Result<(), HostError>;
    fn kv_list(&self, prefix: &str, offset: u32, limit: u32) -> Result<Vec<String>, HostError>;
    fn kv_compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, HostError>;

    /// Hands the host deliveries to store (all or none), send (with
    /// retries) and report back through `delivery-results.on-result`.
    /// Returns at once.
    fn enqueue(&self, jobs: Vec<Job>) -> Result<(), HostError>;
    /// Sends a settled delivery of `group` again as the new delivery `new_id`.
    fn redeliver(&self, group: &str, id: &str, new_id: &str) -> Result<(), HostError>;
    /// Drops a group's deliveries not yet settled.
    fn cancel_deliveries(&self, group: &str) -> Result<u32, HostError>;

    /// Milliseconds since the Unix epoch, as Mattermost timestamps are.
    fn now_millis(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// One export call's view of a host: the settings are read once (a webhook
/// consults them at several steps) and everything else passes through. Made
/// per call, so a host that reuses instances still has every call see the
/// configuration current at its start.
pub struct SettingsOnce<'a> {
    host: &'a dyn Host,
    settings: std::cell::OnceCell<ServerSettings>,
}

impl<'a> SettingsOnce<'a> {
    pub fn new(host: &'a dyn Host) -> SettingsOnce<'a> {
        SettingsOnce {
            host,
            settings: std::cell::OnceCell::new(),
        }
    }
}

impl Host for SettingsOnce<'_> {
    fn settings(&self) -> ServerSettings {
        self.settings.get_or_init(|| self.host.settings()).clone()
    }
    fn log(&self, level: Level, message: &str) {
        self.host.log(level, message)
    }
    fn create_post(&self, post: Post) -> Result<Post, HostError> {
        self.host.create_post(post)
    }
    fn create_ephemeral(&self, user_id: &str, post: Post) -> Result<Post, HostError> {
        self.host.create_ephemeral(user_id, post)
    }
    fn post(&self, id: &str) -> Result<Post, HostError> {
        self.host.post(id)
    }
    fn update_post(&self, post: Post) -> Result<Post, HostError> {
        self.host.update_post(post)
    }
    fn notify_posted(&self, id: &str) -> Result<(), HostError> {
        self.host.notify_posted(id)
    }
    fn notify_user(&self, user_id: &str, post: Post) -> Result<Post, HostError> {
        self.host.notify_user(user_id, post)
    }
    fn channel(&self, id: &str) -> Result<Channel, HostError> {
        self.host.channel(id)
    }
    fn channel_by_name(&self, team_id: &str, name: &str) -> Result<Channel, HostError> {
        self.host.channel_by_name(team_id, name)
    }
    fn direct_channel(&self, user_a: &str, user_b: &str) -> Result<Channel, HostError> {
        self.host.direct_channel(user_a, user_b)
    }
    fn is_channel_member(&self, channel_id: &str, user_id: &str) -> Result<bool, HostError> {
        self.host.is_channel_member(channel_id, user_id)
    }
    fn add_channel_member(&self, channel_id: &str, user_id: &str) -> Result<(), HostError> {
        self.host.add_channel_member(channel_id, user_id)
    }
    fn remove_channel_member(&self, channel_id: &str, user_id: &str) -> Result<(), HostError> {
        self.host.remove_channel_member(channel_id, user_id)
    }
    fn patch_channel(
        &self,
        channel_id: &str,
        header: Option<&str>,
        purpose: Option<&str>,
    ) -> Result<Channel, HostError> {
        self.host.patch_channel(channel_id, header, purpose)
    }
    fn public_channels(&self, team_id: &str) -> Result<Vec<Channel>, HostError> {
        self.host.public_channels(team_id)
    }
    fn user(&self, id: &str) -> Result<User, HostError> {
        self.host.user(id)
    }
    fn user_by_username(&self, username: &str) -> Result<User, HostError> {
        self.host.user_by_username(username)
    }
    fn has_permission(
        &self,
        user_id: &str,
        permission: &str,
        scope: &PermissionScope,
    ) -> Result<bool, HostError> {
        self.host.has_permission(user_id, permission, scope)
    }
    fn team(&self, id: &str) -> Result<Team, HostError> {
        self.host.team(id)
    }
    fn team_by_name(&self, name: &str) -> Result<Team, HostError> {
        self.host.team_by_name(name)
    }
    fn is_team_member(&self, team_id: &str, user_id: &str) -> Result<bool, HostError> {
        self.host.is_team_member(team_id, user_id)
    }
    fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.host.kv_get(key)
    }
    fn kv_set(&self, key: &str, value: &[u8]) -> Result<(), HostError> {
        self.host.kv_set(key, value)
    }
    fn kv_delete(&self, key: &str) -> Result<(), HostError> {
        self.host.kv_delete(key)
    }
    fn kv_list(&self, prefix: &str, offset: u32, limit: u32) -> Result<Vec<String>, HostError> {
        self.host.kv_list(prefix, offset, limit)
    }
    fn kv_compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, HostError> {
        self.host.kv_compare_and_set(key, expected, new)
    }
    fn enqueue(&self, jobs: Vec<Job>) -> Result<(), HostError> {
        self.host.enqueue(jobs)
    }
    fn redeliver(&self, group: &str, id: &str, new_id: &str) -> Result<(), HostError> {
        self.host.redeliver(group, id, new_id)
    }
    fn cancel_deliveries(&self, group: &str) -> Result<u32, HostError> {
        self.host.cancel_deliveries(group)
    }
    fn now_millis(&self) -> i64 {
        self.host.now_millis()
    }
}

impl HostError {
    pub fn detail(&self) -> &str {
        match self {
            HostError::NotFound(s)
            | HostError::Forbidden(s)
            | HostError::Invalid(s)
            | HostError::Conflict(s)
            | HostError::Unavailable(s) => s,
        }
    }
}

/// Empty post with the defaults a new post starts from.
pub fn new_post(user_id: &str, channel_id: &str, message: String) -> Post {
    Post {
        id: String::new(),
        create_at: 0,
        update_at: 0,
        delete_at: 0,
        user_id: user_id.to_string(),
        channel_id: channel_id.to_string(),
        root_id: String::new(),
        message,
        post_type: String::new(),
        props: "{}".to_string(),
        metadata: "{}".to_string(),
        is_pinned: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn one_call_reads_the_settings_once_and_the_next_call_reads_them_again() {
        let host = FakeHost::default();
        let call = SettingsOnce::new(&host);
        assert!(call.settings().enable_incoming_webhooks);
        host.settings.borrow_mut().enable_incoming_webhooks = false;
        // Still this call's settings: not read again.
        assert!(call.settings().enable_incoming_webhooks);
        assert!(!SettingsOnce::new(&host).settings().enable_incoming_webhooks);
    }
}
