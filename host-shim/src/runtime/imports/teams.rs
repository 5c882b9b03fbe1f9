//! `teams`: lookups and membership.

use super::team_to_wit;
use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::teams::Host;
use crate::runtime::bindings::types::{Error, Team};

impl Host for CallState {
    async fn get(&mut self, id: String) -> Result<Team, Error> {
        Ok(team_to_wit(self.app.store.team(&id)?))
    }

    async fn get_by_name(&mut self, name: String) -> Result<Team, Error> {
        Ok(team_to_wit(self.app.store.team_by_name(&name)?))
    }

    async fn is_member(&mut self, team_id: String, user_id: String) -> Result<bool, Error> {
        Ok(self.app.store.team_member(&team_id, &user_id)?.is_some())
    }
}
