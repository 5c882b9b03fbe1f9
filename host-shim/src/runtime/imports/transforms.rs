//! `transforms` (0.3.2): uploaded transform components, each call run in a
//! sandbox of its own (`crate::transforms`). A failure is the one request's.

use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::transforms::{
    Host, TransformFailure, TransformRequest,
};
use crate::transforms::{Failure, Request};

impl Host for CallState {
    async fn run(
        &mut self,
        id: String,
        request: TransformRequest,
    ) -> Result<Option<String>, TransformFailure> {
        let request = Request {
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request
                .headers
                .into_iter()
                .map(|h| (h.name, h.value))
                .collect(),
            body: request.body,
        };
        let app = self.app.clone();
        app.transforms
            .run(&app, &id, request)
            .await
            .map_err(|failure| match failure {
                Failure::NotFound => TransformFailure::NotFound,
                Failure::Refused(message) => TransformFailure::Refused(message),
                Failure::Crashed(what) => TransformFailure::Crashed(what),
            })
    }
}
