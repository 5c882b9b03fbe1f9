//! Outgoing webhooks: definitions and their routes (`manage`), matching posts
//! against them and enqueueing their deliveries (`fire`), what each attempt
//! came to (`answer`), and each hook's recent deliveries (`deliveries`).

pub mod answer;
pub mod deliveries;
pub mod fire;
pub mod manage;
mod model;

pub use answer::on_result;
pub use fire::fire;
pub use model::OutgoingWebhook;

use crate::store::Collection;

/// Hook definitions live in the plugin's kv under this prefix, indexed by
/// team and by where a post could match them (`OutgoingWebhook::terms`), so
/// a post looks up its candidates instead of reading every hook.
pub(crate) const HOOKS: Collection =
    Collection::indexed("outgoing_hook/", "outgoing_index/", OutgoingWebhook::terms);

impl crate::definitions::Definition for OutgoingWebhook {
    const COLLECTION: Collection = HOOKS;
    const NOT_FOUND_ID: &'static str = "app.webhooks.get_outgoing.app_error";
    const MANAGE_OWN: &'static str = "manage_own_outgoing_webhooks";
    const MANAGE_OTHERS: &'static str = "manage_others_outgoing_webhooks";

    fn id(&self) -> &str {
        &self.id
    }
    fn create_at(&self) -> i64 {
        self.create_at
    }
    fn owner(&self) -> &str {
        &self.creator_id
    }
    fn scope(&self) -> crate::host::PermissionScope {
        crate::host::PermissionScope::Team(self.team_id.clone())
    }
}
