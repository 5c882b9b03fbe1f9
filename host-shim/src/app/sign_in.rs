//! Checking a password for a sign-in: the account lockout of Mattermost's
//! `ServiceSettings.MaximumLoginAttempts`, and one bcrypt verify whatever
//! the login names, so timing does not tell which accounts exist.

use super::App;
use crate::store::{StoreError, User};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Why a sign-in was refused.
#[derive(Debug)]
pub enum SignInError {
    /// No such account, a wrong password or a deactivated account: one
    /// answer for all, as Mattermost gives.
    Invalid,
    /// A bot's account; bots use tokens.
    Bot,
    /// Too many failed attempts in a row.
    Locked,
    Store(StoreError),
}

impl From<StoreError> for SignInError {
    fn from(err: StoreError) -> Self {
        SignInError::Store(err)
    }
}

impl App {
    /// The account `login_id` (username or email) names, when `password` is
    /// its password and it may sign in.
    pub async fn sign_in(&self, login_id: &str, password: &str) -> Result<User, SignInError> {
        let (user, hash) = match self.store.user_for_login(login_id) {
            Ok(found) => found,
            Err(StoreError::NotFound(_)) => {
                self.passwords.verify(password, None).await;
                return Err(SignInError::Invalid);
            }
            Err(e) => return Err(e.into()),
        };
        if user.is_bot {
            // Not masked as bad credentials, as in Mattermost: bots use tokens.
            return Err(SignInError::Bot);
        }
        self.check_password(&user, &hash, password).await?;
        Ok(user)
    }

    /// Whether `password` is `user`'s (whose stored hash is `hash`), counted
    /// against the lockout: a locked account is refused without a look at
    /// the password, a wrong one counts, a right one clears the count.
    pub async fn check_password(
        &self,
        user: &User,
        hash: &str,
        password: &str,
    ) -> Result<(), SignInError> {
        if user.delete_at != 0 {
            // No lockout to count for an account that cannot sign in; the
            // verify keeps its answer as slow as any other.
            self.passwords.verify(password, Some(hash)).await;
            return Err(SignInError::Invalid);
        }
        let limit = self.config().service_settings.maximum_login_attempts.max(1);
        // One check of this account at a time: the count read here is the
        // one the verify's outcome updates.
        let _turn = self.login_turns.take(&user.id).await;
        if self.store.login_attempts(&user.id)? >= limit {
            return Err(SignInError::Locked);
        }
        if !self.passwords.verify(password, Some(hash)).await {
            self.store.record_failed_login(&user.id).await?;
            return Err(SignInError::Invalid);
        }
        self.store.reset_login_attempts(&user.id).await?;
        Ok(())
    }
}

/// One password check at a time per account (within this process).
#[derive(Default)]
pub struct LoginTurns {
    accounts: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// An account's turn; the next check of it waits until this is dropped.
pub struct Turn<'a> {
    turns: &'a LoginTurns,
    user_id: String,
    lock: Option<Arc<tokio::sync::Mutex<()>>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl LoginTurns {
    async fn take(&self, user_id: &str) -> Turn<'_> {
        let lock = self
            .accounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(user_id.to_string())
            .or_default()
            .clone();
        let guard = lock.clone().lock_owned().await;
        Turn {
            turns: self,
            user_id: user_id.to_string(),
            lock: Some(lock),
            guard: Some(guard),
        }
    }

    /// Accounts with a check under way or waiting (entries are dropped
    /// with their last turn).
    pub fn len(&self) -> usize {
        self.accounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let lock = self.lock.take();
        let mut accounts = self
            .turns
            .accounts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Only the map's copy and ours: nobody else waits for this account.
        if lock.is_some_and(|l| Arc::strong_count(&l) == 2) {
            accounts.remove(&self.user_id);
        }
    }
}
