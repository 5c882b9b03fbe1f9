//! Incoming webhooks: the hook definitions and their management routes
//! (`manage`), and `POST /hooks/{id}` turning a payload into posts (`execute`).

pub mod execute;
pub mod manage;
mod model;
pub mod payload;

pub use model::IncomingWebhook;

use crate::store::Collection;

/// Hook definitions live in the plugin's kv under this prefix.
pub(crate) const HOOKS: Collection = Collection::new("incoming_hook/");
