//! The outgoing webhook definition as Mattermost serves it, plus the signing
//! secret for Slack-style signatures, with Mattermost's `IsValid` rules.

use crate::api::ApiError;
use crate::ids;
use serde::{Deserialize, Serialize};

/// `trigger_when`: the first word equals a trigger word.
pub const TRIGGER_EXACT: i64 = 0;
/// `trigger_when`: the first word starts with a trigger word.
pub const TRIGGER_STARTS_WITH: i64 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutgoingWebhook {
    pub id: String,
    pub token: String,
    pub create_at: i64,
    pub update_at: i64,
    pub delete_at: i64,
    pub creator_id: String,
    pub channel_id: String,
    pub team_id: String,
    pub trigger_words: Vec<String>,
    pub trigger_when: i64,
    pub callback_urls: Vec<String>,
    pub display_name: String,
    pub description: String,
    pub content_type: String,
    pub username: String,
    pub icon_url: String,
    /// Key of the `X-Slack-Signature` HMAC on every request. Not Mattermost's:
    /// it lets Slack apps' signature verifiers serve as callbacks unchanged.
    pub signing_secret: String,
    /// Standard Webhooks secrets (`whsec_…`), newest first; every one signs
    /// each request, so a receiver mid-rotation accepts either. Not Mattermost's.
    pub webhook_secrets: Vec<String>,
    /// Most attempts per delivery; 0: the server's `DeliverySettings`. Not Mattermost's.
    pub max_attempts: u32,
    /// No retry after this many seconds; 0: the server's. Not Mattermost's.
    pub max_age_seconds: u32,
    /// Set after `FAILING_AFTER` deliveries in a row failed for good; cleared
    /// by the next success. Not Mattermost's.
    pub failing: bool,
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::new(
        400,
        &format!("model.outgoing_hook.is_valid.{field}.app_error"),
        message,
    )
}

/// Go's `fmt.Sprintf("%s", list)`: `[a b c]`. Mattermost limits the lists by
/// the length of this rendering.
fn go_list_len(items: &[String]) -> usize {
    2 + items.iter().map(String::len).sum::<usize>() + items.len().saturating_sub(1)
}

/// Mattermost's `IsValidHTTPURL`: a literal `http://` or `https://` prefix
/// and a non-empty host.
pub fn is_valid_http_url(raw: &str) -> bool {
    let rest = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"));
    let Some(rest) = rest else { return false };
    if rest.starts_with('/') {
        return false;
    }
    url::Url::parse(raw).is_ok_and(|u| u.host_str().is_some_and(|h| !h.is_empty()))
}

impl OutgoingWebhook {
    /// Mattermost's `OutgoingWebhook.IsValid`; lengths in bytes.
    pub fn validate(&self) -> Result<(), ApiError> {
        if !ids::is_valid(&self.id) {
            return Err(invalid("id", "Invalid Id."));
        }
        if self.token.len() != 26 {
            return Err(invalid("token", "Invalid token."));
        }
        if self.create_at == 0 {
            return Err(invalid("create_at", "Create at must be a valid time."));
        }
        if self.update_at == 0 {
            return Err(invalid("update_at", "Update at must be a valid time."));
        }
        if !ids::is_valid(&self.creator_id) {
            return Err(invalid("user_id", "Invalid user id."));
        }
        if !self.channel_id.is_empty() && !ids::is_valid(&self.channel_id) {
            return Err(invalid("channel_id", "Invalid channel id."));
        }
        if !ids::is_valid(&self.team_id) {
            return Err(invalid("team_id", "Invalid team id."));
        }
        if go_list_len(&self.trigger_words) > 1024 {
            return Err(invalid("words", "Invalid trigger words."));
        }
        if self.trigger_words.iter().any(String::is_empty) {
            return Err(invalid("trigger_words", "Invalid trigger words."));
        }
        if self.callback_urls.is_empty() || go_list_len(&self.callback_urls) > 1024 {
            return Err(invalid("callback", "Invalid callback urls."));
        }
        if !self.callback_urls.iter().all(|u| is_valid_http_url(u)) {
            return Err(invalid(
                "url",
                "Invalid callback urls. Each must be a valid URL and start with http:// or https://.",
            ));
        }
        if self.display_name.len() > 64 {
            return Err(invalid("display_name", "Invalid title."));
        }
        if self.description.len() > 500 {
            return Err(invalid("description", "Invalid description."));
        }
        if self.content_type.len() > 128 {
            return Err(invalid("content_type", "Invalid value for content_type."));
        }
        // Mattermost reuses the content-type id here.
        if self.trigger_when > TRIGGER_STARTS_WITH {
            return Err(invalid("content_type", "Invalid value for trigger_when."));
        }
        // These two ids lack the `is_valid` part in Mattermost.
        if self.username.len() > 64 {
            return Err(ApiError::new(
                400,
                "model.outgoing_hook.username.app_error",
                "Invalid username.",
            ));
        }
        if self.icon_url.len() > 1024 {
            return Err(ApiError::new(
                400,
                "model.outgoing_hook.icon_url.app_error",
                "Invalid icon.",
            ));
        }
        if self.max_attempts > 100 {
            return Err(invalid(
                "max_attempts",
                "At most 100 attempts per delivery.",
            ));
        }
        Ok(())
    }

    /// The index terms this hook is found under (see `HOOKS`): its team, and
    /// for matching, its channel (or none) with each trigger word, exact
    /// words by their first 64 bytes and starts-with words by their first
    /// character. [`OutgoingWebhook::candidate_terms`] looks up the same.
    pub fn terms(stored: &[u8]) -> Vec<String> {
        let Ok(hook) = serde_json::from_slice::<OutgoingWebhook>(stored) else {
            return Vec::new();
        };
        let (team, channel) = (&hook.team_id, &hook.channel_id);
        let mut terms = crate::store::listing_terms(team, &hook.creator_id);
        if !channel.is_empty() {
            terms.push(channel_term(channel));
        }
        if !channel.is_empty() && hook.trigger_words.is_empty() {
            terms.push(format!("any/{team}/{channel}"));
        }
        for word in &hook.trigger_words {
            let term = match hook.trigger_when {
                TRIGGER_STARTS_WITH => starts_with_term(team, channel, word),
                _ => exact_term(team, channel, word),
            };
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
        terms
    }

    /// The terms under which every hook that could fire for a post in
    /// `channel_id` of `team_id` starting with `first_word` is found.
    pub fn candidate_terms(team_id: &str, channel_id: &str, first_word: &str) -> Vec<String> {
        let mut terms = vec![format!("any/{team_id}/{channel_id}")];
        if !first_word.is_empty() {
            for channel in [channel_id, ""] {
                terms.push(exact_term(team_id, channel, first_word));
                terms.push(starts_with_term(team_id, channel, first_word));
            }
        }
        terms
    }

    /// The trigger word that makes this hook fire for a post in
    /// `channel_id` whose first word is `first_word`, if it fires (spec §4.2).
    /// `Some("")` means "every post in the channel".
    pub fn trigger_for(&self, channel_id: &str, first_word: &str) -> Option<String> {
        if !self.channel_id.is_empty() && self.channel_id != channel_id {
            return None;
        }
        if !self.channel_id.is_empty() && self.trigger_words.is_empty() {
            return Some(String::new());
        }
        if first_word.is_empty() {
            return None;
        }
        self.trigger_words
            .iter()
            .find(|w| match self.trigger_when {
                TRIGGER_EXACT => first_word == w.as_str(),
                TRIGGER_STARTS_WITH => first_word.starts_with(w.as_str()),
                _ => false,
            })
            .cloned()
    }

    /// Whether two hooks of a team would fire for the same post and call the
    /// same URL: same channel (both empty counts), a shared trigger word and a
    /// shared callback URL.
    pub fn intersects(&self, other: &OutgoingWebhook) -> bool {
        self.id != other.id
            && self.team_id == other.team_id
            && self.channel_id == other.channel_id
            && self
                .trigger_words
                .iter()
                .any(|w| other.trigger_words.contains(w))
            && self
                .callback_urls
                .iter()
                .any(|u| other.callback_urls.contains(u))
    }
}

/// The index term of a channel's hooks (listings by channel).
pub fn channel_term(channel_id: &str) -> String {
    format!("channel/{channel_id}")
}

fn exact_term(team_id: &str, channel_id: &str, word: &str) -> String {
    let mut end = word.len().min(64);
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    format!("exact/{team_id}/{channel_id}/{}", &word[..end])
}

fn starts_with_term(team_id: &str, channel_id: &str, word: &str) -> String {
    let first = word.chars().next().map(String::from).unwrap_or_default();
    format!("starts/{team_id}/{channel_id}/{first}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hook_that_matches_a_post_is_among_its_candidates() {
        let channel = "c".repeat(26);
        let hooks = [
            hook(&channel, &[], TRIGGER_EXACT),
            hook("", &["deploy"], TRIGGER_EXACT),
            hook(&channel, &["dep", "ship/it"], TRIGGER_STARTS_WITH),
            hook("", &["é"], TRIGGER_STARTS_WITH),
            hook("", &[&"x".repeat(100)], TRIGGER_EXACT),
        ];
        let words = [
            "",
            "deploy",
            "deployment",
            "dep",
            "ship/it!",
            "été",
            "x",
            &"x".repeat(100),
        ];
        for h in &hooks {
            let terms = OutgoingWebhook::terms(&serde_json::to_vec(h).unwrap());
            for word in words {
                for post_channel in [channel.as_str(), "d"] {
                    if h.trigger_for(post_channel, word).is_some() {
                        let wanted =
                            OutgoingWebhook::candidate_terms(&h.team_id, post_channel, word);
                        assert!(
                            terms.iter().any(|t| wanted.contains(t)),
                            "{:?} matches {word:?} in {post_channel} but is not a candidate",
                            h.trigger_words
                        );
                    }
                }
            }
        }
        // And a post's candidates leave out what cannot match.
        let other_word = OutgoingWebhook::candidate_terms(&"t".repeat(26), "d", "release");
        let deploy = OutgoingWebhook::terms(&serde_json::to_vec(&hooks[1]).unwrap());
        assert!(!deploy.iter().any(|t| other_word.contains(t)));
    }

    fn hook(channel: &str, words: &[&str], when: i64) -> OutgoingWebhook {
        OutgoingWebhook {
            id: ids::new_id(),
            token: ids::new_id(),
            create_at: 1,
            update_at: 1,
            creator_id: ids::new_id(),
            channel_id: channel.into(),
            team_id: "t".repeat(26),
            trigger_words: words.iter().map(|w| w.to_string()).collect(),
            trigger_when: when,
            callback_urls: vec!["http://example.com/cb".into()],
            ..Default::default()
        }
    }

    #[test]
    fn matching_rules() {
        let c = "c".repeat(26);
        let table: &[(OutgoingWebhook, &str, &str, Option<&str>)] = &[
            (hook("", &["foo"], TRIGGER_EXACT), "", "foo", Some("foo")),
            (hook("", &["foo"], TRIGGER_EXACT), "", "foobar", None),
            (hook("", &["foo"], TRIGGER_EXACT), "", "Foo", None),
            (
                hook("", &["foo"], TRIGGER_STARTS_WITH),
                "",
                "foobar",
                Some("foo"),
            ),
            (hook("", &["foo"], TRIGGER_STARTS_WITH), "", "barfoo", None),
            (
                hook("", &["fo", "foo"], TRIGGER_STARTS_WITH),
                "",
                "foo",
                Some("fo"),
            ),
            (hook(&c, &[], TRIGGER_EXACT), &c, "", Some("")),
            (hook(&c, &[], TRIGGER_EXACT), &c, "anything", Some("")),
            (hook(&c, &["foo"], TRIGGER_EXACT), &c, "bar", None),
            (hook(&c, &["foo"], TRIGGER_EXACT), "other", "foo", None),
            (hook("", &["foo"], TRIGGER_EXACT), "", "", None),
        ];
        for (h, channel, word, expected) in table {
            let channel = if channel.is_empty() { "x" } else { channel };
            assert_eq!(
                h.trigger_for(channel, word).as_deref(),
                *expected,
                "{word:?} {:?} {}",
                h.trigger_words,
                h.trigger_when
            );
        }
    }

    #[test]
    fn validation() {
        assert!(hook("", &["a"], 0).validate().is_ok());
        type Breaker = fn(&mut OutgoingWebhook);
        let cases: &[(Breaker, &str)] = &[
            (|h| h.trigger_words = vec![String::new()], "trigger_words"),
            (|h| h.trigger_words = vec!["x".repeat(1023)], "words"),
            (|h| h.callback_urls.clear(), "callback"),
            (|h| h.callback_urls = vec!["HTTP://x".into()], "url"),
            (|h| h.callback_urls = vec!["https:////x".into()], "url"),
            (|h| h.description = "x".repeat(501), "description"),
            (|h| h.content_type = "x".repeat(129), "content_type"),
            (|h| h.trigger_when = 2, "content_type"),
            (|h| h.token = "short".into(), "token"),
        ];
        for (break_it, field) in cases {
            let mut h = hook("", &["a"], 0);
            break_it(&mut h);
            assert_eq!(
                h.validate().unwrap_err().id,
                format!("model.outgoing_hook.is_valid.{field}.app_error")
            );
        }
    }

    #[test]
    fn intersection_needs_channel_word_and_url() {
        let a = hook("", &["a", "b"], 0);
        let mut b = hook("", &["b"], 0);
        assert!(a.intersects(&b));
        b.callback_urls = vec!["http://other".into()];
        assert!(!a.intersects(&b));
        let mut c = hook(&"c".repeat(26), &["a"], 0);
        assert!(!a.intersects(&c));
        c.channel_id.clear();
        assert!(a.intersects(&c));
    }
}
