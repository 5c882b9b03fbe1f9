//! The fixtures under `fixtures/<source>/`: each holds a request as the sender documents it
//! (headers and body), the event it names, and the exact post it must make (`null`: none).

use super::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::PathBuf;

struct Fixture {
    file: String,
    event: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    post: Value,
}

fn fixtures(source: &str) -> Vec<Fixture> {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "src/sources/fixtures", source]
        .iter()
        .collect();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let headers = doc["headers"]
                .as_object()
                .map(|h| {
                    h.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            Fixture {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                event: doc["event"].as_str().unwrap().to_owned(),
                headers,
                body: serde_json::to_vec(&doc["body"]).unwrap(),
                post: doc["post"].clone(),
            }
        })
        .collect()
}

/// A message as a fixture writes it.
fn as_fixture(message: Option<Message>) -> Value {
    let Some(m) = message else {
        return Value::Null;
    };
    let mut post = json!({"text": m.text, "thread": m.thread});
    if !m.attachments.is_empty() {
        // Only the members a source set, so a fixture reads as what the post shows.
        let mut attachments = serde_json::to_value(&m.attachments).unwrap();
        for a in attachments.as_array_mut().unwrap() {
            let a = a.as_object_mut().unwrap();
            a.retain(|_, v| !(v.is_null() || v == "" || v == 0));
        }
        post["attachments"] = attachments;
    }
    post
}

#[test]
fn every_fixture_makes_its_exact_post() {
    let mut wrong = Vec::new();
    for source in SOURCES {
        for f in fixtures(source.name) {
            let json = decode_body(Some("application/json"), &f.body).unwrap();
            let inbound = Inbound {
                headers: &f.headers,
                body: &f.body,
                json: &json,
            };
            let event = (source.event)(&inbound);
            assert_eq!(event, f.event, "{}/{}", source.name, f.file);
            assert!((source.recognizes)(&inbound), "{}/{}", source.name, f.file);
            let post = as_fixture((source.render)(&event, &inbound));
            if post != f.post {
                wrong.push(format!(
                    "{}/{}:\n{}",
                    source.name,
                    f.file,
                    serde_json::to_string_pretty(&post).unwrap()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn every_listed_event_has_a_fixture_that_posts() {
    for source in SOURCES {
        let posted: BTreeSet<String> = fixtures(source.name)
            .into_iter()
            .filter(|f| !f.post.is_null())
            .map(|f| f.event)
            .collect();
        for event in source.events {
            assert!(
                posted.contains(*event),
                "{}: no fixture posts the listed event {event}",
                source.name
            );
        }
        assert!(
            posted.iter().all(|e| source.events.contains(&e.as_str())),
            "{}: a fixture posts an event the source does not list: {posted:?}",
            source.name
        );
    }
}

#[test]
fn posts_never_carry_a_live_mention() {
    for source in SOURCES {
        for f in fixtures(source.name) {
            let mut texts = vec![f.post["text"].as_str().unwrap_or("").to_owned()];
            for a in f.post["attachments"].as_array().into_iter().flatten() {
                texts.push(a.to_string());
            }
            for text in texts {
                for word in ["@here", "@channel", "@all", "@hubot", "<!"] {
                    assert!(!text.contains(word), "{}/{}: {word}", source.name, f.file);
                }
            }
        }
    }
}

#[test]
fn filters_are_globs_with_exclusions() {
    let f = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(selected(&[], "push"));
    assert!(selected(&f(&["pull_request.*"]), "pull_request.opened"));
    assert!(!selected(
        &f(&["pull_request.*"]),
        "pull_request_review.submitted"
    ));
    assert!(!selected(&f(&["pull_request.*"]), "push"));
    assert!(selected(&f(&["pull_request"]), "pull_request.merged"));
    assert!(selected(&f(&["push", "issues.*"]), "push"));
    assert!(!selected(&f(&["!star"]), "star.created"));
    assert!(selected(&f(&["!star"]), "fork"));
    assert!(!selected(
        &f(&["pull_request.*", "!pull_request.closed"]),
        "pull_request.closed"
    ));
    assert!(selected(&f(&["*.opened"]), "issues.opened"));
    assert!(valid_pattern("!pull_request.*") && !valid_pattern("!") && !valid_pattern("a b"));
}

#[test]
fn github_signature_is_an_hmac_of_the_raw_body() {
    let body = br#"{"zen":"Keep it logically awesome."}"#;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"It's a Secret to Everybody").unwrap();
    mac.update(body);
    let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let check = |header: Option<&str>, secret: &[u8]| {
        let headers: Vec<(String, String)> = header
            .map(|h| vec![("x-hub-signature-256".to_owned(), h.to_owned())])
            .unwrap_or_default();
        let inbound = Inbound {
            headers: &headers,
            body,
            json: &Value::Null,
        };
        (github::SOURCE.verify)(&inbound, secret)
    };
    assert!(check(Some(&good), b"It's a Secret to Everybody"));
    assert!(!check(Some(&good), b"another secret"));
    assert!(!check(None, b"It's a Secret to Everybody"));
    assert!(!check(
        Some(&good.replace("sha256=", "sha1=")),
        b"It's a Secret to Everybody"
    ));
    assert!(!check(Some("sha256=zz"), b"It's a Secret to Everybody"));
    let mut flipped = good.clone();
    flipped.pop();
    flipped.push(if good.ends_with('0') { '1' } else { '0' });
    assert!(!check(Some(&flipped), b"It's a Secret to Everybody"));
}

#[test]
fn authorization_takes_bearer_or_basic() {
    use base64::Engine;
    let basic = |s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    };
    assert!(authorization_matches(b"s3cret", Some("Bearer s3cret")));
    assert!(authorization_matches(b"s3cret", Some("bearer  s3cret ")));
    assert!(authorization_matches(
        b"s3cret",
        Some(&basic("alertmanager:s3cret"))
    ));
    assert!(!authorization_matches(
        b"s3cret",
        Some(&basic("s3cret:other"))
    ));
    assert!(!authorization_matches(b"s3cret", Some("Bearer s3cre")));
    assert!(!authorization_matches(b"s3cret", Some("Token s3cret")));
    assert!(!authorization_matches(b"s3cret", None));
}

#[test]
fn github_sends_forms_too() {
    let body = b"payload=%7B%22zen%22%3A%22hi%22%7D";
    let json = decode_body(Some("application/x-www-form-urlencoded"), body).unwrap();
    assert_eq!(json, json!({"zen": "hi"}));
    assert!(decode_body(Some("application/x-www-form-urlencoded"), b"a=1").is_err());
    assert!(decode_body(Some("application/json"), b"not json").is_err());
}

#[test]
fn sources_are_listed_with_their_events() {
    let listed = serde_json::to_value(listing()).unwrap();
    assert_eq!(listed[0]["name"], "github");
    assert_eq!(listed[0]["display_name"], "GitHub");
    assert_eq!(listed[0]["event_header"], "X-GitHub-Event");
    assert!(
        listed[0]["events"]
            .as_array()
            .unwrap()
            .contains(&json!("push"))
    );
    let names: Vec<&str> = SOURCES.iter().map(|s| s.name).collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(names.len(), unique.len());
}

#[test]
fn gitlab_token_is_compared_whole() {
    let check = |sent: Option<&str>| {
        let headers: Vec<(String, String)> = sent
            .map(|s| vec![("X-Gitlab-Token".to_owned(), s.to_owned())])
            .unwrap_or_default();
        let inbound = Inbound {
            headers: &headers,
            body: b"{}",
            json: &Value::Null,
        };
        (gitlab::SOURCE.verify)(&inbound, b"glsecret")
    };
    assert!(check(Some("glsecret")));
    assert!(!check(Some("glsecre")));
    assert!(!check(Some("glsecret2")));
    assert!(!check(None));
}

#[test]
fn gitea_signature_is_a_bare_hex_hmac_under_either_name() {
    let body = br#"{"ref":"refs/heads/main"}"#;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"tea").unwrap();
    mac.update(body);
    let good = hex::encode(mac.finalize().into_bytes());
    let check = |name: &str, value: &str| {
        let headers = vec![(name.to_owned(), value.to_owned())];
        let inbound = Inbound {
            headers: &headers,
            body,
            json: &Value::Null,
        };
        (gitea::SOURCE.verify)(&inbound, b"tea")
    };
    assert!(check("X-Gitea-Signature", &good));
    assert!(check("X-Forgejo-Signature", &good));
    assert!(!check("X-Gitea-Signature", &format!("sha256={good}")));
    assert!(!check("X-Gitea-Signature", &good.replace(&good[..2], "00")));
    assert!(!check("X-Other", &good));
}

#[test]
fn grafana_takes_its_hmac_header_or_an_authorization() {
    let body = br#"{"status":"firing"}"#;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"gf").unwrap();
    mac.update(body);
    let good = hex::encode(mac.finalize().into_bytes());
    let check = |name: &str, value: &str| {
        let headers = vec![(name.to_owned(), value.to_owned())];
        let inbound = Inbound {
            headers: &headers,
            body,
            json: &Value::Null,
        };
        (grafana::SOURCE.verify)(&inbound, b"gf")
    };
    assert!(check("X-Grafana-Alerting-Signature", &good));
    assert!(check("Authorization", "Bearer gf"));
    assert!(!check("X-Grafana-Alerting-Signature", "00"));
    assert!(!check("Authorization", "Bearer other"));
}

fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `source` accepts a request carrying these headers, signed with `secret`.
fn verifies(source: &Source, headers: &[(&str, &str)], body: &[u8], secret: &[u8]) -> bool {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let inbound = Inbound {
        headers: &headers,
        body,
        json: &Value::Null,
    };
    (source.verify)(&inbound, secret)
}

#[test]
fn jira_signature_is_a_prefixed_hmac_in_x_hub_signature() {
    let body = br#"{"webhookEvent":"jira:issue_created"}"#;
    let good = format!("sha256={}", hmac_hex(b"jira-secret", body));
    let jira = &jira::SOURCE;
    assert!(verifies(
        jira,
        &[("X-Hub-Signature", &good)],
        body,
        b"jira-secret"
    ));
    assert!(!verifies(
        jira,
        &[("X-Hub-Signature", &good)],
        body,
        b"other"
    ));
    assert!(!verifies(
        jira,
        &[("X-Hub-Signature", &good)],
        b"{}",
        b"jira-secret"
    ));
    assert!(!verifies(
        jira,
        &[("X-Hub-Signature", &good["sha256=".len()..])],
        body,
        b"jira-secret"
    ));
    assert!(!verifies(jira, &[], body, b"jira-secret"));
}

#[test]
fn pagerduty_takes_any_of_several_v1_signatures() {
    let body = br#"{"event":{"event_type":"incident.triggered"}}"#;
    let good = format!("v1={}", hmac_hex(b"pd-secret", body));
    let old = format!("v1={}", hmac_hex(b"old-secret", body));
    let pd = &pagerduty::SOURCE;
    let sig = |value: &str| [("X-PagerDuty-Signature", value.to_owned())];
    let check = |value: &str, secret: &[u8]| {
        let h = sig(value);
        verifies(pd, &[(h[0].0, h[0].1.as_str())], body, secret)
    };
    assert!(check(&good, b"pd-secret"));
    assert!(check(&format!("{old},{good}"), b"pd-secret"));
    assert!(check(&format!("{good}, {old}"), b"old-secret"));
    assert!(!check(&old, b"pd-secret"));
    assert!(!check(&good.replace("v1=", "v0="), b"pd-secret"));
    assert!(!check(&good["v1=".len()..], b"pd-secret"));
    assert!(!check("", b"pd-secret"));
    assert!(!verifies(pd, &[], body, b"pd-secret"));
}

#[test]
fn sentry_signature_is_a_bare_hex_hmac() {
    let body = br#"{"action":"created","data":{}}"#;
    let good = hmac_hex(b"client-secret", body);
    let sentry = &sentry::SOURCE;
    assert!(verifies(
        sentry,
        &[("Sentry-Hook-Signature", &good)],
        body,
        b"client-secret"
    ));
    assert!(!verifies(
        sentry,
        &[("Sentry-Hook-Signature", &good)],
        body,
        b"other"
    ));
    assert!(!verifies(
        sentry,
        &[("Sentry-Hook-Signature", &format!("sha256={good}"))],
        body,
        b"client-secret"
    ));
    assert!(!verifies(sentry, &[], body, b"client-secret"));
}

#[test]
fn bitbucket_signature_is_a_prefixed_hmac_in_x_hub_signature() {
    let body = br#"{"push":{"changes":[]}}"#;
    let good = format!("sha256={}", hmac_hex(b"bb-secret", body));
    let bb = &bitbucket::SOURCE;
    assert!(verifies(
        bb,
        &[("X-Hub-Signature", &good)],
        body,
        b"bb-secret"
    ));
    assert!(!verifies(bb, &[("X-Hub-Signature", &good)], body, b"other"));
    assert!(!verifies(
        bb,
        &[("X-Hub-Signature", &good.replace("sha256=", "sha1="))],
        body,
        b"bb-secret"
    ));
    // GitHub's header name is not Bitbucket's.
    assert!(!verifies(
        bb,
        &[("X-Hub-Signature-256", &good)],
        body,
        b"bb-secret"
    ));
}

#[test]
fn azure_devops_checks_the_authorization_header() {
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("hooks:ado-secret")
    );
    let ado = &azure_devops::SOURCE;
    assert!(verifies(
        ado,
        &[("Authorization", &basic)],
        b"{}",
        b"ado-secret"
    ));
    assert!(verifies(
        ado,
        &[("Authorization", "Bearer ado-secret")],
        b"{}",
        b"ado-secret"
    ));
    assert!(!verifies(
        ado,
        &[("Authorization", "Bearer ado-secre")],
        b"{}",
        b"ado-secret"
    ));
    assert!(!verifies(ado, &[], b"{}", b"ado-secret"));
}
