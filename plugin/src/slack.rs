// Slack compatibility: the attachment objects integrations send and the text translations
// that turn Slack markup into Mattermost markdown.

pub mod attachment;
pub mod text;
