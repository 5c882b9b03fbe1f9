//! Action cookies on the click's side: opening the one a client sent back, and
//! how a click whose cookie names an integration is signed. Sealing them, which
//! every feature that makes posts needs, sits below the features in `action_cookie`.

use crate::action_cookie::Cookie;
use crate::api::ApiError;
use crate::host::{Host, Signing};

/// How a click whose cookie names `signer` is signed: as requests to that
/// command or outgoing webhook itself are. One deleted since signs nothing.
pub fn signing_for(host: &dyn Host, signer: &str) -> Vec<Signing> {
    if let Some(id) = signer.strip_prefix("command:") {
        return match crate::commands::registry::get(host, id) {
            Ok(Some(command)) if !command.signing_secret.is_empty() => {
                vec![Signing::Slack(command.signing_secret)]
            }
            _ => Vec::new(),
        };
    }
    if let Some(id) = signer.strip_prefix("outgoing:") {
        return match crate::outgoing::HOOKS.get::<crate::outgoing::OutgoingWebhook>(host, id) {
            Ok(Some(hook)) => crate::outgoing::fire::signing_of(&hook),
            _ => Vec::new(),
        };
    }
    Vec::new()
}

/// The cookie a client sent back, or Mattermost's 400 when it does not open.
pub fn open(host: &dyn Host, text: &str) -> Result<Cookie, ApiError> {
    crate::action_cookie::unseal(host, text)
        .map_err(|detail| super::request::integration_failed().with_detail(detail.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn forged_cookies_do_not_open() {
        let host = FakeHost::default();
        let err = open(&host, "eyJwb3N0X2lkIjoieCJ9").unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(err.id, "api.post.do_action.action_integration.app_error");
    }
}
