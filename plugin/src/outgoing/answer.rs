//! What the host reports after each attempt of a delivery: update the hook's
//! delivery log, and once settled turn the answer into posts (exactly once,
//! by derived post ids) and keep the hook's run of failures.

use super::deliveries::{self, DELIVERED, Delivery, FAILED, RETRYING};
use super::fire::{Continuation, egress_error, respond};
use super::{HOOKS, OutgoingWebhook};
use crate::api::ApiError;
use crate::host::{DeliveryResult, Host, Level, new_post};
use serde::{Deserialize, Serialize};

/// Deliveries in a row that failed for good before a hook is marked failing.
pub const FAILING_AFTER: u32 = 20;

/// Statuses the host retries; when one settles a delivery the retries ran
/// out, and (unlike a final 4xx, posted as Mattermost posts any answer) its
/// body is not posted.
fn gave_up(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

pub fn on_result(host: &dyn Host, result: &DeliveryResult) {
    if let Err(e) = run(host, result) {
        host.log(
            Level::Error,
            &format!(
                "delivery {} of outgoing webhook {}: {} {}",
                result.id, result.group, e.id, e.detailed_error
            ),
        );
    }
}

fn run(host: &dyn Host, result: &DeliveryResult) -> Result<(), ApiError> {
    let cont: Continuation = serde_json::from_slice(&result.continuation).map_err(|e| {
        ApiError::new(
            500,
            "app.webhooks.delivery.continuation.app_error",
            "A delivery came back that this plugin did not send.",
        )
        .with_detail(e.to_string())
    })?;
    let Some(hook) = HOOKS.get::<OutgoingWebhook>(host, &cont.hook_id)? else {
        // Deleted meanwhile: nothing to post, no log to keep.
        return Ok(());
    };
    let last = result.attempts.last();
    let mut delivery = Delivery {
        id: result.id.clone(),
        at: result.attempts.first().map(|a| a.at).unwrap_or(0),
        post_id: cont.post_id.clone(),
        trigger_word: cont.trigger_word.clone(),
        url: cont.url.clone(),
        state: RETRYING.into(),
        status: last.map(|a| a.status).unwrap_or(0),
        latency_ms: last.map(|a| a.latency_ms).unwrap_or(0),
        error: last.map(|a| a.error.clone()).unwrap_or_default(),
        attempt: result.attempts.len() as u32,
        next_retry_at: last.map(|a| a.next_at).unwrap_or(0),
        attempts: result.attempts.iter().map(Into::into).collect(),
        posted: Vec::new(),
    };
    if result.settled {
        delivery.next_retry_at = 0;
        delivery.state = DELIVERED.into();
        match &result.outcome {
            Ok(response) if gave_up(response.status) => {
                delivery.state = FAILED.into();
                delivery.error = format!(
                    "status {} after {} attempts",
                    response.status, delivery.attempt
                );
            }
            Ok(response) if fault_requested(host, response) => {
                panic!("test fault requested by the answer: trap")
            }
            Ok(response) => match host.post(&cont.post_id) {
                Ok(trigger) => match respond(host, &result.id, &trigger, &hook, response) {
                    Ok(posted) => delivery.posted = posted,
                    Err(e) => delivery.error = e,
                },
                Err(e) => delivery.error = format!("the triggering post is gone: {}", e.detail()),
            },
            Err(e) => {
                delivery.state = FAILED.into();
                delivery.error = egress_error(e);
            }
        }
        if !delivery.error.is_empty() {
            host.log(
                Level::Warn,
                &format!(
                    "outgoing webhook {} → {}: {}",
                    hook.id, cont.url, delivery.error
                ),
            );
        }
        track_failures(host, &hook, &result.id, delivery.state == FAILED)?;
    }
    deliveries::upsert(host, &hook.id, delivery)
}

/// A deliberate fault, as the `/plugins/switchboard/test/*` routes are (only
/// with `EnableTesting`): an answer carrying `X-Switchboard-Test-Fault: trap`
/// makes this call trap every time, so the host's handling of a result the
/// plugin keeps failing on can be tested through the real component.
fn fault_requested(host: &dyn Host, response: &crate::host::OutboundResponse) -> bool {
    host.settings().enable_testing
        && response
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("x-switchboard-test-fault") && h.value == "trap")
}

/// A hook's run of deliveries that failed for good.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Streak {
    count: u32,
    /// The delivery counted last, so a replayed result counts once.
    last: String,
}

fn streak_key(hook_id: &str) -> String {
    format!("outgoing_failures/{hook_id}")
}

/// Counts a settled delivery: failures extend the run, a success ends it.
/// At `FAILING_AFTER` the hook is marked failing and its owner told once.
fn track_failures(
    host: &dyn Host,
    hook: &OutgoingWebhook,
    delivery_id: &str,
    failed: bool,
) -> Result<(), ApiError> {
    let key = streak_key(&hook.id);
    let kv = |e: crate::host::HostError| ApiError::host("app.plugin.kv.app_error", &e);
    for _ in 0..64 {
        let current = host.kv_get(&key).map_err(kv)?;
        let mut streak: Streak = current
            .as_deref()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        if streak.last == delivery_id {
            return Ok(());
        }
        streak.last = delivery_id.to_string();
        streak.count = if failed { streak.count + 1 } else { 0 };
        let bytes = serde_json::to_vec(&streak).unwrap_or_default();
        if host
            .kv_compare_and_set(&key, current.as_deref(), Some(&bytes))
            .map_err(kv)?
        {
            if streak.count == FAILING_AFTER {
                mark_failing(host, &hook.id, true)?;
            } else if !failed && hook.failing {
                mark_failing(host, &hook.id, false)?;
            }
            return Ok(());
        }
    }
    Ok(())
}

fn mark_failing(host: &dyn Host, hook_id: &str, failing: bool) -> Result<(), ApiError> {
    let Some(mut hook) = HOOKS.get::<OutgoingWebhook>(host, hook_id)? else {
        return Ok(());
    };
    if hook.failing == failing {
        return Ok(());
    }
    hook.failing = failing;
    HOOKS.put(host, &hook.id, &hook)?;
    if failing {
        tell_owner(host, &hook);
    }
    Ok(())
}

/// A direct message to the hook's owner from the server's system bot.
fn tell_owner(host: &dyn Host, hook: &OutgoingWebhook) {
    let name = if hook.display_name.is_empty() {
        hook.id.as_str()
    } else {
        hook.display_name.as_str()
    };
    let message = format!(
        "Your outgoing webhook **{name}** (`{}`) has failed {FAILING_AFTER} deliveries in a row and is marked failing. \
         See `GET /api/v4/hooks/outgoing/{}/deliveries` for what its callbacks answered; \
         the mark clears with the next delivery that succeeds.",
        hook.id, hook.id
    );
    let mut post = new_post(&hook.creator_id, "", message);
    post.props = serde_json::json!({
        "switchboard_notice": "outgoing_webhook_failing",
        "hook_id": hook.id,
    })
    .to_string();
    let sent = host.notify_user(&hook.creator_id, post);
    if let Err(e) = sent {
        host.log(
            Level::Error,
            &format!(
                "telling the owner of failing hook {}: {}",
                hook.id,
                e.detail()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{Attempt, ChannelType, EgressError, OutboundResponse, Post, Signing};
    use crate::testing::{FakeHost, channel, reply, user};

    const TEAM: &str = "tttttttttttttttttttttttttt";
    const TOWN: &str = "cccccccccccccccccccccccccc";

    fn setup() -> (FakeHost, Post) {
        let host = FakeHost::default();
        host.users.borrow_mut().push(user("ua", "alice"));
        host.channels
            .borrow_mut()
            .push(channel(TOWN, TEAM, "town-square", ChannelType::Open));
        let hook = OutgoingWebhook {
            id: "hook".into(),
            creator_id: "ua".into(),
            team_id: TEAM.into(),
            trigger_words: vec!["go".into()],
            callback_urls: vec!["http://a/1".into(), "http://a/2".into()],
            signing_secret: "s3cret".into(),
            webhook_secrets: vec!["whsec_c2VjcmV0".into()],
            ..Default::default()
        };
        HOOKS.put(&host, &hook.id, &hook).unwrap();
        let mut post = new_post("ua", TOWN, "go now".into());
        post.id = "pppppppppppppppppppppppppp".into();
        host.posts.borrow_mut().push(post.clone());
        (host, post)
    }

    fn result(
        host: &FakeHost,
        index: usize,
        outcome: Result<OutboundResponse, EgressError>,
        settled: bool,
    ) -> DeliveryResult {
        let job = host.jobs.borrow()[index].clone();
        let status = outcome.as_ref().map(|r| r.status).unwrap_or(0);
        DeliveryResult {
            id: job.id,
            group: job.group,
            continuation: job.continuation,
            attempts: vec![Attempt {
                number: 1,
                at: 1_000,
                status,
                latency_ms: 3,
                error: String::new(),
                next_at: if settled { 0 } else { 2_000 },
            }],
            outcome,
            settled,
        }
    }

    fn answers(host: &FakeHost, text: &str) -> usize {
        host.posts
            .borrow()
            .iter()
            .filter(|p| p.message == text)
            .count()
    }

    #[test]
    fn a_post_reads_only_the_hooks_it_could_match() {
        let (host, post) = setup();
        // A thousand hooks elsewhere: another team, another first word, another
        // channel. None is read for the post.
        for i in 0..1000 {
            let (team, word, channel) = match i % 3 {
                0 => ("o".repeat(26), "go".to_string(), String::new()),
                1 => (TEAM.to_string(), format!("w{i}"), String::new()),
                _ => (TEAM.to_string(), String::new(), "d".repeat(26)),
            };
            let other = OutgoingWebhook {
                id: format!("other{i:021}"),
                team_id: team,
                channel_id: channel,
                trigger_words: if word.is_empty() { vec![] } else { vec![word] },
                callback_urls: vec!["http://b/1".into()],
                ..Default::default()
            };
            HOOKS.put(&host, &other.id, &other).unwrap();
        }
        // The first post indexes what was stored before the index (here, all
        // of it: `put` keeps the index, but nothing says it is complete yet).
        crate::outgoing::fire(&host, &post);
        let mut next = post.clone();
        next.id = "qqqqqqqqqqqqqqqqqqqqqqqqqq".into();
        host.posts.borrow_mut().push(next.clone());
        host.kv_reads.set(0);
        crate::outgoing::fire(&host, &next);
        assert_eq!(host.jobs.borrow().len(), 4, "the one matching hook fired");
        assert!(
            host.kv_reads.get() < 10,
            "{} kv reads for one post",
            host.kv_reads.get()
        );
    }

    #[test]
    fn hooks_stored_before_the_index_are_found() {
        let (host, post) = setup();
        // As an older version left them: records, and no index entries.
        host.kv
            .borrow_mut()
            .retain(|key, _| !key.starts_with("outgoing_index/"));
        crate::outgoing::fire(&host, &post);
        assert_eq!(host.jobs.borrow().len(), 2);
        assert!(host.kv.borrow().contains_key("outgoing_index/!built"));
    }

    #[test]
    fn firing_enqueues_one_signed_job_per_url_and_waits_for_nothing() {
        let (host, post) = setup();
        crate::outgoing::fire(&host, &post);
        let jobs = host.jobs.borrow();
        assert_eq!(jobs.len(), 2);
        assert_ne!(jobs[0].id, jobs[1].id);
        assert_eq!(jobs[0].id.len(), 26);
        assert_eq!(jobs[0].group, "hook");
        assert!(matches!(
            jobs[0].signing.as_slice(),
            [Signing::Slack(s), Signing::StandardWebhooks(w)] if s == "s3cret" && w.len() == 1
        ));
        assert!(host.sent.borrow().is_empty(), "nothing sent by the plugin");
        drop(jobs);
        crate::outgoing::fire(&host, &post);
        assert_eq!(
            host.jobs.borrow().len(),
            2,
            "the same post's hooks again: the same delivery ids, nothing new"
        );
    }

    #[test]
    fn a_settled_answer_posts_once_however_often_it_is_replayed() {
        let (host, post) = setup();
        crate::outgoing::fire(&host, &post);
        let answer = reply(200, "application/json", r#"{"text":"hi"}"#);
        let settled = result(&host, 0, Ok(answer), true);
        on_result(&host, &settled);
        on_result(&host, &settled);
        assert_eq!(answers(&host, "hi"), 1);
        let log = deliveries::recent(&host, "hook").unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].state, DELIVERED);
        assert_eq!(log[0].posted.len(), 1);
        assert_eq!(log[0].posted[0], ids_of(&host, "hi")[0]);
    }

    fn ids_of(host: &FakeHost, text: &str) -> Vec<String> {
        host.posts
            .borrow()
            .iter()
            .filter(|p| p.message == text)
            .map(|p| p.id.clone())
            .collect()
    }

    #[test]
    fn retries_are_logged_and_exhausted_retries_post_nothing() {
        let (host, post) = setup();
        crate::outgoing::fire(&host, &post);
        let busy = reply(503, "application/json", r#"{"text":"busy"}"#);
        on_result(&host, &result(&host, 0, Ok(busy.clone()), false));
        let log = deliveries::recent(&host, "hook").unwrap();
        assert_eq!(log[0].state, RETRYING);
        assert_eq!(log[0].next_retry_at, 2_000);
        on_result(&host, &result(&host, 0, Ok(busy), true));
        let log = deliveries::recent(&host, "hook").unwrap();
        assert_eq!(log[0].state, FAILED);
        assert_eq!(answers(&host, "busy"), 0);
        on_result(
            &host,
            &result(&host, 1, Err(EgressError::Connect("refused".into())), true),
        );
        let log = deliveries::recent(&host, "hook").unwrap();
        assert!(log.iter().any(|d| d.error.contains("connection failed")));
    }

    #[test]
    fn twenty_failures_in_a_row_mark_the_hook_and_tell_its_owner_once() {
        let (host, mut post) = setup();
        for i in 0..11 {
            post.id = format!("{i:0>26}");
            host.posts.borrow_mut().push(post.clone());
            crate::outgoing::fire(&host, &post);
        }
        for i in 0..21 {
            let failed = result(&host, i, Err(EgressError::Timeout("slow".into())), true);
            on_result(&host, &failed);
            on_result(&host, &failed);
            let hook: OutgoingWebhook = HOOKS.get(&host, "hook").unwrap().unwrap();
            assert_eq!(
                hook.failing,
                i + 1 >= FAILING_AFTER as usize,
                "after {}",
                i + 1
            );
        }
        let notices = host
            .posts
            .borrow()
            .iter()
            .filter(|p| p.props.contains("outgoing_webhook_failing"))
            .count();
        assert_eq!(notices, 1);
        let ok = reply(200, "application/json", "");
        on_result(&host, &result(&host, 21, Ok(ok), true));
        let hook: OutgoingWebhook = HOOKS.get(&host, "hook").unwrap().unwrap();
        assert!(!hook.failing, "a success clears the mark");
    }
}
