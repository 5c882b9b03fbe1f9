//! Incoming webhooks: the hook definitions and their management routes
//! (`manage`), and `POST /hooks/{id}` turning a payload into posts (`execute`,
//! with `idempotency` for retried requests and `rate_limit` for per-hook budgets), and
//! `posts`, which edits and deletes the posts a hook made. `from_source` takes a built-in
//! source's native payload (`crate::sources`) down the same path.

pub mod execute;
mod from_source;
mod idempotency;
pub mod manage;
mod model;
pub mod payload;
pub mod posts;
mod preview;
mod rate_limit;
pub mod samples;
pub mod template;
pub mod transform;

pub use model::IncomingWebhook;

use crate::store::Collection;

/// The host's counter series for a hook (the `metrics` import).
pub(crate) fn metric_key(hook_id: &str) -> String {
    format!("incoming_hook/{hook_id}")
}

/// Hook definitions live in the plugin's kv under this prefix, indexed by
/// team and by team and owner, so a listing reads one page from the index.
pub(crate) const HOOKS: Collection =
    Collection::indexed("incoming_hook/", "incoming_index/", IncomingWebhook::terms);

impl crate::definitions::Definition for IncomingWebhook {
    const COLLECTION: Collection = HOOKS;
    const NOT_FOUND_ID: &'static str = "app.webhooks.get_incoming.app_error";
    const MANAGE_OWN: &'static str = "manage_own_incoming_webhooks";
    const MANAGE_OTHERS: &'static str = "manage_others_incoming_webhooks";

    fn id(&self) -> &str {
        &self.id
    }
    fn create_at(&self) -> i64 {
        self.create_at
    }
    fn owner(&self) -> &str {
        &self.user_id
    }
    fn scope(&self) -> crate::host::PermissionScope {
        crate::host::PermissionScope::Channel(self.channel_id.clone())
    }
}

/// The hook the incoming unit tests start from, and the host it lives in.
#[cfg(test)]
pub(crate) mod fixture {
    use super::{HOOKS, IncomingWebhook};
    use crate::host::ChannelType;
    use crate::testing::{FakeHost, channel, user};

    /// A hook with 26-character ids (`h…`, channel `c…`, team `t…`, owner `u…`)
    /// and nothing else set.
    pub fn hook() -> IncomingWebhook {
        IncomingWebhook {
            id: "h".repeat(26),
            channel_id: "c".repeat(26),
            team_id: "t".repeat(26),
            user_id: "u".repeat(26),
            ..Default::default()
        }
    }

    /// Puts the hook's owner ("dave") and its open channel ("town-square") in
    /// `host`, and stores the hook.
    pub fn add_hook(host: &FakeHost, hook: &IncomingWebhook) {
        host.users.borrow_mut().push(user(&hook.user_id, "dave"));
        host.channels.borrow_mut().push(channel(
            &hook.channel_id,
            &hook.team_id,
            "town-square",
            ChannelType::Open,
        ));
        HOOKS.put(host, &hook.id, hook).unwrap();
    }

    /// A host holding only what [`add_hook`] puts there.
    pub fn host_with_hook(hook: &IncomingWebhook) -> FakeHost {
        let host = FakeHost::default();
        add_hook(&host, hook);
        host
    }
}
