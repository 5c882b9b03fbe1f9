//! What every integration definition (incoming and outgoing webhooks,
//! commands) shares: stored in kv, owned by a user, managed under a pair of
//! "own"/"others" permissions in a channel or team scope.

use crate::api::{ApiError, Request, require_permission};
use crate::host::{Host, PermissionScope};
use crate::ids;
use crate::store::Collection;
use serde::{Serialize, de::DeserializeOwned};

pub trait Definition: Serialize + DeserializeOwned {
    /// Where the definitions live in kv.
    const COLLECTION: Collection;
    /// The 404 id when one is missing, e.g. `app.webhooks.get_incoming.app_error`.
    const NOT_FOUND_ID: &'static str;
    /// Permission to manage one's own definitions.
    const MANAGE_OWN: &'static str;
    /// Permission to manage other users' definitions.
    const MANAGE_OTHERS: &'static str;

    fn id(&self) -> &str;
    fn create_at(&self) -> i64;
    /// The user the definition belongs to.
    fn owner(&self) -> &str;
    /// Where the manage permissions are checked for it.
    fn scope(&self) -> PermissionScope;
}

/// Loads a definition the session user may manage: a valid id, the feature
/// on, the definition found, and the own/others permission held.
pub fn load_managed<T: Definition>(
    host: &dyn Host,
    req: &Request,
    id: &str,
    require_enabled: fn(&dyn Host) -> Result<(), ApiError>,
) -> Result<T, ApiError> {
    let session = req.session_user()?;
    if !ids::is_valid(id) {
        return Err(ApiError::invalid_url_param("hook_id"));
    }
    require_enabled(host)?;
    let found: T = T::COLLECTION.get(host, id)?.ok_or_else(|| {
        ApiError::new(
            404,
            T::NOT_FOUND_ID,
            "Unable to get the requested integration.",
        )
    })?;
    let scope = found.scope();
    require_permission(host, session, T::MANAGE_OWN, &scope)?;
    if found.owner() != session {
        require_permission(host, session, T::MANAGE_OTHERS, &scope)?;
    }
    Ok(found)
}

/// One page (`page`, `per_page` from the query) of the definitions in
/// `scope` that pass `keep`, in creation order. Without the "others"
/// permission a user sees only their own.
/// Which records a listing reads.
pub enum Within {
    /// Exactly the records under one index term, read a page at a time from
    /// the index: `all` for a caller who may see others' definitions, `own`
    /// (their own under the same scope) for one who may not. `keep` is not
    /// consulted: the terms are the filter.
    Exactly { all: String, own: String },
    /// The records under these terms (every record, with none), then
    /// filtered by `keep`.
    Narrowed(Vec<String>),
}

impl Within {
    /// A team's definitions (with no team, every team's); for a caller who
    /// sees only their own, their own there. Anonymous callers are refused
    /// before a listing is read.
    pub fn team(team_id: &str, user_id: Option<&str>) -> Within {
        let team = if team_id.is_empty() {
            crate::store::ANY_TEAM
        } else {
            team_id
        };
        Within::Exactly {
            all: crate::store::team_term(team),
            own: crate::store::owner_term(team, user_id.unwrap_or_default()),
        }
    }
}

/// One page (`page`, `per_page` from the query) of the definitions in
/// `scope` that pass `keep`, in creation order, and how many all pages hold
/// together. Without the "others" permission a user sees only their own;
/// `within` says which records are read.
pub fn counted_page<T: Definition>(
    host: &dyn Host,
    req: &Request,
    scope: &PermissionScope,
    within: &Within,
    require_enabled: fn(&dyn Host) -> Result<(), ApiError>,
    keep: impl Fn(&T) -> bool,
) -> Result<(Vec<T>, usize), ApiError> {
    let session = req.session_user()?;
    let (page, per_page) = req.paging()?;
    require_permission(host, session, T::MANAGE_OWN, scope)?;
    let see_others = host
        .has_permission(session, T::MANAGE_OTHERS, scope)
        .unwrap_or(false);
    require_enabled(host)?;
    let terms = match within {
        Within::Exactly { all, own } => {
            let term = if see_others { all } else { own };
            let offset = page.saturating_mul(per_page);
            let page = T::COLLECTION.page::<T>(
                host,
                term,
                u32::try_from(offset).unwrap_or(u32::MAX),
                u32::try_from(per_page).unwrap_or(u32::MAX),
            )?;
            let total = if req.query_param("include_total_count").as_deref() == Some("true") {
                T::COLLECTION.count(host, term)?
            } else {
                0
            };
            return Ok((page, total));
        }
        Within::Narrowed(terms) => terms.as_slice(),
    };
    let mut all: Vec<T> = T::COLLECTION
        .find::<T>(host, terms)?
        .into_iter()
        .filter(|d| keep(d) && (see_others || d.owner() == session))
        .collect();
    all.sort_by(|a, b| (a.create_at(), a.id()).cmp(&(b.create_at(), b.id())));
    let total = all.len();
    let page = all
        .into_iter()
        .skip(page.saturating_mul(per_page))
        .take(per_page)
        .collect();
    Ok((page, total))
}

/// A list answer: the bare array, or with `include_total_count=true`
/// Mattermost's `{"<key>": [...], "total_count": N}`.
pub fn list_response<T: serde::Serialize>(
    req: &Request,
    key: &str,
    (page, total): (Vec<T>, usize),
) -> crate::api::Response {
    if req.query_param("include_total_count").as_deref() == Some("true") {
        let mut body = serde_json::Map::new();
        body.insert(
            key.to_string(),
            serde_json::to_value(&page).unwrap_or_default(),
        );
        body.insert("total_count".into(), total.into());
        crate::api::Response::json(200, &serde_json::Value::Object(body))
    } else {
        crate::api::Response::json(200, &page)
    }
}
