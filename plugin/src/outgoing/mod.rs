//! Outgoing webhooks: definitions and their routes (`manage`), matching posts
//! against them and calling their callbacks (`fire`), and each hook's recent
//! deliveries (`deliveries`).

pub mod deliveries;
pub mod fire;
pub mod manage;
mod model;

pub use fire::fire;
pub use model::OutgoingWebhook;

use crate::store::Collection;

/// Hook definitions live in the plugin's kv under this prefix.
pub(crate) const HOOKS: Collection = Collection::new("outgoing_hook/");
