//! `transforms` (0.3.2): uploaded transform components, run in a sandbox of
//! their own. No transform can be uploaded yet, so every id is unknown.

use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::transforms::{
    Host, TransformFailure, TransformRequest,
};

impl Host for CallState {
    async fn run(
        &mut self,
        _id: String,
        _request: TransformRequest,
    ) -> Result<Option<String>, TransformFailure> {
        Err(TransformFailure::NotFound)
    }
}
