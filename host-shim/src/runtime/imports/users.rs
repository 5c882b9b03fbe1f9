//! `users`: lookups and permission checks against the shim's roles.

use super::user_to_wit;
use crate::app::Scope;
use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::users::Host;
use crate::runtime::bindings::types::{Error, PermissionScope, User};

impl Host for CallState {
    async fn get(&mut self, id: String) -> Result<User, Error> {
        Ok(user_to_wit(self.app.store.user(&id)?))
    }

    async fn get_by_username(&mut self, username: String) -> Result<User, Error> {
        Ok(user_to_wit(self.app.store.user_by_username(&username)?))
    }

    async fn has_permission(
        &mut self,
        user_id: String,
        permission: String,
        scope: PermissionScope,
    ) -> Result<bool, Error> {
        let scope = match scope {
            PermissionScope::System => Scope::System,
            PermissionScope::Team(id) => Scope::Team(id),
            PermissionScope::Channel(id) => Scope::Channel(id),
        };
        Ok(crate::app::permissions::has_permission(
            &self.app.store,
            &user_id,
            &permission,
            &scope,
        )?)
    }
}
