//! The host side of each WIT import, one module per interface, each the same
//! shape: check arguments, call the `App` or store, map errors to `types::error`.

mod channels;
mod client_events;
mod deliveries;
pub(crate) mod egress;
mod kv;
mod log;
mod metrics;
mod posts;
mod sealing;
mod settings;
mod teams;
mod transforms;
mod users;

use super::CallState;
use super::bindings::types::{self, Error};
use crate::store::{self, StoreError};

impl types::Host for CallState {}

tokio::task_local! {
    /// Set while a request's plugin call runs ([`noting_store_outage`]):
    /// whether a store call of it found the database unreachable.
    static STORE_OUTAGE: std::cell::Cell<bool>;
}

/// Runs `call` (a plugin call for a client's request) and says whether a
/// store call made for it found the database unreachable. The WIT error
/// `unavailable` covers that and a failed statement alike, and the plugin
/// answers both as 500; the server makes the first a 503 with
/// `Retry-After`, as its own routes answer a database that went away.
pub async fn noting_store_outage<F: std::future::Future>(call: F) -> (F::Output, bool) {
    STORE_OUTAGE
        .scope(std::cell::Cell::new(false), async move {
            let output = call.await;
            (output, STORE_OUTAGE.with(std::cell::Cell::get))
        })
        .await
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::NotFound(m) => Error::NotFound(m),
            StoreError::Conflict(m) => Error::Conflict(m),
            StoreError::Invalid(m) => Error::Invalid(m),
            StoreError::Db(m) => Error::Unavailable(m),
            StoreError::Unavailable(m) => {
                // Outside a request's call (background work) there is no one to tell.
                let _ = STORE_OUTAGE.try_with(|outage| outage.set(true));
                Error::Unavailable(m)
            }
        }
    }
}

pub(crate) fn channel_to_wit(c: store::Channel) -> types::Channel {
    types::Channel {
        id: c.id,
        team_id: c.team_id,
        name: c.name,
        display_name: c.display_name,
        channel_type: match c.channel_type {
            store::ChannelType::Open => types::ChannelType::Open,
            store::ChannelType::Private => types::ChannelType::Private,
            store::ChannelType::Direct => types::ChannelType::Direct,
            store::ChannelType::Group => types::ChannelType::Group,
        },
        header: c.header,
        purpose: c.purpose,
        creator_id: c.creator_id,
        create_at: c.create_at,
        update_at: c.update_at,
        delete_at: c.delete_at,
    }
}

pub(crate) fn post_to_wit(p: store::Post) -> types::Post {
    types::Post {
        id: p.id,
        create_at: p.create_at,
        update_at: p.update_at,
        delete_at: p.delete_at,
        user_id: p.user_id,
        channel_id: p.channel_id,
        root_id: p.root_id,
        message: p.message,
        post_type: p.post_type,
        props: p.props,
        metadata: p.metadata,
        is_pinned: p.is_pinned,
    }
}

pub(crate) fn post_from_wit(p: types::Post) -> store::Post {
    store::Post {
        id: p.id,
        create_at: p.create_at,
        update_at: p.update_at,
        edit_at: 0,
        delete_at: p.delete_at,
        user_id: p.user_id,
        channel_id: p.channel_id,
        root_id: p.root_id,
        message: p.message,
        post_type: p.post_type,
        props: p.props,
        metadata: p.metadata,
        is_pinned: p.is_pinned,
    }
}

pub(crate) fn user_to_wit(u: store::User) -> types::User {
    types::User {
        id: u.id,
        username: u.username,
        email: u.email,
        nickname: u.nickname,
        first_name: u.first_name,
        last_name: u.last_name,
        roles: u.roles,
        is_bot: u.is_bot,
        create_at: u.create_at,
        delete_at: u.delete_at,
    }
}

pub(crate) fn team_to_wit(t: store::Team) -> types::Team {
    types::Team {
        id: t.id,
        name: t.name,
        display_name: t.display_name,
        create_at: t.create_at,
        delete_at: t.delete_at,
    }
}
