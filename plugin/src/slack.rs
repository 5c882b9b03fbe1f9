// Slack compatibility: the attachment objects integrations send, Block Kit layouts, and the
// text translations that turn Slack markup into Mattermost markdown.

pub mod attachment;
pub mod blocks;
pub mod mrkdwn;
pub mod text;
